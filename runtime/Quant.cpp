#include "runtime/Quant.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12's AVX-512 conversion intrinsics (_mm512_cvtepi32_epi8, ...) warn about their own
// undefined pass-through operand.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "runtime/Error.h"
#include "runtime/OpMath.h"
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

// Rows of already quantized activations (i8 [M, K]) widened the same way.
void widen_i8(const int8_t* a, int64_t M, int64_t K, int64_t Kp, int16_t* qa) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < K; ++k) qa[m * Kp + k] = a[m * K + k];
    for (int64_t k = K; k < Kp; ++k) qa[m * Kp + k] = 0;
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

// AVX-512 VNNI: vpdpbusd multiplies unsigned by signed bytes, 4 per int32 lane, and adds the
// four products to the lane. The activations go in as xq + 128 (1..255), and 128 * (the
// column's weight sum) comes off afterwards. Outer-product form, as float GEMM kernels are:
// the weights packed as 16 columns x 4 k per 64-byte vector, each row's 4 k broadcast to all
// 16 lanes, so the 16 columns' sums stay in separate lanes (no horizontal sums); R rows x 32
// columns per block keep 2R accumulators in registers.
#define TDL_VNNI "avx2,avx512f,avx512vl,avx512bw,avx512vnni"

// 16 floats p[lane] (lanes outside `in` read as 0) quantized as quantize_one does, as int32
// lanes: to nearest, ties to even (the default rounding of vcvtps2dq), clamped, NaN -> 0.
__attribute__((target(TDL_VNNI))) inline __m512i vnni_quantize16(const float* p, __mmask16 in, __m512 vinv) {
  __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(in, p), vinv);
  const __mmask16 ord = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
  v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
  return _mm512_maskz_mov_epi32(ord, _mm512_cvtps_epi32(v));
}

__attribute__((target(TDL_VNNI))) inline __mmask16 vnni_first(int64_t n) {  // lanes [0, min(n, 16))
  return n >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}

// Row a[0, K) quantized as quantize_one does, plus 128, into u8 out[0, Kp) (128 past K).
__attribute__((target(TDL_VNNI))) void vnni_quantize_row(const float* a, int64_t K, int64_t Kp, float inv, uint8_t* out) {
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512i off = _mm512_set1_epi32(128);
  int64_t k = 0;
  for (; k < K; k += 16) {  // the last 1..15 values masked: lanes past K give 0, stored as 128
    const __m512i q = vnni_quantize16(a + k, vnni_first(K - k), vinv);
    _mm_mask_storeu_epi8(out + k, vnni_first(Kp - k), _mm512_cvtepi32_epi8(_mm512_add_epi32(q, off)));
  }
  for (k = std::min(k, Kp); k < Kp; ++k) out[k] = 128;
}

// Row a[0, K) of quantized activations plus 128 (q ^ 0x80 as a byte) into u8 out[0, Kp).
__attribute__((target(TDL_VNNI))) void vnni_shift_row(const int8_t* a, int64_t K, int64_t Kp, uint8_t* out) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  int64_t k = 0;
  for (; k + 64 <= K; k += 64)
    _mm512_storeu_si512(out + k, _mm512_xor_si512(_mm512_loadu_si512(a + k), flip));
  if (k < K) {
    const __mmask64 in = (uint64_t{1} << (K - k)) - 1;
    _mm512_mask_storeu_epi8(out + k, in, _mm512_xor_si512(_mm512_maskz_loadu_epi8(in, a + k), flip));
    k = K;
  }
  for (; k < Kp; ++k) out[k] = 128;
}

// x[0, n) quantized as quantize_one does into i8 out[0, n).
__attribute__((target(TDL_VNNI))) void vnni_quantize(const float* x, int64_t n, float inv, int8_t* out) {
  const __m512 vinv = _mm512_set1_ps(inv);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 in = vnni_first(n - i);
    _mm_mask_storeu_epi8(out + i, in, _mm512_cvtepi32_epi8(vnni_quantize16(x + i, in, vinv)));
  }
}

// What the blocks of one call share: xu u8 [M][Kp] (Kp = 4 * G), the packed weights
// wp[(nb * G + g) * 64 + 4 * col + kk] = w[16 nb + col][4 g + kk] (0 past N and K), per
// column corr = 128 * (its weight sum) and scale = alpha * x_scale * w_scale, and the output.
struct VnniGemm {
  const uint8_t* xu;
  const int8_t* wp;
  const int32_t* corr;
  const float* scale;
  const float* c;  // beta * c is added when not null
  float beta;
  const float* bias;  // then bias[n], when not null
  bool relu;          // then relu
  int64_t N, G, Kp;
  float* out;
};

