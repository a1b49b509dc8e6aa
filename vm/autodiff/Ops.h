// Differentiable operations on values: each computes its result with the
// runtime (or NumericOps' plain arithmetic) and, while a tape records and an
// input has a node, records itself (Tape.h). The builtins, the operators (via
// NumericOps), indexing and assignment call these, and so do the backward
// rules, which makes the backward pass recordable (higher order).
#pragma once
#include "runtime/Conv.h"
#include <utility>
#include <vector>

#include "runtime/Elementwise.h"
#include "runtime/Index.h"
#include "runtime/Reduce.h"
#include "vm/Value.h"

namespace tdl::vm::ad {

// Operators, with the weak-scalar rules of NumericOps.
Value binary(rt::BinaryOp op, const Value& a, const Value& b);
Value unary(rt::UnaryOp op, const Value& x);
Value matmul(const Value& a, const Value& b);
Value cast(const Value& x, DType dt);
inline Value add(const Value& a, const Value& b) { return binary(rt::BinaryOp::Add, a, b); }
inline Value sub(const Value& a, const Value& b) { return binary(rt::BinaryOp::Sub, a, b); }
inline Value mul(const Value& a, const Value& b) { return binary(rt::BinaryOp::Mul, a, b); }
inline Value div(const Value& a, const Value& b) { return binary(rt::BinaryOp::Div, a, b); }
inline Value neg(const Value& x) { return unary(rt::UnaryOp::Neg, x); }

// Builtins (SPEC §5), with the builtins' operand rules (weak scalars take
// the strong operands' dtype, else their default one).
Value elementwise(rt::BinaryOp op, const Value& a, const Value& b);  // maximum minimum pow
Value clip(const Value& x, const Value& lo, const Value& hi);
Value where(const Value& c, const Value& a, const Value& b);
Value reduce(rt::ReduceOp op, const Value& x, const rt::Axes& axes, bool keepdims);
Value dot(const Value& a, const Value& b);
Value outer(const Value& a, const Value& b);
Value transpose(const Value& x, const std::vector<int64_t>& perm);
Value reshape(const Value& x, const rt::Shape& spec);
Value expandDims(const Value& x, int64_t axis);
Value expandDims(const Value& x, const std::vector<int64_t>& axes);
Value squeeze(const Value& x, const rt::Axes& axes);
Value flatten(const Value& x);
Value broadcastTo(const Value& x, const rt::Shape& shape);
Value concat(const Value& xs, int64_t axis);  // xs: a list or tuple of numbers
Value stack(const Value& xs, int64_t axis);
Value take(const Value& x, const Value& idx, int64_t axis);
// The patches of a 2-D window and their adjoint (runtime/Conv.h), recorded.
Value im2col(const Value& x, const rt::Window2d& w, double pad);
Value col2im(const Value& cols, int64_t h, int64_t wd, const rt::Window2d& w);
// cumsum / cumprod (rt::scan); recorded for floats.
Value scan(const Value& x, int64_t axis, bool prod, bool reverse = false);
Value tile(const Value& x, const std::vector<int64_t>& reps);
// valueArg: the `value` as the caller gave it (a number a tape may follow: its gradient is
// the sum of g over the padding), or null.
Value pad(const Value& x, const std::vector<std::pair<int64_t, int64_t>>& widths, const rt::Tensor& value,
          const Value* valueArg = nullptr);

// Indexing and functional updates (x itself is never changed).
Value getIndex(const Value& x, const rt::IndexSpec& spec);
Value gather(const Value& x, const Value& idx);
Value setIndex(const Value& x, const rt::IndexSpec& spec, const Value& v);
Value scatter(const Value& x, const Value& idx, const Value& v);
// base with src's slices added at idx along axis (repeats add up).
Value indexAdd(const Value& base, const Value& idx, const Value& src, int64_t axis);

// A new node standing for x (grad's watched arguments); a leaf when no tape records.
Value identity(const Value& x);

// ---- helpers of the rules
rt::Shape shapeOf(const Value& v);
DType dtypeOf(const Value& v);
// Zeros of v's dtype, shape and weakness.
Value zerosLike(const Value& v);
// g summed over the axes broadcasting added to like's shape, in like's dtype.
Value sumTo(const Value& g, const Value& like);
// g in like's dtype when like is a strong float of another dtype.
Value fitTo(const Value& g, const Value& like);

}  // namespace tdl::vm::ad
