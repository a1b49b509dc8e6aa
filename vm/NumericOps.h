// Arithmetic on numeric values (inline scalars and tensors), with the weak
// scalar rules of SPEC §2. Every arithmetic operator goes through here; while
// a tape records (vm/autodiff/Tape.h) the calls go to the recording versions
// in vm/autodiff/Ops.h, which compute with the `plain` ones.
//
// Scalar op scalar is computed inline without allocating (the fast path of
// the interpreter); other combinations call the runtime kernels.
#pragma once
#include <string>
#include <vector>

#include "runtime/Elementwise.h"
#include "vm/Chunk.h"
#include "vm/Value.h"
#include "vm/autodiff/Ops.h"
#include "vm/autodiff/Tape.h"

namespace tdl::vm {

// The dtype a weak scalar `w` takes when combined with a strong dtype `s`:
// `s` when w's kind (bool < int < float) is not above s's kind, else the
// promotion of w's default dtype with `s` (weak float with i32 → f32).
DType weakTarget(const Value& w, DType s);
// Where an integer dtype narrower than i64 (i32, i8) is `t`: its bounds, which a weak
// integer taking it must be within (weakTarget; graph fns check the same when they run).
bool narrowIntBounds(DType t, int64_t& lo, int64_t& hi);
// The error of a weak integer `value` (its text: a number, or a fill_format hole "{}")
// that `t` cannot hold, in every engine's words.
std::string weakIntRangeError(const std::string& value, DType t);

namespace plain {  // without the tape
Value binaryValues(rt::BinaryOp op, const Value& a, const Value& b);
Value unaryValues(rt::UnaryOp op, const Value& x);
Value matmulValues(const Value& a, const Value& b);
Value castValue(const Value& x, DType dt);
}  // namespace plain

// binaryValues where `a` (aDead) or `b` (bDead) is a dead temporary whose
// unshared tensor buffer may hold the result (never while a tape records).
Value binaryValuesReusing(rt::BinaryOp op, const Value& a, const Value& b, bool aDead, bool bDead);

inline Value binaryValues(rt::BinaryOp op, const Value& a, const Value& b) {
  if (ad::recording()) [[unlikely]] return ad::binary(op, a, b);
  return plain::binaryValues(op, a, b);
}

// The interpreter's inline fast path for `+ - * /` on two scalars of one dtype
// and weakness (the common case in scalar loops); false when it does not apply.
// One instantiation per operator (the interpreter has a case for each), so the
// operator is known at compile time and the fast path stays a few instructions.
template <rt::BinaryOp OP>
[[gnu::always_inline]] inline bool arithSameKind(const Value& a, const Value& b, Value& out) {
  constexpr rt::BinaryOp op = OP;
  auto apply = [](auto x, auto y) {
    if constexpr (OP == rt::BinaryOp::Add) return x + y;
    else if constexpr (OP == rt::BinaryOp::Sub) return x - y;
    else if constexpr (OP == rt::BinaryOp::Mul) return x * y;
    else return x / y;
  };
  if (a.weak() != b.weak()) {
    // A strong float scalar with a weak number: the weak one takes its dtype (SPEC §2).
    const Value& s = a.weak() ? b : a;
    const Value& w = a.weak() ? a : b;
    if (!s.isFloatScalar() || w.dtype() == DType::Bool) return false;
    double wv = w.isFloatScalar() ? w.rawFloat() : static_cast<double>(w.rawInt());
    if (s.dtype() == DType::F32) {
      float x = a.weak() ? static_cast<float>(wv) : static_cast<float>(a.rawFloat());
      float y = b.weak() ? static_cast<float>(wv) : static_cast<float>(b.rawFloat());
      out = Value::f32(apply(x, y));
    } else {
      double x = a.weak() ? wv : a.rawFloat();
      double y = b.weak() ? wv : b.rawFloat();
      out = Value::f64(apply(x, y));
    }
    return true;
  }
  if (a.dtype() != b.dtype()) return false;
  switch (a.dtype()) {
    case DType::F32:
      if (a.weak()) out = Value::weakFloat(apply(a.rawFloat(), b.rawFloat()));  // exact until decided
      else out = Value::f32(apply(static_cast<float>(a.rawFloat()), static_cast<float>(b.rawFloat())));
      return true;
    case DType::F64: out = Value::f64(apply(a.rawFloat(), b.rawFloat())); return true;
    case DType::I64: {
      if (op == rt::BinaryOp::Div) return false;
      // Integers wrap: compute in uint64.
      auto x = static_cast<uint64_t>(a.rawInt()), y = static_cast<uint64_t>(b.rawInt());
      out = Value::i64(static_cast<int64_t>(apply(x, y)), a.weak());
      return true;
    }
    default: return false;
  }
}
// Fast path of ==, !=, <, <=, >, >= on two number scalars (no bools): the
// comparison in the promoted dtype of SPEC §2, without tensors. False when the
// operands need the general path.
inline bool compareScalars(Op op, const Value& a, const Value& b, Value& out) {
  if (op < Op::Eq || op > Op::Ge || a.dtype() == DType::Bool || b.dtype() == DType::Bool) return false;
  auto cmp = [op](auto x, auto y) {
    switch (op) {
      case Op::Eq: return x == y;
      case Op::Ne: return x != y;
      case Op::Lt: return x < y;
      case Op::Le: return x <= y;
      case Op::Gt: return x > y;
      default: return x >= y;
    }
  };
  bool fa = a.isFloatScalar(), fb = b.isFloatScalar();
  bool weakResult = a.weak() && b.weak();
  if (!fa && !fb) {
    int64_t x = a.rawInt(), y = b.rawInt();
    // A weak integer takes a strong i32's dtype (and wraps, as a cast does).
    if (a.weak() && !b.weak() && b.dtype() == DType::I32) x = static_cast<int32_t>(static_cast<uint64_t>(x));
    if (b.weak() && !a.weak() && a.dtype() == DType::I32) y = static_cast<int32_t>(static_cast<uint64_t>(y));
    out = Value::boolean(cmp(x, y), weakResult);
    return true;
  }
  // A strong integer with a float gives f32 (or f64 with a strong f64): keep to floats here.
  if ((!fa && !a.weak()) || (!fb && !b.weak())) return false;
  double x = fa ? a.rawFloat() : static_cast<double>(a.rawInt());
  double y = fb ? b.rawFloat() : static_cast<double>(b.rawInt());
  bool strongF64 = (fa && !a.weak() && a.dtype() == DType::F64) || (fb && !b.weak() && b.dtype() == DType::F64);
  bool strongF32 = (fa && !a.weak() && a.dtype() == DType::F32) || (fb && !b.weak() && b.dtype() == DType::F32);
  if (strongF32 && !strongF64) out = Value::boolean(cmp(static_cast<float>(x), static_cast<float>(y)), false);
  else out = Value::boolean(cmp(x, y), weakResult);
  return true;
}

inline Value unaryValues(rt::UnaryOp op, const Value& x) {
  if (ad::recording()) [[unlikely]] return ad::unary(op, x);
  return plain::unaryValues(op, x);
}
inline Value matmulValues(const Value& a, const Value& b) {
  if (ad::recording()) [[unlikely]] return ad::matmul(a, b);
  return plain::matmulValues(a, b);
}
// cast(x, dtype); a weak float converts from its exact value.
inline Value castValue(const Value& x, DType dt) {
  if (ad::recording()) [[unlikely]] return ad::cast(x, dt);
  return plain::castValue(x, dt);
}

// Operands of an elementwise builtin as tensors: weak scalars take the dtype
// the strong operands give them (all weak: their default dtypes).
std::vector<rt::Tensor> unifyOperands(const std::vector<Value>& xs);

}  // namespace tdl::vm
