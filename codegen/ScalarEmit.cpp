#include "codegen/ScalarEmit.h"

#include <fmt/format.h>

#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/IntrinsicsX86.h>
#include <llvm/IR/Module.h>

#include "runtime/Error.h"
#include "runtime/OpMath.h"

namespace tdl::codegen {

namespace {

// Why an op is not emitted (caught by emitUnary/emitBinary).
struct NotEmitted {
  std::string why;
};

using U = rt::UnaryOp;
using B = rt::BinaryOp;

}  // namespace

llvm::Type* ScalarEmitter::ty(DType d) {
  switch (d) {
    case DType::Bool: return b_.getInt1Ty();
    case DType::I32: return b_.getInt32Ty();
    case DType::I64: return b_.getInt64Ty();
    case DType::F32: return b_.getFloatTy();
    case DType::F64: return b_.getDoubleTy();
    case DType::I8: return b_.getInt8Ty();
  }
  return b_.getInt64Ty();
}

DType ScalarEmitter::dtypeOf(V x) {
  llvm::Type* t = x->getType();
  if (t->isFloatTy()) return DType::F32;
  if (t->isDoubleTy()) return DType::F64;
  if (t->isIntegerTy(1)) return DType::Bool;
  if (t->isIntegerTy(32)) return DType::I32;
  return DType::I64;
}

ScalarEmitter::V ScalarEmitter::convert(V x, DType from, DType to) {
  if (from == to) return x;
  llvm::Type* t = ty(to);
  if (to == DType::Bool)
    return isFloat(from) ? b_.CreateFCmpUNE(x, llvm::ConstantFP::get(x->getType(), 0.0))
                         : b_.CreateICmpNE(x, llvm::ConstantInt::get(x->getType(), 0));
  if (from == DType::Bool) return isFloat(to) ? b_.CreateUIToFP(x, t) : b_.CreateZExt(x, t);
  if (isFloat(from) && isFloat(to)) return b_.CreateFPCast(x, t);
  if (isFloat(from)) return b_.CreateFreeze(b_.CreateFPToSI(x, t));
  if (isFloat(to)) return b_.CreateSIToFP(x, t);
  return b_.CreateSExtOrTrunc(x, t);
}

ScalarEmitter::V ScalarEmitter::k(double c, V like) {
  llvm::Type* t = like->getType();
  if (t->isFloatingPointTy()) return llvm::ConstantFP::get(t, c);
  return llvm::ConstantInt::getSigned(t, static_cast<int64_t>(c));
}

// Runs `emit`; nullptr (and why()) where the op has no code on this target.
template <class F>
ScalarEmitter::V ScalarEmitter::attempt(F&& emit) {
  try {
    return emit();
  } catch (const rt::Error& e) {
    why_ = e.what();
  } catch (const NotEmitted& n) {
    why_ = n.why;
  }
  return nullptr;
}

ScalarEmitter::V ScalarEmitter::emitUnary(rt::UnaryOp op, V x, DType dx, DType rd) {
  return attempt([&] {
    DType ct = rt::unary_compute_dtype(op, dx);
    V out = unaryIn(op, convert(x, dx, ct));
    return convert(out, dtypeOf(out), rd);
  });
}

ScalarEmitter::V ScalarEmitter::emitBinary(rt::BinaryOp op, V x, DType dx, V y, DType dy, DType rd) {
  return attempt([&] {
    DType ct = rt::binary_compute_dtype(op, dx, dy);
    V out = binaryIn(op, convert(x, dx, ct), convert(y, dy, ct));
    return convert(out, dtypeOf(out), rd);
  });
}

ScalarEmitter::V ScalarEmitter::unaryIn(rt::UnaryOp op, V a) {
  DType ct = dtypeOf(a);
  bool f = isFloat(ct);
  llvm::Type* t = a->getType();
  V zero = f ? llvm::ConstantFP::get(t, 0.0) : llvm::ConstantInt::get(t, 0);
  V one = f ? llvm::ConstantFP::get(t, 1.0) : llvm::ConstantInt::get(t, 1);
  switch (op) {
    case U::Neg: return f ? b_.CreateFNeg(a) : b_.CreateSub(zero, a);
    case U::Square: return f ? b_.CreateFMul(a, a) : b_.CreateMul(a, a);
    case U::LogicalNot:
    case U::BitNot: return b_.CreateNot(a);
    case U::Abs:
      if (ct == DType::Bool) return a;
      if (f) return b_.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, a);
      return b_.CreateSelect(b_.CreateICmpSLT(a, zero), b_.CreateSub(zero, a), a);
    case U::Relu:
      if (ct == DType::Bool) return a;
      if (f) return b_.CreateSelect(b_.CreateOr(b_.CreateFCmpOGT(a, zero), b_.CreateFCmpUNO(a, a)), a, zero);
      return b_.CreateSelect(b_.CreateICmpSGT(a, zero), a, zero);
    case U::Floor:
    case U::Ceil:
    case U::Round:
      if (!f) return a;
      return b_.CreateUnaryIntrinsic(
          op == U::Floor ? llvm::Intrinsic::floor : op == U::Ceil ? llvm::Intrinsic::ceil : llvm::Intrinsic::rint, a);
    case U::Sign: {
      V pos = f ? b_.CreateFCmpOGT(a, zero) : b_.CreateICmpSGT(a, zero);
      V negv = f ? b_.CreateFCmpOLT(a, zero) : b_.CreateICmpSLT(a, zero);
      V m1 = f ? llvm::ConstantFP::get(t, -1.0) : llvm::ConstantInt::getSigned(t, -1);
      V out = b_.CreateSelect(pos, one, b_.CreateSelect(negv, m1, zero));
      return f ? b_.CreateSelect(b_.CreateFCmpUNO(a, a), a, out) : out;
    }
    case U::IsNan: return f ? b_.CreateFCmpUNO(a, a) : b_.getFalse();
    case U::IsFinite:
      return f ? b_.CreateFCmpOLT(b_.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, a), llvm::ConstantFP::getInfinity(t))
               : b_.getTrue();
    case U::Sqrt: return b_.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, a);
    default: break;
  }
  if (!rt::opmath::is_primitive(op)) return composite(op, a);
  if (!f) throw NotEmitted{fmt::format("{} of {}", rt::op_name(op), dtype_name(ct))};
  if (V r = floatPrimitive(op, a)) return r;
  throw NotEmitted{fmt::format("{} {} needs libdevice", dtype_name(ct), rt::op_name(op))};
}

