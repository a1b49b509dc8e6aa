#include "runtime/Quant.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12's AVX-512 conversion intrinsics (_mm512_cvtepi32_epi8, ...) warn about their own
// undefined pass-through operand.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "runtime/Error.h"
#include "runtime/ThreadPool.h"

namespace tdl::rt {

namespace {

// |q| <= 127: a product is at most 16129, so K terms fit an int32 up to this K.
constexpr int64_t kMaxK = int64_t{1} << 17;

// round_half_even(x * inv) clamped to [-127, 127], NaN -> 0. Rounding by adding and
// subtracting 1.5 * 2^23 (exact for |v| < 2^22, in the default rounding mode: to nearest,
// ties to even), so no libm call; the vector kernels below round the same way.
inline int8_t quantize_one(float x, float inv) {
  float v = x * inv;
  if (v != v) return 0;
  v = v > 127.0f ? 127.0f : v;
  v = v < -127.0f ? -127.0f : v;
  volatile float big = 12582912.0f;  // volatile: no reassociation of (v + big) - big
  float r = (v + big) - big;
  return static_cast<int8_t>(r);
}

// Rows of a (f32 [M, K]) quantized at x_scale into int16 [M, Kp], K padded with zeros to a
// multiple of 16. The weights stay int8 [N, K] (contiguous in K) and are widened to int16 as
// they are loaded, so a call touches each weight byte once.
void widen(const float* a, int64_t M, int64_t K, int64_t Kp, float inv, int16_t* qa) {
  for (int64_t m = 0; m < M; ++m) {
    const float* row = a + m * K;
    int16_t* out = qa + m * Kp;
    for (int64_t k = 0; k < K; ++k) out[k] = quantize_one(row[k], inv);
    for (int64_t k = K; k < Kp; ++k) out[k] = 0;
  }
}

inline int32_t dot_tail(const int16_t* x, const int8_t* w, int64_t k0, int64_t K) {
  int32_t s = 0;
  for (int64_t k = k0; k < K; ++k) s += static_cast<int32_t>(x[k]) * static_cast<int32_t>(w[k]);
  return s;
}

// acc[m][n] for m in [m0, m1), all n: plain loops (any CPU; the compiler vectorizes them).
void dots_generic(const int16_t* qa, const int8_t* w, int64_t m0, int64_t m1, int64_t N, int64_t K, int64_t Kp,
                  int32_t* acc) {
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t n = 0; n < N; ++n) acc[m * N + n] = dot_tail(qa + m * Kp, w + n * K, 0, K);
}

#if defined(__x86_64__)
// The blocked kernel, 2 rows x 4 columns at a time over k in steps of 16, for AVX2 (vpmaddwd:
// 16 int16 products summed in pairs into 8 int32 lanes, then vpaddd) and for AVX-512 VNNI on
// 256-bit registers (vpdpwssd: both in one instruction). MAC(acc, a, b) is the step.
#define TDL_QGEMM_KERNEL(NAME, TARGET, MAC)                                                                     \
  __attribute__((target(TARGET))) static inline int32_t NAME##_hsum(__m256i v) {                              \
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));                    \
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));                                                         \
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));                                                         \
    return _mm_cvtsi128_si32(s);                                                                              \
  }                                                                                                           \
  __attribute__((target(TARGET))) static inline __m256i NAME##_w(const int8_t* p) {                            \
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));                         \
  }                                                                                                           \
  __attribute__((target(TARGET))) void NAME(const int16_t* qa, const int8_t* w, int64_t m0, int64_t m1,        \
                                            int64_t N, int64_t K, int64_t Kp, int32_t* acc) {                 \
    const int64_t K16 = K / 16 * 16;                                                                          \
    int64_t m = m0;                                                                                           \
    for (; m + 2 <= m1; m += 2) {                                                                             \
      const int16_t* x0 = qa + m * Kp;                                                                        \
      const int16_t* x1 = x0 + Kp;                                                                            \
      int64_t n = 0;                                                                                          \
      for (; n + 4 <= N; n += 4) {                                                                            \
        const int8_t* y = w + n * K;                                                                          \
        __m256i s00 = _mm256_setzero_si256(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00,          \
                s12 = s00, s13 = s00;                                                                         \
        for (int64_t k = 0; k < K16; k += 16) {                                                               \
          __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x0 + k));                         \
          __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x1 + k));                         \
          __m256i b0 = NAME##_w(y + k), b1 = NAME##_w(y + K + k), b2 = NAME##_w(y + 2 * K + k),               \
                  b3 = NAME##_w(y + 3 * K + k);                                                               \
          s00 = MAC(s00, a0, b0);                                                                             \
          s01 = MAC(s01, a0, b1);                                                                             \
          s02 = MAC(s02, a0, b2);                                                                             \
          s03 = MAC(s03, a0, b3);                                                                             \
          s10 = MAC(s10, a1, b0);                                                                             \
          s11 = MAC(s11, a1, b1);                                                                             \
          s12 = MAC(s12, a1, b2);                                                                             \
          s13 = MAC(s13, a1, b3);                                                                             \
        }                                                                                                     \
        int32_t* r0 = acc + m * N + n;                                                                        \
        int32_t* r1 = r0 + N;                                                                                 \
        __m256i* s0[4] = {&s00, &s01, &s02, &s03};                                                            \
        __m256i* s1[4] = {&s10, &s11, &s12, &s13};                                                            \
        for (int j = 0; j < 4; ++j) {                                                                         \
          r0[j] = NAME##_hsum(*s0[j]) + dot_tail(x0, y + j * K, K16, K);                                      \
          r1[j] = NAME##_hsum(*s1[j]) + dot_tail(x1, y + j * K, K16, K);                                      \
        }                                                                                                     \
      }                                                                                                       \
      for (; n < N; ++n)                                                                                      \
        for (int64_t mm = m; mm < m + 2; ++mm) {                                                              \
          __m256i s = _mm256_setzero_si256();                                                                 \
          for (int64_t k = 0; k < K16; k += 16)                                                               \
            s = MAC(s, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa + mm * Kp + k)), NAME##_w(w + n * K + k)); \
          acc[mm * N + n] = NAME##_hsum(s) + dot_tail(qa + mm * Kp, w + n * K, K16, K);                       \
        }                                                                                                     \
    }                                                                                                         \
    if (m < m1) dots_generic(qa, w, m, m1, N, K, Kp, acc);                                                    \
  }