// Rows [m, m + R) x columns [16 nb, 16 nb + 16 NV) (the last vector masked past N).
template <int R, int NV>
__attribute__((target(TDL_VNNI))) inline void vnni_block(const VnniGemm& q, int64_t m, int64_t nb) {
  __m512i acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) acc[r][j] = _mm512_setzero_si512();
  const int8_t* wb = q.wp + nb * q.G * 64;
  const uint8_t* x = q.xu + m * q.Kp;
  for (int64_t g = 0; g < q.G; ++g) {
    __m512i wv[NV];
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) wv[j] = _mm512_loadu_si512(wb + (j * q.G + g) * 64);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      int32_t four;
      std::memcpy(&four, x + r * q.Kp + 4 * g, 4);
      const __m512i xb = _mm512_set1_epi32(four);
#pragma GCC unroll 2
      for (int j = 0; j < NV; ++j) acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], xb, wv[j]);
    }
  }
#pragma GCC unroll 2
  for (int j = 0; j < NV; ++j) {
    const int64_t n = 16 * (nb + j);
    const int64_t left = q.N - n;
    const __mmask16 mask = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    const __m512i corr = _mm512_maskz_loadu_epi32(mask, q.corr + n);
    const __m512 sc = _mm512_maskz_loadu_ps(mask, q.scale + n);
    const __m512 bias = q.bias ? _mm512_maskz_loadu_ps(mask, q.bias + n) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      // float(acc) * scale [+ beta * c], as the scalar loop: a multiply, then an add.
      __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][j], corr)), sc);
      float* o = q.out + (m + r) * q.N + n;
      if (q.c) v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_set1_ps(q.beta), _mm512_maskz_loadu_ps(mask, q.c + (m + r) * q.N + n)));
      if (q.bias) v = _mm512_add_ps(v, bias);
      // relu as the runtime's: v <= 0 -> 0 (so -0 -> 0), NaN stays
      if (q.relu) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LE_OQ), _mm512_setzero_ps());
      _mm512_mask_storeu_ps(o, mask, v);
    }
  }
}

// The weights w i8 [N, K] packed for vnni_block, and 128 * each column's sum: made once per
// weight tensor and kept (a model's weights are the same tensors call after call), the most
// recently used first. An entry holds a reference to the weights' storage, so their address
// cannot be reused for other weights while it is cached (and writing to them copies them);
// an entry whose weights nothing else holds any more is dropped at the next lookup.
struct VnniWeights {
  Tensor keep;
  std::vector<int8_t> packed;
  std::vector<int32_t> corr;
};

std::shared_ptr<const VnniWeights> vnni_weights(const Tensor& w) {
  static std::mutex mu;
  static std::list<std::shared_ptr<const VnniWeights>> cache;
  constexpr size_t kMaxEntries = 256;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = cache.begin(); it != cache.end();) {
      if ((*it)->keep.shares_storage_with(w) && (*it)->keep.shape() == w.shape()) {
        cache.splice(cache.begin(), cache, it);
        return cache.front();
      }
      // Weights that only the cache still holds (their model was unloaded) are let go.
      if ((*it)->keep.is_unique()) {
        it = cache.erase(it);
      } else {
        ++it;
      }
    }
  }
  const int64_t N = w.dim(0), K = w.dim(1), G = (K + 3) / 4, NB = (N + 15) / 16;
  const int8_t* wp = w.data<int8_t>();
  auto e = std::make_shared<VnniWeights>();
  e->keep = w;
  e->packed.resize(static_cast<size_t>(NB * G * 64));
  e->corr.resize(static_cast<size_t>(N));
  int8_t* pk = e->packed.data();
  for (int64_t nb = 0; nb < NB; ++nb)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t n = 16 * nb; n < 16 * nb + 16; ++n)
        for (int64_t k = 4 * g; k < 4 * g + 4; ++k) *pk++ = n < N && k < K ? wp[n * K + k] : int8_t{0};
  for (int64_t n = 0; n < N; ++n) {
    int32_t sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += wp[n * K + k];
    e->corr[static_cast<size_t>(n)] = 128 * sum;
  }
  std::lock_guard<std::mutex> lock(mu);
  cache.push_front(e);
  if (cache.size() > kMaxEntries) cache.pop_back();
  return e;
}

template <int R>
__attribute__((target(TDL_VNNI))) void vnni_rows(const VnniGemm& q, int64_t m) {
  const int64_t NB = (q.N + 15) / 16;
  int64_t nb = 0;
  for (; nb + 2 <= NB; nb += 2) vnni_block<R, 2>(q, m, nb);
  if (nb < NB) vnni_block<R, 1>(q, m, nb);
}

