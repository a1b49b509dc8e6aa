// The scalar math of the elementwise ops (runtime/ops.def) as LLVM IR, written once for
// every target. CPU code (Lower.cpp) and PTX kernels (Ptx.cpp, and its host emulator)
// subclass ScalarEmitter with their primitives: the target hook. Operands are converted
// to the runtime's compute dtype (rt::unary_compute_dtype / rt::binary_compute_dtype) and
// results to the op's result dtype, so the code computes what the eager kernels compute;
// composite ops expand their ops.def formula (runtime/OpMath.h) here, as the eager kernels
// expand the same formula in C++.
#pragma once

#include <string>

#include <llvm/IR/IRBuilder.h>

#include "runtime/Elementwise.h"

namespace tdl::codegen {

using rt::DType;

class ScalarEmitter {
 public:
  using V = llvm::Value*;
  explicit ScalarEmitter(llvm::IRBuilder<>& b) : b_(b) {}
  virtual ~ScalarEmitter() = default;

  static bool isFloat(DType d) { return d == DType::F32 || d == DType::F64; }
  llvm::Type* ty(DType d);
  // x of dtype `from` as dtype `to`, with rt::cast's semantics.
  V convert(V x, DType from, DType to);

  // The op on operands of the given dtypes (converted here); the result has dtype rd.
  // nullptr where this target does not compute it (why() says why): CPU code then calls
  // the runtime, a PTX kernel leaves the op on the host.
  V emitUnary(rt::UnaryOp op, V x, DType dx, DType rd);
  V emitBinary(rt::BinaryOp op, V x, DType dx, V y, DType dy, DType rd);
  const std::string& why() const { return why_; }

  // The engine interface of runtime/OpMath.h (values already in the compute dtype).
  template <rt::UnaryOp Op>
  V unary(V x) {
    return unaryIn(Op, x);
  }
  template <rt::BinaryOp Op>
  V binary(V x, V y) {
    return binaryIn(Op, x, y);
  }
  V k(double c, V like);
  V select(V c, V x, V y) { return b_.CreateSelect(c, x, y); }

 protected:
  llvm::IRBuilder<>& b_;
  // The target hooks. A float primitive of ops.def (exp, expm1, log, log1p, log2, log10,
  // sin, cos, tanh, erf) on an f32 or f64 value; nullptr where the target has none.
  virtual V floatPrimitive(rt::UnaryOp op, V x) = 0;
  // a ** b on floats (the runtime's x ** 2 == x * x is applied by the caller); nullptr: none.
  virtual V floatPow(V a, V b) = 0;
  // Integer floor division or modulo: emits the division-by-zero failure for `isZero` and
  // returns true, or returns false where the target cannot fail.
  virtual bool checkDivisor(V isZero) {
    (void)isZero;
    return false;
  }

 private:
  V unaryIn(rt::UnaryOp op, V x);
  V binaryIn(rt::BinaryOp op, V x, V y);
  V composite(rt::UnaryOp op, V x);
  V composite(rt::BinaryOp op, V x, V y);
  V intFloorDivMod(V x, V y, bool isMod);
  V floatFloorDivMod(V x, V y, bool isMod);
  DType dtypeOf(V x);
  template <class F>
  V attempt(F&& emit);
  std::string why_;
};

// The f32 math without calls (Cephes-style polynomials; within a few ulp of libm, inside
// SPEC §11's 1e-5): PTX kernels use them for every float primitive but tanh (below), CPU
// fused loops for exp (so that the loops vectorize).
// x may be a vector of f32; `scalef` (16 or 8 lanes, AVX-512) scales by 2^n with vscalefps.
llvm::Value* emitExpF32(llvm::IRBuilder<>& b, llvm::Value* x, bool scalef = false);
llvm::Value* emitExpm1F32(llvm::IRBuilder<>& b, llvm::Value* x);
llvm::Value* emitLogF32(llvm::IRBuilder<>& b, llvm::Value* x);
llvm::Value* emitLog1pF32(llvm::IRBuilder<>& b, llvm::Value* x);
llvm::Value* emitSinCosF32(llvm::IRBuilder<>& b, llvm::Value* x, bool isCos);
llvm::Value* emitErfF32(llvm::IRBuilder<>& b, llvm::Value* x);
// tanh of an f32 (or a vector of f32) with the same bits as rt::tanh_f32 (runtime/Libm.h):
// its steps as plain IEEE operations in the C++ order (no fmuladd) and selects, no calls or
// branches, so CPU loops vectorize it; PTX kernels use it too, so the GPU gives eager mode's
// bits.
llvm::Value* emitTanhF32(llvm::IRBuilder<>& b, llvm::Value* x);

}  // namespace tdl::codegen