ScalarEmitter::V ScalarEmitter::composite(rt::UnaryOp op, V x) {
  switch (op) {
#define TDL_UNARY_OP(e, ...)                                          \
  case U::e:                                                          \
    if constexpr (!rt::opmath::is_primitive_v<U::e>)                  \
      return rt::opmath::unary_math<U::e>(*this, x);                  \
    break;
#include "runtime/ops.def"
  }
  throw NotEmitted{fmt::format("'{}'", rt::op_name(op))};
}

ScalarEmitter::V ScalarEmitter::composite(rt::BinaryOp op, V x, V y) {
  switch (op) {
#define TDL_BINARY_OP(e, ...)                                         \
  case B::e:                                                          \
    if constexpr (!rt::opmath::is_primitive_v2<B::e>)                 \
      return rt::opmath::binary_math<B::e>(*this, x, y);              \
    break;
#include "runtime/ops.def"
  }
  throw NotEmitted{fmt::format("'{}'", rt::op_name(op))};
}

// Python floor division / modulo on integers (y == 0 was checked; y == -1 avoids the trap).
ScalarEmitter::V ScalarEmitter::intFloorDivMod(V x, V y, bool isMod) {
  llvm::Type* t = x->getType();
  auto* zero = llvm::ConstantInt::get(t, 0);
  auto* minus1 = llvm::ConstantInt::getSigned(t, -1);
  V isM1 = b_.CreateICmpEQ(y, minus1);
  V safeY = b_.CreateSelect(isM1, llvm::ConstantInt::get(t, 1), y);
  V q = b_.CreateSDiv(x, safeY);
  V r = b_.CreateSRem(x, safeY);
  V adjust = b_.CreateAnd(b_.CreateICmpNE(r, zero), b_.CreateICmpNE(b_.CreateICmpSLT(r, zero), b_.CreateICmpSLT(y, zero)));
  if (isMod) return b_.CreateSelect(isM1, zero, b_.CreateSelect(adjust, b_.CreateAdd(r, y), r));
  return b_.CreateSelect(isM1, b_.CreateSub(zero, x),
                         b_.CreateSelect(adjust, b_.CreateSub(q, llvm::ConstantInt::get(t, 1)), q));
}

