// Float math that TDL computes itself rather than asking the C library, so that every engine
// (the eager kernels, compiled CPU code, which inlines the same steps as vector code, PTX
// kernels, and every machine whatever its libm) gets the same bits (docs/decisions.md).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace tdl::rt {

// e^r with x = n ln 2 + r: n = x / ln 2 to nearest (an integral float) into `n`, ln 2 in
// two parts (Cody and Waite), e^r = 1 + r + r^2 P(r) with Cephes's expf polynomial P, its
// Horner steps fused multiply-adds when kFma. For x whose n fits the caller's scaling;
// exp_f32 and tanh_f32 share it (as codegen's emitExpCoreF32).
template <bool kFma>
[[gnu::always_inline]] inline float exp_core_f32(float x, float& n) {
  n = (x * 1.44269504088896341f + 0x1.8p23f) - 0x1.8p23f;  // to nearest
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  auto step = [&](float q, float c) {
    if constexpr (kFma) return __builtin_fmaf(q, r, c);
    else return q * r + c;
  };
  float q = 1.9875691500e-4f;
  q = step(q, 1.3981999507e-3f);
  q = step(q, 8.3334519073e-3f);
  q = step(q, 4.1665795894e-2f);
  q = step(q, 1.6666665459e-1f);
  q = step(q, 5.0000001201e-1f);
  return (q * (r * r) + r) + 1.0f;
}

// tanh of an f32, TDL's own (max error 1.46 ulp against the exact value, 99.8% of all f32
// correctly rounded; tests/codegen/MathTests.cpp), built to vectorize: only IEEE +, -, *, /,
// comparisons as selects and bit moves, in this order, no FMA.
//   |x| < 2^-12:        x (tanh(x) rounds to x)
//   |x| < 0.6:          x + x z P(z), z = x^2, P of degree 4 (fitted to minimize the relative
//                       error on [0, 0.6])
//   above (up to 9.1):  1 - 2e / (1 + e), e = exp(-2|x|) by Cody and Waite's reduction by ln 2
//                       and Cephes's expf polynomial; from 9.1 on (and inf) the same formula
//                       at 9.1 gives 1
// with x's sign (+-0 pass through, NaN gives NaN). Each branch is computed on an argument
// clamped into its range, so no lane meets subnormal or infinite arithmetic. codegen/ScalarEmit.cpp's
// emitTanhF32 is the same computation in LLVM IR.
inline float tanh_f32(float x) {
  constexpr float kTiny = 0x1p-12f, kSmall = 0.6f, kBig = 9.1f;
  const float a = std::fabs(x);
  const float as = a < kTiny ? kTiny : a;
  const float z = as * as;
  float p = -5.8950865641e-03f;
  p = p * z + 2.0795915276e-02f;
  p = p * z + -5.3783815354e-02f;
  p = p * z + 1.3331924379e-01f;
  p = p * z + -3.3333298564e-01f;
  float small = as + (as * z) * p;
  small = a < kTiny ? a : small;
  float al = a < kBig ? a : kBig;  // NaN too: n below is a valid integer in every case
  al = al < kSmall ? kSmall : al;
  float n;
  const float q = exp_core_f32<false>(-2.0f * al, n);
  const uint32_t scaleBits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &scaleBits, sizeof scale);
  const float e = q * scale;
  const float big = 1.0f - (e + e) / (1.0f + e);
  return std::copysign(a >= kSmall ? big : small, x);  // NaN: small's NaN
}

// y[i] = tanh_f32(x[i]) for i < n, vectorized for the CPU it runs on (the eager kernel).
void tanh_f32_loop(const float* x, float* y, int64_t n);

// exp of an f32, TDL's own (Cephes's expf method: max error about 1 ulp, tests/codegen/
// MathTests.cpp), built to vectorize as tanh_f32 is:
//   x > 89: inf (computed at 89, which overflows); x < -104: 0 (computed at 0, so no lane
//   meets subnormal arithmetic, a microcode assist of ~100 cycles on x86, which a masked
//   softmax's -1e9 entries would hit)
//   n = x / ln 2 to nearest, r = x - n ln 2 (ln 2 in two parts, Cody and Waite)
//   e^r = 1 + r + r^2 P(r), P of degree 5 (Cephes) by Horner's rule in fused multiply-adds
//   where the CPU has them (kFma), then times 2^n in two steps 2^(n>>1) and 2^(n - (n>>1)),
//   so that a subnormal result rounds once
// NaN gives NaN. codegen/ScalarEmit.cpp's emitExpF32 is the same computation in LLVM IR
// (compiled loops, fused where the target has FMA, as exp_f32_host chooses; PTX kernels).
template <bool kFma>
[[gnu::always_inline]] inline float exp_f32(float x) {
  const bool tiny = x < -104.0f;
  float cx = x > 89.0f ? 89.0f : x;
  cx = tiny ? 0.0f : cx;
  float n;
  const float y = exp_core_f32<kFma>(cx, n);
  n = n > -151.0f ? n : -151.0f;  // NaN too: a valid integer below (y is NaN then)
  const int32_t k = static_cast<int32_t>(n), k1 = k >> 1, k2 = k - k1;
  const uint32_t b1 = static_cast<uint32_t>(k1 + 127) << 23, b2 = static_cast<uint32_t>(k2 + 127) << 23;
  float s1, s2;
  std::memcpy(&s1, &b1, sizeof s1);
  std::memcpy(&s2, &b2, sizeof s2);
  const float e = (y * s1) * s2;
  return tiny ? 0.0f : e;
}

// Whether this CPU fuses exp's multiply-adds (x86 with FMA; AArch64 always), as code
// compiled for it does.
bool exp_fma();
// exp_f32 of one value as this CPU's compiled code computes it.
float exp_f32_host(float x);

// y[i] = exp_f32(x[i]) for i < n, vectorized for the CPU it runs on (the eager kernel).
void exp_f32_loop(const float* x, float* y, int64_t n);

}  // namespace tdl::rt
