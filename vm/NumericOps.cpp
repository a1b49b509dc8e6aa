#include "vm/NumericOps.h"

#include <fmt/format.h>

#include "runtime/Arith.h"
#include "runtime/Convert.h"
#include "runtime/Error.h"
#include "runtime/Matmul.h"

namespace tdl::vm {

namespace {

using rt::BinaryOp;

// bool < int < float: the kinds that decide how a weak scalar combines.
int kindOf(DType d) { return d == DType::Bool ? 0 : rt::is_float(d) ? 2 : 1; }

DType defaultDtype(const Value& w) { return w.dtype(); }  // weak ints are i64, floats f32, bools bool

bool isComparison(BinaryOp op) {
  return op == BinaryOp::Eq || op == BinaryOp::Ne || op == BinaryOp::Lt || op == BinaryOp::Le ||
         op == BinaryOp::Gt || op == BinaryOp::Ge;
}

// Two weak scalars: the host type the operation is computed in (F64 stands for
// "exact double", I64 for integers, Bool for bools).
DType weakComputeType(BinaryOp op, const Value& a, const Value& b) {
  int k = std::max(kindOf(a.dtype()), kindOf(b.dtype()));
  if (k == 2 || op == BinaryOp::Div) return DType::F64;
  if (k == 1) return DType::I64;
  return DType::Bool;
}

// A result of a weak-only computation, made weak again.
Value makeWeak(const Value& r) {
  if (!r.isScalar()) return r;
  if (rt::is_float(r.dtype())) return Value::weakFloat(r.asDouble());
  if (r.dtype() == DType::Bool) return Value::boolean(r.rawInt() != 0, true);
  return Value::i64(r.asInt(), true);
}

template <class T>
bool compare(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::Eq: return x == y;
    case BinaryOp::Ne: return x != y;
    case BinaryOp::Lt: return x < y;
    case BinaryOp::Le: return x <= y;
    case BinaryOp::Gt: return x > y;
    default: return x >= y;
  }
}

// Integers wrap: compute in the unsigned type.
template <class T>
T wrapArith(BinaryOp op, T x, T y) {
  using U = std::make_unsigned_t<T>;
  U ux = static_cast<U>(x), uy = static_cast<U>(y);
  switch (op) {
    case BinaryOp::Add: return static_cast<T>(ux + uy);
    case BinaryOp::Sub: return static_cast<T>(ux - uy);
    default: return static_cast<T>(ux * uy);
  }
}

template <class T>
T floatArith(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::Add: return x + y;
    case BinaryOp::Sub: return x - y;
    case BinaryOp::Mul: return x * y;
    case BinaryOp::FloorDiv: return rt::detail::floordiv_of(x, y);
    case BinaryOp::Mod: return rt::detail::mod_of(x, y);
    case BinaryOp::Maximum: return rt::detail::max_of(x, y);
    case BinaryOp::Minimum: return rt::detail::min_of(x, y);
    default: return x / y;
  }
}

// Integer //, %, maximum and minimum (the kernels' formulas); false for / (true division is
// no integer op) and where the kernel would fail (// or % by zero: its error).
template <class T>
bool intOther(BinaryOp op, T x, T y, T& r) {
  switch (op) {
    case BinaryOp::Maximum: r = rt::detail::max_of(x, y); return true;
    case BinaryOp::Minimum: r = rt::detail::min_of(x, y); return true;
    case BinaryOp::FloorDiv: return y != 0 && (r = rt::detail::floordiv_of(x, y), true);
    case BinaryOp::Mod: return y != 0 && (r = rt::detail::mod_of(x, y), true);
    default: return false;
  }
}

bool isFastArith(BinaryOp op) {
  return op == BinaryOp::Add || op == BinaryOp::Sub || op == BinaryOp::Mul || op == BinaryOp::Div ||
         op == BinaryOp::FloorDiv || op == BinaryOp::Mod || op == BinaryOp::Maximum || op == BinaryOp::Minimum;
}

bool isAddSubMul(BinaryOp op) { return op == BinaryOp::Add || op == BinaryOp::Sub || op == BinaryOp::Mul; }