// The runtime's float floordiv_of / mod_of (NumPy's npy_divmod); frem is C's fmod.
ScalarEmitter::V ScalarEmitter::floatFloorDivMod(V x, V y, bool isMod) {
  llvm::Type* t = x->getType();
  auto C = [&](double v) { return llvm::ConstantFP::get(t, v); };
  V m = b_.CreateFRem(x, y);
  // m != 0 && (y < 0) != (m < 0)
  V adjust = b_.CreateAnd(b_.CreateFCmpUNE(m, C(0.0)), b_.CreateXor(b_.CreateFCmpOLT(y, C(0.0)), b_.CreateFCmpOLT(m, C(0.0))));
  V yZero = b_.CreateFCmpOEQ(y, C(0.0));
  if (isMod) {
    V r = b_.CreateSelect(adjust, b_.CreateFAdd(m, y), m);
    r = b_.CreateSelect(b_.CreateFCmpOEQ(m, C(0.0)), b_.CreateBinaryIntrinsic(llvm::Intrinsic::copysign, C(0.0), y), r);
    return b_.CreateSelect(yZero, m, r);
  }
  V div = b_.CreateFDiv(b_.CreateFSub(x, m), y);
  div = b_.CreateSelect(adjust, b_.CreateFSub(div, C(1.0)), div);
  V fl = b_.CreateUnaryIntrinsic(llvm::Intrinsic::floor, div);
  fl = b_.CreateSelect(b_.CreateFCmpOGT(b_.CreateFSub(div, fl), C(0.5)), b_.CreateFAdd(fl, C(1.0)), fl);
  V q = b_.CreateFDiv(x, y);
  V r = b_.CreateSelect(b_.CreateFCmpOEQ(div, C(0.0)), b_.CreateBinaryIntrinsic(llvm::Intrinsic::copysign, C(0.0), q), fl);
  return b_.CreateSelect(yZero, q, r);
}

ScalarEmitter::V ScalarEmitter::binaryIn(rt::BinaryOp op, V a, V v) {
  DType ct = dtypeOf(a);
  bool f = isFloat(ct);
  bool isBool = ct == DType::Bool;
  switch (op) {
    case B::Add: return f ? b_.CreateFAdd(a, v) : b_.CreateAdd(a, v);
    case B::Sub: return f ? b_.CreateFSub(a, v) : b_.CreateSub(a, v);
    case B::Mul: return f ? b_.CreateFMul(a, v) : b_.CreateMul(a, v);
    case B::Div: return b_.CreateFDiv(a, v);
    case B::Eq: return f ? b_.CreateFCmpOEQ(a, v) : b_.CreateICmpEQ(a, v);
    case B::Ne: return f ? b_.CreateFCmpUNE(a, v) : b_.CreateICmpNE(a, v);
    case B::Lt: return f ? b_.CreateFCmpOLT(a, v) : isBool ? b_.CreateICmpULT(a, v) : b_.CreateICmpSLT(a, v);
    case B::Le: return f ? b_.CreateFCmpOLE(a, v) : isBool ? b_.CreateICmpULE(a, v) : b_.CreateICmpSLE(a, v);
    case B::Gt: return f ? b_.CreateFCmpOGT(a, v) : isBool ? b_.CreateICmpUGT(a, v) : b_.CreateICmpSGT(a, v);
    case B::Ge: return f ? b_.CreateFCmpOGE(a, v) : isBool ? b_.CreateICmpUGE(a, v) : b_.CreateICmpSGE(a, v);
    case B::BitAnd:
    case B::LogicalAnd: return b_.CreateAnd(a, v);
    case B::BitOr:
    case B::LogicalOr: return b_.CreateOr(a, v);
    case B::BitXor: return b_.CreateXor(a, v);
    case B::Maximum:
    case B::Minimum: {
      // rt's max_of/min_of: floats propagate a NaN of the first operand.
      bool mx = op == B::Maximum;
      V pick;
      if (f) pick = b_.CreateOr(mx ? b_.CreateFCmpOGT(a, v) : b_.CreateFCmpOLT(a, v), b_.CreateFCmpUNO(a, a));
      else if (isBool) pick = mx ? b_.CreateICmpUGT(a, v) : b_.CreateICmpULT(a, v);
      else pick = mx ? b_.CreateICmpSGT(a, v) : b_.CreateICmpSLT(a, v);
      return b_.CreateSelect(pick, a, v);
    }
    case B::FloorDiv:
    case B::Mod:
      if (f) return floatFloorDivMod(a, v, op == B::Mod);
    {
      V isZero = b_.CreateICmpEQ(v, llvm::ConstantInt::get(v->getType(), 0));
      if (!checkDivisor(isZero)) throw NotEmitted{"integer division may fail"};
      // A target that records the failure and goes on (a GPU thread) divides by 1 instead.
      return intFloorDivMod(a, b_.CreateSelect(isZero, llvm::ConstantInt::get(v->getType(), 1), v), op == B::Mod);
    }
    case B::Pow: {
      if (!f) throw NotEmitted{"integer ** may fail"};
      V p = floatPow(a, v);
      if (!p) throw NotEmitted{"** not in kernels yet"};
      // x ** 2 is x * x, correctly rounded (the runtime's pow_of).
      return b_.CreateSelect(b_.CreateFCmpOEQ(v, llvm::ConstantFP::get(a->getType(), 2.0)), b_.CreateFMul(a, a), p);
    }
    default: break;
  }
  return composite(op, a, v);
}

