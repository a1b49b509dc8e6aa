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

// format(s, v) with a string s and a value v that is no spec: Python's s.format(v) on a
// string that is not a literal.
inline constexpr const char* kStrFormatHint =
    "'spec' must be a string: a string's format method takes a string literal (\"{}\".format(x)); "
    "for a template in a variable, write an f-string";
// s * n / n * s, Python's: n copies of the string s (none for n <= 0); more than memory holds
// is an error.
Value repeatStr(const Value& s, int64_t n);
// Binary operators on any values: numbers go to NumericOps; `+` concatenates
// strings, lists and tuples; `==`/`!=` compare other values by value.
Value binaryOperator(Op op, const Value& a, const Value& b);
// An operator as written (`+`, `//`, `@`, ...), for messages.
const char* opText(Op op);
// The hint for a list meeting a number or tensor in a binary operator ("" otherwise).
std::string listTensorHint(bool add, bool aList, bool bList, bool aNum, bool bNum);
// == or != of a list and a number or tensor: an error (every engine's words).
std::string listTensorCompare(const std::string& op);
// "an index must be an integer, got i64[2]", with a hint where it is an integer tensor next
// to other subscripts (every engine's words).
std::string indexTypeError(const std::string& what, const std::string& got, bool intTensor);
// Python's order of values for sorted(): numbers by value, strings by code point, tuples and
// lists item by item; <0, 0, >0. Other values (tensors, records, ...) or two kinds that do not
// compare are the error "cannot order a string and a i64[]".
int orderValues(const Value& a, const Value& b);
// items in the order of their keys (stable; reverse keeps equal keys in their order).
std::vector<Value> sortedItems(const std::vector<Value>& items, const std::vector<Value>& keys, bool reverse);
// sorted() given more than its one positional argument (key and reverse are keywords, Python's).
std::string sortedKeywordsOnly(int positional);
// A tensor's fields: shape, rank (ndim), size, dtype, T; the error for another (every engine's words).
// A tensor's fields (every engine's list: errors, notebook completion).
const std::vector<std::string>& tensorFields();
std::string tensorNoField(const std::string& name);
// x.NAME(...) of a tensor field (x.T(1)): "" when NAME is none (every engine's words).
std::string tensorFieldCalled(const std::string& name);
// `...` among the subscripts of a value of this type (not a tensor).
std::string ellipsisTypeError(const std::string& type);
// A builtin's tensor parameter given something else: "sum(): 'x' must be a tensor, got
// list", with a hint for a list or tuple (every engine's words).
std::string tensorParamError(const std::string& fn, const std::string& param, const std::string& got, bool sequence);
// max(a, b, ...) / min(a, b, ...) of two or more numbers (rank 0, all positional, no
// keyword): Python's, folded left with maximum/minimum (a number has no axis for the
// second argument to be). `ranks`: the arguments' numberRank. Every engine asks.
bool pythonExtremeOfNumbers(const std::string& fn, const std::vector<int64_t>& ranks, bool keywords);
int64_t numberRank(const Value& v);  // a number's or tensor's rank; -1 for other values
// max(x, axis) of a number with an axis (a tensor second argument): an error naming
// maximum(a, b). "" when it does not apply.
std::string extremeOfNumberError(const std::string& fn, int64_t rank, bool axisGiven);
// Python's sum/max/min/any/all of a list, tuple or range, as a generator expression gives
// (`sum(x * x for x in xs)`), without an axis: its items, numbers (0-d tensors included),
// reduce as the vector stacking them (the same as Python's fold, gradients through stack); a
// range as the i64 vector of its items (rangeTensor); strings by code points (max/min,
// extremeOfStrings); an empty one gives Python's value (sum 0, any false, all true), max/min
// of none is an error. reducesSequence: `fn` is one of them. sequenceReduceError: "" when it
// takes the sequence (n items; badItem: the type of the first item that is no number, or ""
// — a tensor's when badTensor), else the error.
bool reducesSequence(const std::string& fn);
std::string sequenceReduceError(const std::string& fn, size_t n, const std::string& badItem, bool badTensor);
// sum/any/all of an empty list or tuple: Python's 0, false, true.
Value emptySequenceReduce(const std::string& fn);
Value rangeTensor(const RangeObj& r);
// max/min of strings, Python's (the first largest/smallest); for sum/any/all an error.
Value extremeOfStrings(const std::string& fn, const std::vector<Value>& items);
// int() of a float with no integer value (NaN, an infinity, beyond i64): a fill_format
// format (rt::fill_format) whose hole is the number, eagerly and in graph fns' run-time check.
inline constexpr const char* kIntOfFloatError =
    "int(): {} has no integer value (NaN, an infinity, or beyond the range of i64)";
// Whether int() of float d has a value: [-2^63, 2^63) (false for NaN).
inline constexpr double kI64FloatLow = -9223372036854775808.0, kI64FloatHigh = 9223372036854775808.0;
inline bool floatFitsI64(double d) { return d >= kI64FloatLow && d < kI64FloatHigh; }
// `&` and `|` take bool or integer operands: the error for float ones, in the words of the
// other operator errors (`unsupported operand types for &: f32[] and f32[2] ...`), for the
// operands' types as the user sees them (both engines; empty when they fit).
std::string bitsOperandError(Op op, DType a, DType b, const std::string& ta, const std::string& tb);
// `v in xs` (SPEC §12): a bool.
Value containsValue(const Value& xs, const Value& v);

// xs.name(args...) for the list methods that change xs (append, extend, pop, insert;
// SPEC §12): xs changes (in place when unshared); returns the method's result.
Value listMethod(Value& xs, const std::string& name, const Value* args, int n);
// Shared with the tracer (graph fns): the arity check of list method `name` with n
// arguments, the message for a receiver that is not a list, and the position that pop (of
// index i) or insert (before i) uses in a list of `size` items (errors as rt::Error).
void checkListMethod(const std::string& name, int n);
std::string notAList(const std::string& name, const std::string& type, bool numeric);
int64_t listPosition(const std::string& name, int64_t i, int64_t size);

// d.name(args...) for a dict's methods that read it: keys(), values(), items() (lists, in
// insertion order), get(key, default=none).
Value dictMethod(const Value& d, const std::string& name, const Value* args, int n, const std::vector<std::string>* kw);
// The method name, arity and keywords of such a call (shared with the tracer; rt::Error).
void checkDictMethod(const std::string& name, int n, const std::vector<std::string>* kw);

// The error of d[key] for a key d does not have (with the closest key).
std::string missingKeyText(const std::vector<std::string>& keys, const std::string& key);

// Iteration (for loops): the number of items and item i.
int64_t iterLength(const Value& v);
Value iterItem(const Value& v, int64_t i);
// n, when a list of n items can fit in memory; else the error `out of memory: a list of n
// items` (reversed(range(2**62)) fails at once instead of asking for the impossible).
size_t listItemsFit(int64_t n);
// Elements of a tuple/list (or the first axis of a tensor) for destructuring.
std::vector<Value> unpackValues(const Value& v, size_t expected);

// Structural equality of two values (tensors: same dtype, shape and elements).
bool valuesEqual(const Value& a, const Value& b);

}  // namespace tdl::vm