#define TDL_MAC_AVX2(s, a, b) _mm256_add_epi32(s, _mm256_madd_epi16(a, b))
TDL_QGEMM_KERNEL(dots_avx2, "avx2", TDL_MAC_AVX2)
#undef TDL_QGEMM_KERNEL

// AVX-512 VNNI: vpdpbusd multiplies unsigned by signed bytes, 4 per int32 lane, 32 per
// instruction, on the weights as stored. The activations go in as xq + 128 (1..255), and
// 128 * (the row's weight sum) comes off afterwards; R rows x 4 columns per block (AVX-512VL
// gives the 32 registers that 16 accumulators need).
#define TDL_VNNI "avx2,avx512f,avx512vl,avx512bw,avx512vnni"
__attribute__((target(TDL_VNNI))) static inline int32_t vnni_hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// Row a[0, K) quantized as quantize_one does, plus 128, into u8 out[0, Kp) (128 past K).
__attribute__((target(TDL_VNNI))) void vnni_quantize_row(const float* a, int64_t K, int64_t Kp, float inv, uint8_t* out) {
  const __m512 vinv = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  const __m512i off = _mm512_set1_epi32(128);
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 v = _mm512_mul_ps(_mm512_loadu_ps(a + k), vinv);
    __mmask16 ord = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    __m512i q = _mm512_maskz_mov_epi32(ord, _mm512_cvtps_epi32(v));  // to nearest, ties to even; NaN -> 0
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), _mm512_cvtepi32_epi8(_mm512_add_epi32(q, off)));
  }
  for (; k < K; ++k) out[k] = static_cast<uint8_t>(quantize_one(a[k], inv) + 128);
  for (; k < Kp; ++k) out[k] = 128;
}