// ---- f32 polynomials

namespace {

struct F32 {
  llvm::IRBuilder<>& b;
  llvm::Type* t = nullptr;  // f32, or a vector of f32 (constants splat)
  llvm::Type* type() { return t ? t : b.getFloatTy(); }
  llvm::Constant* C(double v) { return llvm::ConstantFP::get(type(), v); }
  llvm::Value* poly(llvm::Value* x, std::initializer_list<double> cs) {
    llvm::Value* y = nullptr;
    // y * x + c as llvm.fmuladd: one FMA where the target has it (x86-64-v3, NVPTX),
    // else the multiply and add.
    for (double c : cs)
      y = y ? b.CreateIntrinsic(llvm::Intrinsic::fmuladd, {type()}, {y, x, C(c)}) : static_cast<llvm::Value*>(C(c));
    return y;
  }
};

}  // namespace

// runtime/Libm.h's exp_core_f32: e^r for x = n ln 2 + r (returned), n to nearest (into n);
// the polynomial's Horner steps are llvm.fmuladd when `fused` (one FMA where the target has
// it, as the eager kernel's exp_f32_host chooses), else a multiply and an add. Scalar or
// vector f32 (constants splat).
static llvm::Value* emitExpCoreF32(llvm::IRBuilder<>& b, llvm::Value* x, llvm::Value*& n, bool fused) {
  F32 m{b, x->getType()};
  auto C = [&](double v) { return m.C(v); };
  llvm::Value* magic = C(0x1.8p23);
  n = b.CreateFSub(b.CreateFAdd(b.CreateFMul(x, C(1.44269504088896341)), magic), magic);
  llvm::Value* r = b.CreateFSub(b.CreateFSub(x, b.CreateFMul(n, C(0.693359375))), b.CreateFMul(n, C(-2.12194440e-4)));
  llvm::Value* q;
  if (fused) {
    q = m.poly(r, {1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1});
  } else {
    q = C(1.9875691500e-4);
    for (double c : {1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1})
      q = b.CreateFAdd(b.CreateFMul(q, r), C(c));
  }
  return b.CreateFAdd(b.CreateFAdd(b.CreateFMul(q, b.CreateFMul(r, r)), r), C(1.0));
}