// Scalar op scalar in dtype `ct` without allocating, when the op allows it.
bool fastScalar(BinaryOp op, DType ct, const Value& a, const Value& b, Value& out) {
  bool cmp = isComparison(op);
  if (!cmp && !isFastArith(op)) return false;
  switch (ct) {
    case DType::F64: {
      double x = a.asDouble(), y = b.asDouble();
      out = cmp ? Value::boolean(compare(op, x, y)) : Value::f64(floatArith(op, x, y));
      return true;
    }
    case DType::F32: {
      float x = static_cast<float>(a.asDouble()), y = static_cast<float>(b.asDouble());
      out = cmp ? Value::boolean(compare(op, x, y)) : Value::f32(floatArith(op, x, y));
      return true;
    }
    case DType::I64: {
      int64_t x = a.rawInt(), y = b.rawInt();
      if (!cmp && !isAddSubMul(op)) {
        int64_t r = 0;
        if (!intOther(op, x, y, r)) return false;
        out = Value::i64(r);
        return true;
      }
      out = cmp ? Value::boolean(compare(op, x, y)) : Value::i64(wrapArith(op, x, y));
      return true;
    }
    case DType::I32: {
      auto x = static_cast<int32_t>(a.rawInt()), y = static_cast<int32_t>(b.rawInt());
      if (!cmp && !isAddSubMul(op)) {
        int32_t r = 0;
        if (!intOther(op, x, y, r)) return false;
        out = Value::i32(r);
        return true;
      }
      out = cmp ? Value::boolean(compare(op, x, y)) : Value::i32(wrapArith(op, x, y));
      return true;
    }
    case DType::I8:
      return false;
    case DType::Bool:
      if (!cmp || (op != BinaryOp::Eq && op != BinaryOp::Ne)) return false;
      out = Value::boolean(compare(op, a.rawInt() != 0, b.rawInt() != 0));
      return true;
  }
  return false;
}

Value scalarBinary(BinaryOp op, const Value& a, const Value& b) {
  bool weak = a.weak() && b.weak();
  DType ct;
  if (weak) ct = weakComputeType(op, a, b);
  else if (a.weak()) ct = weakTarget(a, b.dtype());
  else if (b.weak()) ct = weakTarget(b, a.dtype());
  else ct = rt::promote(a.dtype(), b.dtype());
  Value out;
  if (fastScalar(op, ct, a, b, out)) return weak ? makeWeak(out) : out;
  Value r = fromTensor(rt::binary(op, scalarTensor(a, ct), scalarTensor(b, ct)));
  return weak ? makeWeak(r) : r;
}

// A scalar operand against a tensor of dtype `other`.
rt::Tensor operandFor(const Value& v, DType other) {
  if (v.isScalar() && v.weak()) return scalarTensor(v, weakTarget(v, other));
  return toTensor(v);
}

void requireNumeric(const Value& v, const char* what) {
  if (!v.isNumeric())
    throw rt::Error(fmt::format("{} needs numbers or tensors, got a {}", what, tagName(v.tag())));
}

}  // namespace

bool narrowIntBounds(DType t, int64_t& lo, int64_t& hi) {
  if (t != DType::I32 && t != DType::I8) return false;
  lo = t == DType::I8 ? INT8_MIN : INT32_MIN;
  hi = t == DType::I8 ? INT8_MAX : INT32_MAX;
  return true;
}

std::string weakIntRangeError(const std::string& value, DType t) {
  int64_t lo = 0, hi = 0;
  narrowIntBounds(t, lo, hi);
  return fmt::format("the integer {} is out of range for {} (at most {}): cast the tensor to a wider dtype, or cast the "
                     "number to wrap it",
                     value, rt::dtype_name(t), hi);
}

DType weakTarget(const Value& w, DType s) {
  DType t = kindOf(w.dtype()) <= kindOf(s) ? s : rt::promote(defaultDtype(w), s);
  // An integer the narrower integer dtype cannot hold is an error, as NumPy 2's (an i32
  // tensor + 2**40 would otherwise wrap to + 0); cast() wraps on purpose.
  int64_t lo = 0, hi = 0;
  if (w.isScalar() && !w.isFloatScalar() && w.dtype() != DType::Bool && narrowIntBounds(t, lo, hi) &&
      (w.rawInt() < lo || w.rawInt() > hi))
    throw rt::Error(weakIntRangeError(std::to_string(w.rawInt()), t));
  return t;
}

Value plain::binaryValues(BinaryOp op, const Value& a, const Value& b) {
  if (a.isScalar() && b.isScalar()) return scalarBinary(op, a, b);
  requireNumeric(a, "this operator");
  requireNumeric(b, "this operator");
  DType da = a.isTensor() ? a.as<TensorObj>()->t.dtype() : a.dtype();
  DType db = b.isTensor() ? b.as<TensorObj>()->t.dtype() : b.dtype();
  return fromTensor(rt::binary(op, operandFor(a, db), operandFor(b, da)));
}