// 32 weights from p, the lanes at and past `left` zero (the last chunk of a row).
__attribute__((target(TDL_VNNI))) static inline __m256i vnni_w(const int8_t* p, int64_t left) {
  if (left >= 32) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm256_maskz_loadu_epi8(static_cast<__mmask32>((uint64_t{1} << left) - 1), p);
}

// wsum[n] = sum of w[n][k] (vpdpbusd against ones).
__attribute__((target(TDL_VNNI))) void vnni_row_sums(const int8_t* w, int64_t N, int64_t K, int32_t* wsum) {
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t n = 0; n < N; ++n) {
    __m256i s = _mm256_setzero_si256();
    for (int64_t k = 0; k < K; k += 32) s = _mm256_dpbusd_epi32(s, ones, vnni_w(w + n * K + k, K - k));
    wsum[n] = vnni_hsum(s);
  }
}

// One row of activations against columns [n, n + nc) (nc <= 4), any K.
template <int R>
__attribute__((target(TDL_VNNI))) void vnni_block(const uint8_t* xu, const int8_t* w, const int32_t* wsum, int64_t m,
                                                 int64_t n, int nc, int64_t K, int64_t Kp, int64_t N, int32_t* acc) {
  __m256i s[R][4];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) s[r][j] = _mm256_setzero_si256();
  const int8_t* y = w + n * K;
  for (int64_t k = 0; k < Kp; k += 32) {
    __m256i b[4];
    for (int j = 0; j < 4; ++j) b[j] = j < nc ? vnni_w(y + j * K + k, K - k) : _mm256_setzero_si256();
    for (int r = 0; r < R; ++r) {
      __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xu + (m + r) * Kp + k));
      for (int j = 0; j < 4; ++j) s[r][j] = _mm256_dpbusd_epi32(s[r][j], av, b[j]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < nc; ++j) acc[(m + r) * N + n + j] = vnni_hsum(s[r][j]) - 128 * wsum[n + j];
}

// The hot block: 4 rows x 4 columns, written out so that the 16 accumulators stay in registers.
__attribute__((target(TDL_VNNI))) void vnni_4x4(const uint8_t* xu, const int8_t* w, const int32_t* wsum, int64_t m,
                                               int64_t n, int64_t K, int64_t Kp, int64_t N, int32_t* acc) {
  const uint8_t *x0 = xu + m * Kp, *x1 = x0 + Kp, *x2 = x1 + Kp, *x3 = x2 + Kp;
  const int8_t *y0 = w + n * K, *y1 = y0 + K, *y2 = y1 + K, *y3 = y2 + K;
  __m256i s00 = _mm256_setzero_si256(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00,
          s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00, s32 = s00, s33 = s00;
#define TDL_VNNI_STEP(b0, b1, b2, b3, k)                                                   \
  do {                                                                                      \
    const __m256i w0 = (b0), w1 = (b1), w2 = (b2), w3 = (b3);                               \
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x0 + (k)));             \
    s00 = _mm256_dpbusd_epi32(s00, a, w0), s01 = _mm256_dpbusd_epi32(s01, a, w1);           \
    s02 = _mm256_dpbusd_epi32(s02, a, w2), s03 = _mm256_dpbusd_epi32(s03, a, w3);           \
    a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x1 + (k)));                     \
    s10 = _mm256_dpbusd_epi32(s10, a, w0), s11 = _mm256_dpbusd_epi32(s11, a, w1);           \
    s12 = _mm256_dpbusd_epi32(s12, a, w2), s13 = _mm256_dpbusd_epi32(s13, a, w3);           \
    a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x2 + (k)));                     \
    s20 = _mm256_dpbusd_epi32(s20, a, w0), s21 = _mm256_dpbusd_epi32(s21, a, w1);           \
    s22 = _mm256_dpbusd_epi32(s22, a, w2), s23 = _mm256_dpbusd_epi32(s23, a, w3);           \
    a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x3 + (k)));                     \
    s30 = _mm256_dpbusd_epi32(s30, a, w0), s31 = _mm256_dpbusd_epi32(s31, a, w1);           \
    s32 = _mm256_dpbusd_epi32(s32, a, w2), s33 = _mm256_dpbusd_epi32(s33, a, w3);           \
  } while (0)

  const int64_t K32 = K / 32 * 32;
  int64_t k = 0;
  for (; k < K32; k += 32) {
    TDL_VNNI_STEP(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y0 + k)),
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y1 + k)),
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y2 + k)),
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y3 + k)), k);
  }
  if (k < K) TDL_VNNI_STEP(vnni_w(y0 + k, K - k), vnni_w(y1 + k, K - k), vnni_w(y2 + k, K - k), vnni_w(y3 + k, K - k), k);