// f32 exp, runtime/Libm.h's exp_f32 step for step (its comment has the method): the eager
// kernels get the same bits on the same machine (FMA in the polynomial where it has them).
llvm::Value* emitExpF32(llvm::IRBuilder<>& b, llvm::Value* x, bool scalef) {
  // Scalar or a vector of f32 (the AVX-512 variants of callExpF32, codegen/LlvmPasses.cpp):
  // constants splat.
  llvm::Type* ft = x->getType();
  F32 m{b, ft};
  auto C = [&](double v) { return m.C(v); };
  llvm::Value* tiny = b.CreateFCmpOLT(x, C(-104.0));
  llvm::Value* cx = b.CreateSelect(b.CreateFCmpOGT(x, C(89.0)), C(89.0), x);
  cx = b.CreateSelect(tiny, C(0.0), cx);
  llvm::Value* n;
  llvm::Value* y = emitExpCoreF32(b, cx, n, true);
  llvm::Value* e;
  if (scalef) {
    // vscalefps: y * 2^n rounded once, the bits of the two steps below (whose first
    // product is exact); NaN in, NaN out.
    auto* vt = llvm::cast<llvm::FixedVectorType>(ft);
    unsigned lanes = vt->getNumElements();
    if (lanes == 16)
      e = b.CreateIntrinsic(llvm::Intrinsic::x86_avx512_mask_scalef_ps_512, {},
                            {y, n, llvm::Constant::getNullValue(vt), b.getInt16(0xffff), b.getInt32(4)});
    else
      e = b.CreateIntrinsic(llvm::Intrinsic::x86_avx512_mask_scalef_ps_256, {},
                            {y, n, llvm::Constant::getNullValue(vt), b.getInt8(0xff)});
  } else {
    // NaN compares false: n becomes -151, a valid integer (y is NaN, and so is the result).
    n = b.CreateSelect(b.CreateFCmpOGT(n, C(-151.0)), n, C(-151.0));
    llvm::Type* it = ft->getWithNewType(b.getInt32Ty());
    auto I = [&](int v) { return llvm::ConstantInt::get(it, static_cast<uint64_t>(static_cast<int64_t>(v)), true); };
    llvm::Value* k = b.CreateFPToSI(n, it);
    llvm::Value* k1 = b.CreateAShr(k, I(1));
    llvm::Value* k2 = b.CreateSub(k, k1);
    auto pow2 = [&](llvm::Value* v) { return b.CreateBitCast(b.CreateShl(b.CreateAdd(v, I(127)), I(23)), ft); };
    e = b.CreateFMul(b.CreateFMul(y, pow2(k1)), pow2(k2));
  }
  return b.CreateSelect(tiny, C(0.0), e);
}

// logf: x = m 2^e with m in [sqrt(1/2), sqrt(2)), degree-9 polynomial in m - 1.
llvm::Value* emitLogF32(llvm::IRBuilder<>& b, llvm::Value* x) {
  F32 c{b};
  auto* i32t = b.getInt32Ty();
  auto* f = b.getFloatTy();
  // Subnormals: scale by 2^23 first.
  llvm::Value* sub = b.CreateFCmpOLT(x, c.C(1.17549435e-38));
  llvm::Value* xs = b.CreateSelect(sub, b.CreateFMul(x, c.C(8388608.0)), x);
  llvm::Value* bits = b.CreateBitCast(xs, i32t);
  llvm::Value* e = b.CreateSub(b.CreateAnd(b.CreateLShr(bits, 23), b.getInt32(0xff)), b.getInt32(126));
  e = b.CreateSub(e, b.CreateSelect(sub, b.getInt32(23), b.getInt32(0)));
  llvm::Value* m = b.CreateBitCast(b.CreateOr(b.CreateAnd(bits, b.getInt32(0x807fffff)), b.getInt32(0x3f000000)), f);
  llvm::Value* small = b.CreateFCmpOLT(m, c.C(0.707106781186547524));
  e = b.CreateSub(e, b.CreateZExt(small, i32t));
  m = b.CreateSelect(small, b.CreateFSub(b.CreateFAdd(m, m), c.C(1.0)), b.CreateFSub(m, c.C(1.0)));
  llvm::Value* fe = b.CreateSIToFP(e, f);
  llvm::Value* z = b.CreateFMul(m, m);
  llvm::Value* y = c.poly(m, {7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1,
                              -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1});
  y = b.CreateFMul(b.CreateFMul(y, m), z);
  y = b.CreateFAdd(y, b.CreateFMul(fe, c.C(-2.12194440e-4)));
  y = b.CreateFSub(y, b.CreateFMul(z, c.C(0.5)));
  llvm::Value* r = b.CreateFAdd(b.CreateFAdd(m, y), b.CreateFMul(fe, c.C(0.693359375)));
  // Special values: NaN or x < 0 → NaN, 0 → -inf, +inf → +inf.
  r = b.CreateSelect(b.CreateFCmpOEQ(x, c.C(0.0)), llvm::ConstantFP::getInfinity(f, true), r);
  r = b.CreateSelect(b.CreateFCmpOEQ(x, llvm::ConstantFP::getInfinity(f)), x, r);
  return b.CreateSelect(b.CreateFCmpULT(x, c.C(0.0)), llvm::ConstantFP::getNaN(f), r);
}

