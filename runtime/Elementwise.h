// Elementwise operations with NumPy broadcasting.
//
// Dtype convention: operands of different dtypes are promoted here to their common
// dtype (promote(), SPEC §2). Weak literals are the caller's business: cast a weak
// scalar to the other operand's dtype before calling (Tensor::scalar_of). Result dtypes:
//   add sub mul floordiv mod pow neg square sign : the common dtype; bool operands are
//       computed as i64.
//   div, and exp log log1p sqrt rsqrt sin cos tanh sigmoid : float operands keep their
//       dtype; bool/integer operands give f32.
//   maximum minimum abs relu floor ceil round : the common dtype (floor/ceil/round are the
//       identity on integers).
//   eq ne lt le gt ge isnan isfinite logical_* : bool.
//   bitwise_and bitwise_or bitwise_xor bitwise_not : bool or integer operands only (else Error); on bool they
//       are logical.
// Integer floordiv/mod by zero throws `division by zero`; integer pow with a negative
// exponent throws. Incompatible shapes throw `cannot broadcast shapes A and B`.
#pragma once

#include <string_view>

#include "Tensor.h"

namespace tdl::rt {

enum class BinaryOp : uint8_t {
#define TDL_BINARY_OP(e, n, d) e,
#include "ops.def"
};

enum class UnaryOp : uint8_t {
#define TDL_UNARY_OP(e, n, d) e,
#include "ops.def"
};

std::string_view op_name(BinaryOp op);
std::string_view op_name(UnaryOp op);

// Result dtypes (also for the tracer); throw Error for an invalid dtype.
DType binary_result_dtype(BinaryOp op, DType a, DType b);
DType unary_result_dtype(UnaryOp op, DType x);

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
// The same, writing the result into `reuse`'s buffer when that buffer is not
// shared and already has the result's dtype and shape (an operand that is a
// dead temporary: `x * 1.5 + 0.25` then needs one buffer, not two). Each
// output element depends only on the inputs at its own index, so `reuse` may
// be one of the operands.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor* reuse);
Tensor unary(UnaryOp op, const Tensor& x);

// Named forms: add(a, b), ..., logical_or(a, b); neg(x), ..., isfinite(x).
#define TDL_BINARY_OP(e, n, d) \
  inline Tensor n(const Tensor& a, const Tensor& b) { return binary(BinaryOp::e, a, b); }
#define TDL_UNARY_OP(e, n, d) \
  inline Tensor n(const Tensor& x) { return unary(UnaryOp::e, x); }
#include "ops.def"

// cast(x, dtype): float -> integer truncates toward zero, -> bool tests != 0. Returns x
// itself (shared storage) when the dtype already matches.
Tensor cast(const Tensor& x, DType dtype);

// where(c, a, b): c is converted to bool; a and b are promoted to their common dtype;
// all three broadcast together.
Tensor where(const Tensor& c, const Tensor& a, const Tensor& b);

// clip(x, lo, hi) = minimum(maximum(x, lo), hi).
Tensor clip(const Tensor& x, const Tensor& lo, const Tensor& hi);

}  // namespace tdl::rt