#undef TDL_VNNI_STEP
  int32_t* r = acc + m * N + n;
  const int32_t c0 = 128 * wsum[n], c1 = 128 * wsum[n + 1], c2 = 128 * wsum[n + 2], c3 = 128 * wsum[n + 3];
  r[0] = vnni_hsum(s00) - c0, r[1] = vnni_hsum(s01) - c1, r[2] = vnni_hsum(s02) - c2, r[3] = vnni_hsum(s03) - c3;
  r += N;
  r[0] = vnni_hsum(s10) - c0, r[1] = vnni_hsum(s11) - c1, r[2] = vnni_hsum(s12) - c2, r[3] = vnni_hsum(s13) - c3;
  r += N;
  r[0] = vnni_hsum(s20) - c0, r[1] = vnni_hsum(s21) - c1, r[2] = vnni_hsum(s22) - c2, r[3] = vnni_hsum(s23) - c3;
  r += N;
  r[0] = vnni_hsum(s30) - c0, r[1] = vnni_hsum(s31) - c1, r[2] = vnni_hsum(s32) - c2, r[3] = vnni_hsum(s33) - c3;
}

// acc for rows [m0, m1): activations as u8 [M][Kp] (128 past K), wsum[n] = sum of w[n][k].
void dots_vnni(const uint8_t* xu, const int8_t* w, const int32_t* wsum, int64_t m0, int64_t m1, int64_t N, int64_t K,
               int64_t Kp, int32_t* acc) {
  const int64_t N4 = N / 4 * 4;
  int64_t m = m0;
  for (; m + 4 <= m1; m += 4) {
    for (int64_t n = 0; n < N4; n += 4) vnni_4x4(xu, w, wsum, m, n, K, Kp, N, acc);
    if (N4 < N) vnni_block<4>(xu, w, wsum, m, N4, static_cast<int>(N - N4), K, Kp, N, acc);
  }
  for (; m < m1; ++m)
    for (int64_t n = 0; n < N; n += 4) vnni_block<1>(xu, w, wsum, m, n, static_cast<int>(std::min<int64_t>(4, N - n)), K, Kp, N, acc);
}

int x86_level() {  // 0: generic, 1: AVX2, 2: AVX-512 VNNI
  static const int level = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") ? 2
                           : __builtin_cpu_supports("avx2")                                            ? 1
                                                                                                        : 0;
  return level;
}
#endif

// Which kernel runs: 0 portable, 1 AVX2, 2 AVX-512 VNNI (TDL_QGEMM_KERNEL=generic or avx2
// chooses a lower one: for tests and the benchmark).
[[maybe_unused]] int kernel_level() {
#if defined(__x86_64__)
  static const int level = [] {
    int l = x86_level();
    const char* force = std::getenv("TDL_QGEMM_KERNEL");
    if (force && std::strcmp(force, "generic") == 0) l = 0;
    if (force && std::strcmp(force, "avx2") == 0 && l > 1) l = 1;
    return l;
  }();
  return level;
#else
  return 0;
#endif
}

void dots(const int16_t* qa, const int8_t* w, int64_t m0, int64_t m1, int64_t N, int64_t K, int64_t Kp, int32_t* acc) {
#if defined(__x86_64__)
  if (kernel_level() == 1) return dots_avx2(qa, w, m0, m1, N, K, Kp, acc);
#endif
  dots_generic(qa, w, m0, m1, N, K, Kp, acc);
}