// log1p(x) = log(u) * x / (u - 1) with u = 1 + x (exact when u == 1).
llvm::Value* emitLog1pF32(llvm::IRBuilder<>& b, llvm::Value* x) {
  F32 c{b};
  llvm::Value* u = b.CreateFAdd(x, c.C(1.0));
  llvm::Value* d = b.CreateFSub(u, c.C(1.0));
  llvm::Value* r = b.CreateFDiv(b.CreateFMul(emitLogF32(b, u), x), d);
  r = b.CreateSelect(b.CreateFCmpOEQ(d, c.C(0.0)), x, r);
  return b.CreateSelect(b.CreateFCmpOEQ(u, llvm::ConstantFP::getInfinity(b.getFloatTy())), u, r);
}

// expm1(x) = (u - 1) * x / log(u) with u = e^x (Kahan; exact when u == 1).
llvm::Value* emitExpm1F32(llvm::IRBuilder<>& b, llvm::Value* x) {
  F32 c{b};
  llvm::Value* u = emitExpF32(b, x);
  llvm::Value* um1 = b.CreateFSub(u, c.C(1.0));
  llvm::Value* r = b.CreateFDiv(b.CreateFMul(um1, x), emitLogF32(b, u));
  r = b.CreateSelect(b.CreateFCmpOEQ(u, c.C(1.0)), x, r);
  r = b.CreateSelect(b.CreateFCmpOEQ(um1, c.C(-1.0)), c.C(-1.0), r);
  return b.CreateSelect(b.CreateFCmpOEQ(u, llvm::ConstantFP::getInfinity(b.getFloatTy())), u, r);
}

// rt::tanh_f32's steps (runtime/Libm.h), operation for operation, its ?: as selects.
llvm::Value* emitTanhF32(llvm::IRBuilder<>& b, llvm::Value* x) {
  llvm::Type* ft = x->getType();  // f32 or a vector of it: constants splat
  llvm::Type* it = ft->getWithNewType(b.getInt32Ty());
  auto C = [&](float v) { return llvm::ConstantFP::get(ft, v); };
  auto I = [&](int32_t v) { return llvm::ConstantInt::get(it, static_cast<uint64_t>(static_cast<int64_t>(v)), true); };
  auto add = [&](llvm::Value* l, llvm::Value* r) { return b.CreateFAdd(l, r); };
  auto mul = [&](llvm::Value* l, llvm::Value* r) { return b.CreateFMul(l, r); };
  auto below = [&](llvm::Value* v, float bound, llvm::Value* t, llvm::Value* e) {  // v < bound ? t : e
    return b.CreateSelect(b.CreateFCmpOLT(v, C(bound)), t, e);
  };
  const float kTiny = 0x1p-12f, kSmall = 0.6f, kBig = 9.1f;
  llvm::Value* a = b.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, x);
  llvm::Value* as = below(a, kTiny, C(kTiny), a);
  llvm::Value* z = mul(as, as);
  llvm::Value* p = C(-5.8950865641e-03f);
  for (float c : {2.0795915276e-02f, -5.3783815354e-02f, 1.3331924379e-01f, -3.3333298564e-01f}) p = add(mul(p, z), C(c));
  llvm::Value* small = add(as, mul(mul(as, z), p));
  small = below(a, kTiny, a, small);
  llvm::Value* al = below(a, kBig, a, C(kBig));
  al = below(al, kSmall, C(kSmall), al);
  llvm::Value* n;
  llvm::Value* q = emitExpCoreF32(b, mul(C(-2.0f), al), n, false);
  // n is an integer in [-27, -2] in every lane (al is clamped, NaN too): 2^n from its exponent bits.
  llvm::Value* scale = b.CreateBitCast(b.CreateShl(b.CreateAdd(b.CreateFPToSI(n, it), I(127)), I(23)), ft);
  llvm::Value* e = mul(q, scale);
  llvm::Value* big = b.CreateFSub(C(1.0f), b.CreateFDiv(add(e, e), add(C(1.0f), e)));
  llvm::Value* res = b.CreateSelect(b.CreateFCmpOGE(a, C(kSmall)), big, small);  // NaN: small's NaN
  return b.CreateBinaryIntrinsic(llvm::Intrinsic::copysign, res, x);
}

