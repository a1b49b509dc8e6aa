#include "Libm.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace tdl::rt {

namespace {

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
float fromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// expm1 by fdlibm's method for the arguments tanh_f32 passes (|x| < 44): x = k ln2 + r with
// r in [-ln2/2, ln2/2] (k = 0 below ln2/2, k = +-1 up to 1.5 ln2), expm1(r) from a rational
// form in r^2 with the correction c of the reduction, then scaled by 2^k.
float expm1Reduced(float x) {
  constexpr float ln2Hi = 6.9313812256e-01f, ln2Lo = 9.0580006145e-06f, invLn2 = 1.4426950216e+00f;
  constexpr float q1 = -3.3333335072e-02f, q2 = 1.5873016091e-03f, q3 = -7.9365076090e-05f,
                  q4 = 4.0082177293e-06f, q5 = -2.0109921195e-07f;
  const uint32_t ax = bitsOf(x) & 0x7fffffffu;
  const bool neg = (bitsOf(x) >> 31) != 0;
  if (ax >= 0x4195b844u && neg) return -1.0f;  // x <= -27 ln2
  int32_t k = 0;
  float c = 0.0f;
  if (ax > 0x3eb17218u) {  // |x| > ln2 / 2
    float hi, lo;
    if (ax < 0x3f851592u) {  // |x| < 1.5 ln2
      hi = neg ? x + ln2Hi : x - ln2Hi;
      lo = neg ? -ln2Lo : ln2Lo;
      k = neg ? -1 : 1;
    } else {
      k = static_cast<int32_t>(invLn2 * x + (neg ? -0.5f : 0.5f));
      const float t = static_cast<float>(k);
      hi = x - t * ln2Hi;
      lo = t * ln2Lo;
    }
    x = hi - lo;
    c = (hi - x) - lo;
  } else if (ax < 0x33000000u) {  // |x| < 2^-25
    return x;
  }
  const float hfx = 0.5f * x, hxs = x * hfx;
  const float r1 = 1.0f + hxs * (q1 + hxs * (q2 + hxs * (q3 + hxs * (q4 + hxs * q5))));
  const float t = 3.0f - r1 * hfx;
  float e = hxs * ((r1 - t) / (6.0f - x * t));
  if (k == 0) return x - (x * e - hxs);
  e = x * (e - c) - c;
  e -= hxs;
  if (k == -1) return 0.5f * (x - e) - 0.5f;
  if (k == 1) return x < -0.25f ? -2.0f * (e - (x + 0.5f)) : 1.0f + 2.0f * (x - e);
  const uint32_t shift = static_cast<uint32_t>(k) << 23;  // adds k to an exponent
  if (k <= -2 || k > 56) return fromBits(bitsOf(1.0f - (e - x)) + shift) - 1.0f;
  if (k < 23) return fromBits(bitsOf(fromBits(0x3f800000u - (0x1000000u >> k)) - (e - x)) + shift);
  const float y = (x - (e + fromBits(static_cast<uint32_t>(0x7f - k) << 23))) + 1.0f;
  return fromBits(bitsOf(y) + shift);
}

}  // namespace

float tanh_f32(float x) {
  const uint32_t ax = bitsOf(x) & 0x7fffffffu;
  const bool neg = (bitsOf(x) >> 31) != 0;
  if (ax > 0x7f800000u) return x + x;                // NaN, quiet
  if (ax == 0x7f800000u) return neg ? -1.0f : 1.0f;  // +-inf
  if (ax < 0x24000000u) return x * (1.0f + x);                          // |x| < 2^-55 (and +-0)
  float z;
  if (ax >= 0x41b00000u) {  // |x| >= 22
    z = 1.0f;
  } else if (ax >= 0x3f800000u) {  // |x| >= 1
    const float t = expm1Reduced(2.0f * std::fabs(x));
    z = 1.0f - 2.0f / (t + 2.0f);
  } else {
    const float t = expm1Reduced(-2.0f * std::fabs(x));
    z = -t / (t + 2.0f);
  }
  return neg ? -z : z;
}

}  // namespace tdl::rt