// Per-thread scratch that grows and stays (no allocation per call).
template <class T>
T* scratch(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

void check_scale(double s, const char* what) {
  if (!(s > 0) || !std::isfinite(s)) throw Error(fmt::format("{}: the scale must be a positive finite number, got {}", what, s));
}

}  // namespace

Tensor quantize_i8(const Tensor& x, double scale) {
  if (x.dtype() != DType::F32 && x.dtype() != DType::F64)
    throw Error(fmt::format("quantize: needs a float tensor, got {}", dtype_name(x.dtype())));
  check_scale(scale, "quantize");
  Tensor r = Tensor::empty(DType::I8, x.shape());
  int8_t* out = r.mutable_data<int8_t>();
  const int64_t n = x.numel();
  if (x.dtype() == DType::F32) {
    const float* p = x.data<float>();
    const float inv = static_cast<float>(1.0 / scale);
    for (int64_t i = 0; i < n; ++i) out[i] = quantize_one(p[i], inv);
  } else {
    const double* p = x.data<double>();
    const float inv = static_cast<float>(1.0 / scale);
    for (int64_t i = 0; i < n; ++i) out[i] = quantize_one(static_cast<float>(p[i]), inv);
  }
  return r;
}

Tensor dequantize_i8(const Tensor& q, const Tensor& scale, int64_t axis) {
  if (q.dtype() != DType::I8) throw Error(fmt::format("dequantize: needs an i8 tensor, got {}", dtype_name(q.dtype())));
  if (scale.dtype() != DType::F32) throw Error(fmt::format("dequantize: the scale must be f32, got {}", dtype_name(scale.dtype())));
  const bool per = scale.rank() == 1;
  if (axis < 0) axis += q.rank();
  if (per && (axis < 0 || axis >= q.rank() || scale.dim(0) != q.dim(axis)))
    throw Error(fmt::format("dequantize: one scale per entry along axis {} of {}, got {}", axis, shape_str(q.shape()),
                            shape_str(scale.shape())));
  if (!per && scale.rank() != 0) throw Error(fmt::format("dequantize: the scale must be f32[] or f32[N], got {}", shape_str(scale.shape())));
  int64_t inner = 1;
  if (per)
    for (int64_t d = axis + 1; d < q.rank(); ++d) inner *= q.dim(d);
  const int64_t len = per ? q.dim(axis) : 1;
  Tensor r = Tensor::empty(DType::F32, q.shape());
  float* out = r.mutable_data<float>();
  const int8_t* p = q.data<int8_t>();
  const float* s = scale.data<float>();
  const int64_t n = q.numel();
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(p[i]) * s[per ? (i / inner) % len : 0];
  return r;
}

std::pair<Tensor, Tensor> quantize_rows_i8(const Tensor& w) {
  if (w.dtype() != DType::F32 || w.rank() != 2)
    throw Error(fmt::format("quantize: weights must be f32[N, K], got {}{}", dtype_name(w.dtype()), shape_str(w.shape())));
  const int64_t N = w.dim(0), K = w.dim(1);
  Tensor q = Tensor::empty(DType::I8, w.shape()), s = Tensor::empty(DType::F32, {N});
  const float* p = w.data<float>();
  float* sc = s.mutable_data<float>();
  int8_t* out = q.mutable_data<int8_t>();
  for (int64_t n = 0; n < N; ++n) {
    float mx = 0.0f;
    for (int64_t k = 0; k < K; ++k) mx = std::max(mx, std::fabs(p[n * K + k]));
    sc[n] = mx > 0.0f && std::isfinite(mx) ? mx / 127.0f : 1.0f;
    for (int64_t k = 0; k < K; ++k) out[n * K + k] = quantize_one(p[n * K + k], 1.0f / sc[n]);
  }
  return {q, s};
}