// Rows [m0, m1) of the output.
__attribute__((target(TDL_VNNI))) void vnni_gemm(const VnniGemm& q, int64_t m0, int64_t m1) {
  int64_t m = m0;
  for (; m + 8 <= m1; m += 8) vnni_rows<8>(q, m);
  switch (m1 - m) {
    case 7: return vnni_rows<7>(q, m);
    case 6: return vnni_rows<6>(q, m);
    case 5: return vnni_rows<5>(q, m);
    case 4: return vnni_rows<4>(q, m);
    case 3: return vnni_rows<3>(q, m);
    case 2: return vnni_rows<2>(q, m);
    case 1: return vnni_rows<1>(q, m);
    default: return;
  }
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
#if defined(__x86_64__)
    if (kernel_level() == 2) {
      parallel_for(n, int64_t{1} << 16, [&](int64_t b, int64_t e) { vnni_quantize(p + b, e - b, inv, out + b); });
      return r;
    }
#endif
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
             double alpha, double beta, const std::optional<Tensor>& bias, bool relu) {
  if ((a.dtype() != DType::F32 && a.dtype() != DType::I8) || a.rank() != 2 || w.dtype() != DType::I8 || w.rank() != 2 || a.dim(1) != w.dim(1) ||
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
  if (bias && (bias->dtype() != DType::F32 || bias->shape() != Shape{N}))
    throw Error(fmt::format("internal: qgemm's bias must be f32[{}], got {}{}", N, dtype_name(bias->dtype()),
                            shape_str(bias->shape())));
  const float* bp = bias ? bias->data<float>() : nullptr;
  static thread_local std::vector<int16_t> qaBuf;
  static thread_local std::vector<uint8_t> xuBuf;
  static thread_local std::vector<int32_t> accBuf;
  const int8_t* wp = w.data<int8_t>();
  const float inv = static_cast<float>(1.0 / x_scale);
  const int64_t grainRows = std::max<int64_t>(8, (int64_t{1} << 18) / std::max<int64_t>(1, N * K)) / 8 * 8;
  // Threads when the products or the quantizing and writing of rows are worth a wake-up.
  const bool parallel = (M * N * K >= (int64_t{1} << 20) || M * (K + N) >= (int64_t{1} << 16)) && M >= 16;
  Tensor r = Tensor::empty(DType::F32, {M, N});
  float* out = r.mutable_data<float>();
  const float* ws = w_scale.data<float>();
  const float xs = static_cast<float>(x_scale), al = static_cast<float>(alpha), be = static_cast<float>(beta);
  std::vector<float> colScale(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) colScale[static_cast<size_t>(n)] = al * (xs * ws[n]);
  const float* cp = c ? c->data<float>() : nullptr;
#if defined(__x86_64__)
  if (kernel_level() == 2) {
    const int64_t G = (K + 3) / 4, Kp = 4 * G;
    uint8_t* xu = scratch(xuBuf, static_cast<size_t>(M * Kp));
    const std::shared_ptr<const VnniWeights> pw = vnni_weights(w);
    const VnniGemm q{xu, pw->packed.data(), pw->corr.data(), colScale.data(), cp, be, bp, relu, N, G, Kp, out};
    const bool quantized = a.dtype() == DType::I8;
    const float* ap = quantized ? nullptr : a.data<float>();
    const int8_t* a8 = quantized ? a.data<int8_t>() : nullptr;
    auto rows = [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) {
        if (quantized) {
          vnni_shift_row(a8 + m * K, K, Kp, xu + m * Kp);
        } else {
          vnni_quantize_row(ap + m * K, K, Kp, inv, xu + m * Kp);
        }
      }
      vnni_gemm(q, m0, m1);
    };
    if (!parallel) {
      rows(0, M);
    } else {
      parallel_for((M + 7) / 8, std::max<int64_t>(1, grainRows / 8), [&](int64_t b, int64_t e) {
        rows(8 * b, std::min(M, 8 * e));
      });
    }
    return r;
  }
#endif
  int32_t* acc = scratch(accBuf, static_cast<size_t>(M * N));
  {
    const int64_t Kp = (K + 15) / 16 * 16;
    int16_t* qa = scratch(qaBuf, static_cast<size_t>(M * Kp));
    if (a.dtype() == DType::I8) {
      widen_i8(a.data<int8_t>(), M, K, Kp, qa);
    } else {
      widen(a.data<float>(), M, K, Kp, inv, qa);
    }
    if (!parallel) {
      dots(qa, wp, 0, M, N, K, Kp, acc);
    } else {
      parallel_for((M + 1) / 2, std::max<int64_t>(1, grainRows / 2), [&](int64_t b, int64_t e) {
        dots(qa, wp, 2 * b, std::min(M, 2 * e), N, K, Kp, acc);
      });
    }
  }
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      float v = static_cast<float>(acc[m * N + n]) * colScale[static_cast<size_t>(n)];
      if (cp) v = v + be * cp[m * N + n];
      if (bp) v = v + bp[n];
      if (relu) v = opmath::ScalarMath<float>().unary<UnaryOp::Relu>(v);  // the eager relu
      out[m * N + n] = v;
    }
  return r;
}

}  // namespace tdl::rt
