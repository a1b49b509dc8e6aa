// Elementwise operations with NumPy broadcasting.
//
// Dtype convention: operands of different dtypes are promoted here to their common
// dtype (promote(), SPEC §2). Weak literals are the caller's business: cast a weak
// scalar to the other operand's dtype before calling (Tensor::scalar_of). Result dtypes:
//   add sub mul floordiv mod pow neg square sign : the common dtype; bool operands are
//       computed as i64.
//   div, and the ops marked kFloat in ops.def (exp, log, sigmoid, ...): float operands keep
//       their dtype; bool/integer operands give f32.
//   maximum minimum abs relu floor ceil round : the common dtype (floor/ceil/round are the
//       identity on integers).
//   eq ne lt le gt ge isnan isfinite logical_* : bool.
//   bitwise_and bitwise_or bitwise_xor bitwise_not : bool or integer operands only (else Error); on bool they
//       are logical.
// Integer floordiv/mod by zero throws `division by zero`; integer pow with a negative
// exponent throws. Incompatible shapes throw `cannot broadcast shapes A and B`.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "Tensor.h"

namespace tdl::rt {

enum class BinaryOp : uint8_t {
#define TDL_BINARY_OP(e, ...) e,
#include "ops.def"
};

enum class UnaryOp : uint8_t {
#define TDL_UNARY_OP(e, ...) e,
#include "ops.def"
};

// The properties of each op (the props column of ops.def).
enum OpProp : uint32_t {
  kFloat = 1,     // computes in float: bool and integer operands give f32
  kPred = 2,      // gives bool
  kBits = 4,      // bool or integer operands only
  kLogical = 8,   // computes in bool
  kBoolI64 = 16,  // bool operands compute as i64
  kFail = 32,     // may fail on integers (division by zero, negative powers)
  kDiff = 64,     // has a gradient
  kPos = 128,     // real (or differentiable) only for positive operands: log, sqrt, pow's base
};

constexpr uint32_t props(BinaryOp op) {
  switch (op) {
#define TDL_BINARY_OP(e, n, params, p, ...) \
  case BinaryOp::e: return (p);
#include "ops.def"
  }
  return 0;
}
constexpr uint32_t props(UnaryOp op) {
  switch (op) {
#define TDL_UNARY_OP(e, n, p, ...) \
  case UnaryOp::e: return (p);
#include "ops.def"
  }
  return 0;
}
// Whether the op's name is a builtin function (the _BUILTIN entries of ops.def).
constexpr bool is_builtin(BinaryOp op) {
  switch (op) {
#define TDL_BINARY_OP(e, ...) \
  case BinaryOp::e: return false;
#define TDL_BINARY_BUILTIN(e, ...) \
  case BinaryOp::e: return true;
#include "ops.def"
  }
  return false;
}
constexpr bool is_builtin(UnaryOp op) {
  switch (op) {
#define TDL_UNARY_OP(e, ...) \
  case UnaryOp::e: return false;
#define TDL_UNARY_BUILTIN(e, ...) \
  case UnaryOp::e: return true;
#include "ops.def"
  }
  return false;
}
// A binary builtin's parameters, as in ops.def: "a, b" or "x, alpha=0.01".
constexpr const char* builtin_params(BinaryOp op) {
  switch (op) {
#define TDL_BINARY_OP(e, n, params, ...) \
  case BinaryOp::e: return params;
#include "ops.def"
  }
  return "a, b";
}

std::string_view op_name(BinaryOp op);
std::string_view op_name(UnaryOp op);
// The op named `name` (ops.def's name column), if any.
std::optional<UnaryOp> unary_by_name(std::string_view name);
std::optional<BinaryOp> binary_by_name(std::string_view name);

// Result dtypes (also for the tracer); throw Error for an invalid dtype.
DType binary_result_dtype(BinaryOp op, DType a, DType b);
DType unary_result_dtype(UnaryOp op, DType x);
// The dtypes the kernels compute in (operands are converted to it first; code generators
// follow the same rule); throw Error for an invalid dtype.
DType binary_compute_dtype(BinaryOp op, DType a, DType b);
DType unary_compute_dtype(UnaryOp op, DType x);

// A binary builtin's parameter names and the second one's default (builtin_params).
struct BinaryParams {
  std::string a, b;
  std::optional<double> b_default;
};
BinaryParams binary_params(BinaryOp op);

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
// The same, writing the result into `reuse`'s buffer when that buffer is not
// shared and already has the result's dtype and shape (an operand that is a
// dead temporary: `x * 1.5 + 0.25` then needs one buffer, not two). Each
// output element depends only on the inputs at its own index, so `reuse` may
// be one of the operands.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor* reuse);
Tensor unary(UnaryOp op, const Tensor& x);

// Named forms: add(a, b), ..., logical_or(a, b); neg(x), ..., isfinite(x).
#define TDL_BINARY_OP(e, n, ...) \
  inline Tensor n(const Tensor& a, const Tensor& b) { return binary(BinaryOp::e, a, b); }
#define TDL_UNARY_OP(e, n, ...) \
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