Tensor qgemm(const Tensor& a, const Tensor& w, const Tensor& w_scale, double x_scale, const std::optional<Tensor>& c,
             double alpha, double beta) {
  if (a.dtype() != DType::F32 || a.rank() != 2 || w.dtype() != DType::I8 || w.rank() != 2 || a.dim(1) != w.dim(1) ||
      w_scale.dtype() != DType::F32 || w_scale.rank() != 1 || w_scale.dim(0) != w.dim(0))
    throw Error(fmt::format("internal: qgemm of {}{}, {}{} and scales {}{}", dtype_name(a.dtype()), shape_str(a.shape()),
                            dtype_name(w.dtype()), shape_str(w.shape()), dtype_name(w_scale.dtype()),
                            shape_str(w_scale.shape())));
  check_scale(x_scale, "qgemm");
  const int64_t M = a.dim(0), K = a.dim(1), N = w.dim(0);
  if (K > kMaxK) throw Error(fmt::format("qgemm: {} terms per dot product overflow int32 accumulation", K));
  if (c && (c->dtype() != DType::F32 || c->shape() != Shape{M, N}))
    throw Error(fmt::format("internal: qgemm's c must be f32[{}, {}], got {}{}", M, N, dtype_name(c->dtype()),
                            shape_str(c->shape())));
  static thread_local std::vector<int16_t> qaBuf;
  static thread_local std::vector<uint8_t> xuBuf;
  static thread_local std::vector<int32_t> accBuf, wsumBuf;
  int32_t* acc = scratch(accBuf, static_cast<size_t>(M * N));
  const int8_t* wp = w.data<int8_t>();
  const float inv = static_cast<float>(1.0 / x_scale);
  const int64_t grainRows = std::max<int64_t>(4, (int64_t{1} << 18) / std::max<int64_t>(1, N * K)) / 4 * 4;
  const bool parallel = M * N * K >= (int64_t{1} << 20) && M >= 8;
#if defined(__x86_64__)
  if (kernel_level() == 2) {
    const int64_t Kp = (K + 31) / 32 * 32;
    uint8_t* xu = scratch(xuBuf, static_cast<size_t>(M * Kp));
    int32_t* wsum = scratch(wsumBuf, static_cast<size_t>(N));
    const float* ap = a.data<float>();
    for (int64_t m = 0; m < M; ++m) vnni_quantize_row(ap + m * K, K, Kp, inv, xu + m * Kp);
    vnni_row_sums(wp, N, K, wsum);
    if (!parallel) {
      dots_vnni(xu, wp, wsum, 0, M, N, K, Kp, acc);
    } else {
      parallel_for((M + 3) / 4, std::max<int64_t>(1, grainRows / 4), [&](int64_t b, int64_t e) {
        dots_vnni(xu, wp, wsum, 4 * b, std::min(M, 4 * e), N, K, Kp, acc);
      });
    }
  } else
#endif
  {
    const int64_t Kp = (K + 15) / 16 * 16;
    int16_t* qa = scratch(qaBuf, static_cast<size_t>(M * Kp));
    widen(a.data<float>(), M, K, Kp, inv, qa);
    if (!parallel) {
      dots(qa, wp, 0, M, N, K, Kp, acc);
    } else {
      parallel_for((M + 1) / 2, std::max<int64_t>(1, grainRows / 2), [&](int64_t b, int64_t e) {
        dots(qa, wp, 2 * b, std::min(M, 2 * e), N, K, Kp, acc);
      });
    }
  }
  Tensor r = Tensor::empty(DType::F32, {M, N});
  float* out = r.mutable_data<float>();
  const float* ws = w_scale.data<float>();
  const float xs = static_cast<float>(x_scale), al = static_cast<float>(alpha), be = static_cast<float>(beta);
  std::vector<float> colScale(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) colScale[static_cast<size_t>(n)] = al * (xs * ws[n]);
  const float* cp = c ? c->data<float>() : nullptr;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      float v = static_cast<float>(acc[m * N + n]) * colScale[static_cast<size_t>(n)];
      out[m * N + n] = cp ? v + be * cp[m * N + n] : v;
    }
  return r;
}

}  // namespace tdl::rt