Value binaryValuesReusing(BinaryOp op, const Value& a, const Value& b, bool aDead, bool bDead) {
  auto reusable = [](const Value& v, bool dead) -> rt::Tensor* {
    if (!dead || !v.isTensor() || !v.unique()) return nullptr;
    rt::Tensor& t = v.as<TensorObj>()->t;
    return t.is_unique() ? &t : nullptr;
  };
  rt::Tensor* reuse = nullptr;
  if (!ad::recording()) reuse = reusable(a, aDead) ? reusable(a, aDead) : reusable(b, bDead);
  if (!reuse || !a.isNumeric() || !b.isNumeric()) return binaryValues(op, a, b);
  DType da = a.isTensor() ? a.as<TensorObj>()->t.dtype() : a.dtype();
  DType db = b.isTensor() ? b.as<TensorObj>()->t.dtype() : b.dtype();
  return fromTensor(rt::binary(op, operandFor(a, db), operandFor(b, da), reuse));
}

Value plain::unaryValues(rt::UnaryOp op, const Value& x) {
  requireNumeric(x, "this operation");
  if (x.isScalar()) {
    if (op == rt::UnaryOp::Neg && x.dtype() != DType::Bool) {
      if (x.isFloatScalar()) return Value::floatLike(x.dtype(), -x.rawFloat(), x.weak());
      int64_t n = static_cast<int64_t>(0ull - static_cast<uint64_t>(x.rawInt()));
      if (x.dtype() == DType::I32) return Value::i32(static_cast<int32_t>(n));
      return Value::i64(n, x.weak());
    }
    // |x| of a strong number without a tensor (the kernel's: integers wrap).
    if (op == rt::UnaryOp::Abs && !x.weak() && x.dtype() != DType::Bool) {
      if (x.dtype() == DType::F32) return Value::f32(std::fabs(static_cast<float>(x.rawFloat())));
      if (x.dtype() == DType::F64) return Value::f64(std::fabs(x.rawFloat()));
      if (x.dtype() == DType::I64) return Value::i64(x.rawInt() < 0 ? rt::detail::wrap_neg(x.rawInt()) : x.rawInt());
      if (x.dtype() == DType::I32) {
        auto v = static_cast<int32_t>(x.rawInt());
        return Value::i32(v < 0 ? rt::detail::wrap_neg(v) : v);
      }
    }
    if (x.weak()) {
      DType exact = x.isFloatScalar() ? DType::F64 : x.dtype();
      Value r = fromTensor(rt::unary(op, scalarTensor(x, exact)));
      // Transcendentals of weak values follow their default dtype.
      return r.isFloatScalar() && !x.isFloatScalar() ? r : makeWeak(r);
    }
  }
  return fromTensor(rt::unary(op, toTensor(x)));
}

Value plain::matmulValues(const Value& a, const Value& b) {
  requireNumeric(a, "@");
  requireNumeric(b, "@");
  return fromTensor(rt::matmul(toTensor(a), toTensor(b)));
}

Value plain::castValue(const Value& x, DType dt) {
  requireNumeric(x, "cast");
  if (x.isScalar()) {
    if (x.isFloatScalar()) {
      double d = x.rawFloat();
      switch (dt) {
        case DType::Bool: return Value::boolean(d != 0);
        case DType::I32: return Value::i32(rt::convert<int32_t>(d));
        case DType::I64: return Value::i64(rt::convert<int64_t>(d));
        case DType::F32: return Value::f32(static_cast<float>(d));
        case DType::F64: return Value::f64(d);
        case DType::I8: break;  // not a language dtype: rt::cast refuses it
      }
    }
    int64_t i = x.rawInt();
    switch (dt) {
      case DType::Bool: return Value::boolean(i != 0);
      case DType::I32: return Value::i32(static_cast<int32_t>(i));
      case DType::I64: return Value::i64(i);
      case DType::F32: return Value::f32(static_cast<float>(i));
      case DType::F64: return Value::f64(static_cast<double>(i));
      case DType::I8: break;
    }
  }
  return fromTensor(rt::cast(x.as<TensorObj>()->t, dt));
}

std::vector<rt::Tensor> unifyOperands(const std::vector<Value>& xs) {
  bool anyStrong = false;
  DType s = DType::Bool;
  for (auto& x : xs) {
    if (x.isScalar() && x.weak()) continue;
    DType d = x.isTensor() ? x.as<TensorObj>()->t.dtype() : x.dtype();
    s = anyStrong ? rt::promote(s, d) : d;
    anyStrong = true;
  }
  std::vector<rt::Tensor> out;
  out.reserve(xs.size());
  for (auto& x : xs) {
    if (x.isScalar() && x.weak() && anyStrong) out.push_back(scalarTensor(x, weakTarget(x, s)));
    else out.push_back(toTensor(x));
  }
  return out;
}

}  // namespace tdl::vm