// The reduction of a large |x| (at least 2; `ax` is |x|): x = n pi/2 + r with |r| <= pi/4 and
// n mod 4 returned, from the bits of 2/pi (Payne and Hanek's method in the form of ARM's
// optimized-routines sinf: a 32 x 96-bit product in 2.62 fixed point gives the exact
// fraction; r is accurate to 33 bits). Branch-free: the table words are picked by selects.
static void reduceLargeF32(llvm::IRBuilder<>& b, llvm::Value* ax, llvm::Value*& r, llvm::Value*& n) {
  // 2/pi in 32-bit windows stepping by a byte (window k holds bytes k-3 .. k of its fraction).
  static constexpr uint32_t kInvPio4[24] = {
      0xa2,       0xa2f9,     0xa2f983,   0xa2f9836e, 0xf9836e4e, 0x836e4e44, 0x6e4e4415, 0x4e441529,
      0x441529fc, 0x1529fc27, 0x29fc2757, 0xfc2757d1, 0x2757d1f5, 0x57d1f534, 0xd1f534dd, 0xf534ddc0,
      0x34ddc0db, 0xddc0db62, 0xc0db6295, 0xdb629599, 0x6295993c, 0x95993c43, 0x993c4390, 0x3c439041};
  auto* i32t = b.getInt32Ty();
  auto* i64t = b.getInt64Ty();
  llvm::Value* xi = b.CreateBitCast(ax, i32t);
  llvm::Value* idx = b.CreateAnd(b.CreateLShr(xi, 26), b.getInt32(15));  // the exponent picks the window
  llvm::Value* shift = b.CreateAnd(b.CreateLShr(xi, 23), b.getInt32(7));
  llvm::Value* m = b.CreateShl(b.CreateOr(b.CreateAnd(xi, b.getInt32(0xffffff)), b.getInt32(0x800000)), shift);
  auto word = [&](int off) {  // kInvPio4[idx + off], a tree of selects on idx's bits
    std::vector<llvm::Value*> v;
    for (int k = 0; k < 16; ++k) v.push_back(b.getInt32(kInvPio4[k + off]));
    for (int bit = 0; v.size() > 1; ++bit) {
      llvm::Value* set = b.CreateICmpNE(b.CreateAnd(idx, b.getInt32(1u << bit)), b.getInt32(0));
      std::vector<llvm::Value*> next;
      for (size_t k = 0; k < v.size(); k += 2) next.push_back(b.CreateSelect(set, v[k + 1], v[k]));
      v = std::move(next);
    }
    return v[0];
  };
  llvm::Value* m64 = b.CreateZExt(m, i64t);
  llvm::Value* res0 = b.CreateZExt(b.CreateMul(m, word(0)), i64t);  // only its low 32 bits count
  llvm::Value* res1 = b.CreateMul(m64, b.CreateZExt(word(4), i64t));
  llvm::Value* res2 = b.CreateMul(m64, b.CreateZExt(word(8), i64t));
  res0 = b.CreateAdd(b.CreateOr(b.CreateLShr(res2, 32), b.CreateShl(res0, 32)), res1);
  llvm::Value* q = b.CreateLShr(b.CreateAdd(res0, b.getInt64(uint64_t{1} << 61)), 62);  // rounded quadrant
  res0 = b.CreateSub(res0, b.CreateShl(q, 62));
  constexpr double kPi63 = 3.4061215800865545e-19;  // pi/2 * 2^-62
  r = b.CreateFPTrunc(b.CreateFMul(b.CreateSIToFP(res0, b.getDoubleTy()), llvm::ConstantFP::get(b.getDoubleTy(), kPi63)),
                      b.getFloatTy());
  n = b.CreateTrunc(q, i32t);
}

