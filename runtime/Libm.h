// Float math that TDL computes itself rather than asking the C library, so that every engine
// (the eager kernels, compiled CPU code, which inlines the same steps as vector code, and
// every machine whatever its libm) gets the same bits (docs/decisions.md).
#pragma once

namespace tdl::rt {

// tanh of an f32: fdlibm's tanhf, step for step (1 - 2 / (expm1(2|x|) + 2) from |x| = 1 up
// to 22, -expm1(-2|x|) / (expm1(-2|x|) + 2) below), as glibc computed it up to 2.40 (the same
// bits for every f32, checked over all 2^32 on glibc 2.36). codegen/ScalarEmit.cpp's
// emitTanhF32Fdlibm is the same computation in LLVM IR.
float tanh_f32(float x);

}  // namespace tdl::rt
