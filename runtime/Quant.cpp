#include "runtime/Quant.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "runtime/Error.h"
#include "runtime/ThreadPool.h"

namespace tdl::rt {

namespace {

// |q| <= 127: a product is at most 16129, so K terms fit an int32 up to this K.
constexpr int64_t kMaxK = int64_t{1} << 17;

inline int8_t quantize_one(float x, float inv) {
  float r = std::nearbyint(x * inv);  // round half to even (the default rounding mode)
  r = r > 127.0f ? 127.0f : r;
  r = r < -127.0f ? -127.0f : r;
  return static_cast<int8_t>(r != r ? 0.0f : r);  // NaN -> 0
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
#define TDL_MAC_VNNI(s, a, b) _mm256_dpwssd_epi32(s, a, b)
TDL_QGEMM_KERNEL(dots_avx2, "avx2", TDL_MAC_AVX2)
TDL_QGEMM_KERNEL(dots_vnni, "avx2,avx512f,avx512vl,avx512vnni", TDL_MAC_VNNI)
#undef TDL_QGEMM_KERNEL

int x86_level() {  // 0: generic, 1: AVX2, 2: AVX-512 VNNI
  static const int level = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") ? 2
                           : __builtin_cpu_supports("avx2")                                            ? 1
                                                                                                        : 0;
  return level;
}
#endif

void dots(const int16_t* qa, const int8_t* w, int64_t m0, int64_t m1, int64_t N, int64_t K, int64_t Kp, int32_t* acc) {
#if defined(__x86_64__)
  static const char* force = std::getenv("TDL_QGEMM_KERNEL");  // "generic", "avx2": for tests and bench
  int level = x86_level();
  if (force && std::strcmp(force, "generic") == 0) level = 0;
  if (force && std::strcmp(force, "avx2") == 0 && level > 1) level = 1;
  if (level == 2) return dots_vnni(qa, w, m0, m1, N, K, Kp, acc);
  if (level == 1) return dots_avx2(qa, w, m0, m1, N, K, Kp, acc);
#endif
  dots_generic(qa, w, m0, m1, N, K, Kp, acc);
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
  const int64_t Kp = (K + 15) / 16 * 16;
  std::vector<int16_t> qa(static_cast<size_t>(M * Kp));
  std::vector<int32_t> acc(static_cast<size_t>(M * N));
  widen(a.data<float>(), M, K, Kp, static_cast<float>(1.0 / x_scale), qa.data());
  const int8_t* wp = w.data<int8_t>();
  const int64_t work = M * N * Kp;
  const int64_t grain = std::max<int64_t>(2, (int64_t{1} << 18) / std::max<int64_t>(1, N * Kp)) / 2 * 2;
  if (work < (int64_t{1} << 20)) {
    dots(qa.data(), wp, 0, M, N, K, Kp, acc.data());
  } else {
    parallel_for((M + 1) / 2, std::max<int64_t>(1, grain / 2), [&](int64_t b, int64_t e) {
      dots(qa.data(), wp, 2 * b, std::min(M, 2 * e), N, K, Kp, acc.data());
    });
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
      float v = static_cast<float>(acc[static_cast<size_t>(m * N + n)]) * colScale[static_cast<size_t>(n)];
      out[m * N + n] = cp ? v + be * cp[m * N + n] : v;
    }
  return r;
}

}  // namespace tdl::rt