// sinf/cosf: reduction by pi/4 in three parts (Cephes; accurate for |x| below 2^13), above
// 2^12 reduceLargeF32's; the octant picks the polynomial and sign.
llvm::Value* emitSinCosF32(llvm::IRBuilder<>& b, llvm::Value* x, bool isCos) {
  F32 c{b};
  auto* i32t = b.getInt32Ty();
  auto* f = b.getFloatTy();
  llvm::Value* ax = b.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, x);
  llvm::Value* finite = b.CreateFCmpOLT(ax, c.C(INFINITY));  // also false for NaN
  llvm::Value* axc = b.CreateSelect(finite, ax, c.C(0.0));
  llvm::Value* j = b.CreateFreeze(b.CreateFPToSI(b.CreateFMul(axc, c.C(1.27323954473516)), i32t));
  j = b.CreateAdd(j, b.CreateAnd(j, b.getInt32(1)));  // to an even octant
  llvm::Value* y = b.CreateSIToFP(j, f);
  j = b.CreateAnd(j, b.getInt32(7));
  llvm::Value* z = b.CreateFSub(b.CreateFSub(b.CreateFSub(axc, b.CreateFMul(y, c.C(0.78515625))),
                                             b.CreateFMul(y, c.C(2.4187564849853515625e-4))),
                                b.CreateFMul(y, c.C(3.77489497744594108e-8)));
  llvm::Value* rLarge;
  llvm::Value* nLarge;
  reduceLargeF32(b, ax, rLarge, nLarge);
  llvm::Value* large = b.CreateAnd(finite, b.CreateFCmpOGE(ax, c.C(4096.0)));
  z = b.CreateSelect(large, rLarge, z);
  j = b.CreateSelect(large, b.CreateAnd(b.CreateShl(nLarge, 1), b.getInt32(7)), j);  // the even octant 2n
  llvm::Value* zz = b.CreateFMul(z, z);
  llvm::Value* pc = b.CreateFAdd(
      b.CreateFSub(
          b.CreateFMul(b.CreateFMul(c.poly(zz, {2.443315711809948E-005, -1.388731625493765E-003, 4.166664568298827E-002}), zz),
                       zz),
          b.CreateFMul(zz, c.C(0.5))),
      c.C(1.0));
  llvm::Value* ps =
      b.CreateFAdd(b.CreateFMul(b.CreateFMul(c.poly(zz, {-1.9515295891E-4, 8.3321608736E-3, -1.6666654611E-1}), zz), z), z);
  llvm::Value* hi = b.CreateICmpUGT(j, b.getInt32(3));  // octants 4..7: negate, j -= 4
  llvm::Value* j4 = b.CreateSelect(hi, b.CreateSub(j, b.getInt32(4)), j);
  llvm::Value* useCos = b.CreateOr(b.CreateICmpEQ(j4, b.getInt32(1)), b.CreateICmpEQ(j4, b.getInt32(2)));
  llvm::Value* neg;
  llvm::Value* r;
  if (isCos) {
    neg = b.CreateXor(hi, b.CreateICmpUGT(j4, b.getInt32(1)));
    r = b.CreateSelect(useCos, ps, pc);
  } else {
    neg = b.CreateXor(hi, b.CreateICmpSLT(b.CreateBitCast(x, i32t), b.getInt32(0)));  // -0.0 too: sin(-0.0) = -0.0
    r = b.CreateSelect(useCos, pc, ps);
  }
  r = b.CreateSelect(neg, b.CreateFNeg(r), r);
  return b.CreateSelect(finite, r, llvm::ConstantFP::getNaN(f));
}

// erff: below 1, x times a degree-5 polynomial in x^2 (a least-squares fit at Chebyshev
// nodes, relative error 5e-8); above, 1 - t P(t) e^(-x^2) with t = 1 / (1 + p|x|)
// (Abramowitz and Stegun 7.1.26, absolute error 1.5e-7), with x's sign.
llvm::Value* emitErfF32(llvm::IRBuilder<>& b, llvm::Value* x) {
  F32 c{b};
  llvm::Value* ax = b.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, x);
  llvm::Value* z = b.CreateFMul(x, x);
  llvm::Value* small = b.CreateFMul(
      x, c.poly(z, {-5.6961515764e-4, 4.9344010108e-3, -2.6726907983e-2, 1.1280786918e-1, -3.7612414622e-1, 1.12837915}));
  llvm::Value* t = b.CreateFDiv(c.C(1.0), b.CreateFAdd(c.C(1.0), b.CreateFMul(ax, c.C(0.3275911))));
  llvm::Value* p = b.CreateFMul(t, c.poly(t, {1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592}));
  llvm::Value* big = b.CreateFSub(c.C(1.0), b.CreateFMul(p, emitExpF32(b, b.CreateFNeg(z))));
  big = b.CreateBinaryIntrinsic(llvm::Intrinsic::copysign, big, x);
  return b.CreateSelect(b.CreateFCmpOLT(ax, c.C(1.0)), small, big);
}

}  // namespace tdl::codegen
