// Operations on values that are not arithmetic: indexing, fields, updates
// along an assignment path (value semantics, in place when unshared),
// iteration, concatenation and equality of non-numeric values.
#pragma once
#include <string>

#include "vm/Chunk.h"
#include "vm/Value.h"

namespace tdl::vm {

// base[subs]: `flags` describe the subscripts whose registers start at `regs`.
Value indexValue(const Value& base, const std::vector<uint8_t>& flags, const Value* regs);
// base.name (record field, tensor shape/rank/size/dtype, native member).
Value fieldValue(const Value& base, const std::string& name);
// Whether `base` has a field `name` (records and native objects).
bool hasField(const Value& base, const std::string& name);
// target.<path> = v, updating `target` in place where it holds the only reference.
void assignPath(Value& target, const PathDesc& path, const Value* R, const Value& v);

// Binary operators on any values: numbers go to NumericOps; `+` concatenates
// strings, lists and tuples; `==`/`!=` compare other values by value.
Value binaryOperator(Op op, const Value& a, const Value& b);
// `v in xs` (SPEC §12): a bool.
Value containsValue(const Value& xs, const Value& v);

// Iteration (for loops): the number of items and item i.
int64_t iterLength(const Value& v);
Value iterItem(const Value& v, int64_t i);
// Elements of a tuple/list (or the first axis of a tensor) for destructuring.
std::vector<Value> unpackValues(const Value& v, size_t expected);

// Structural equality of two values (tensors: same dtype, shape and elements).
bool valuesEqual(const Value& a, const Value& b);

}  // namespace tdl::vm
