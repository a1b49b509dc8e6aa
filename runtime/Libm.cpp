#include "Libm.h"

namespace tdl::rt {

// GCC vectorizes the loop at -O2 only with the cost model's dynamic setting. On x86-64 one
// copy per vector width, chosen by the CPU at the first call (as Quant.cpp's kernels: no
// ifuncs, so static executables work alike). Every copy gives tanh_f32's bits: plain IEEE
// operations per lane, and the build never contracts into FMAs.
#if defined(__GNUC__) && !defined(__clang__)
#define TDL_VECTORIZE __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#else
#define TDL_VECTORIZE
#endif

namespace {

#define TDL_TANH_LOOP(name, ...)                                       \
  TDL_VECTORIZE __VA_ARGS__ void name(const float* x, float* y, int64_t n) { \
    for (int64_t i = 0; i < n; ++i) y[i] = tanh_f32(x[i]);             \
  }
TDL_TANH_LOOP(tanh_generic)
#if defined(__x86_64__) && defined(__GNUC__)
TDL_TANH_LOOP(tanh_avx2, __attribute__((target("avx2"))))
TDL_TANH_LOOP(tanh_avx512, __attribute__((target("avx2,avx512f"))))
#endif
#undef TDL_TANH_LOOP

#define TDL_EXP_LOOP(name, fma, ...)                                   \
  TDL_VECTORIZE __VA_ARGS__ void name(const float* x, float* y, int64_t n) { \
    for (int64_t i = 0; i < n; ++i) y[i] = exp_f32<fma>(x[i]);         \
  }
#if defined(__aarch64__)
TDL_EXP_LOOP(exp_generic, true)  // AArch64 always has FMA
#else
TDL_EXP_LOOP(exp_generic, false)
#endif
#if defined(__x86_64__) && defined(__GNUC__)
TDL_EXP_LOOP(exp_avx2, false, __attribute__((target("avx2"))))
TDL_EXP_LOOP(exp_avx2_fma, true, __attribute__((target("avx2,fma"))))
TDL_EXP_LOOP(exp_avx512, true, __attribute__((target("avx2,fma,avx512f"))))
__attribute__((target("fma"))) float exp_fma_one(float x) { return exp_f32<true>(x); }
#endif
#undef TDL_EXP_LOOP

#if defined(__x86_64__) && defined(__GNUC__)
int simd_level() {
  static const int level = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
  return level;
}
#endif

}  // namespace

void tanh_f32_loop(const float* x, float* y, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  const int level = simd_level();
  if (level == 2) return tanh_avx512(x, y, n);
  if (level == 1) return tanh_avx2(x, y, n);
#endif
  tanh_generic(x, y, n);
}

bool exp_fma() {
#if defined(__aarch64__)
  return true;
#elif defined(__x86_64__) && defined(__GNUC__)
  static const bool fma = __builtin_cpu_supports("fma");
  return fma;
#else
  return false;
#endif
}

float exp_f32_host(float x) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (exp_fma()) return exp_fma_one(x);
  return exp_f32<false>(x);
#elif defined(__aarch64__)
  return exp_f32<true>(x);
#else
  return exp_f32<false>(x);
#endif
}

void exp_f32_loop(const float* x, float* y, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  const int level = simd_level();
  if (level == 2) return exp_avx512(x, y, n);  // every AVX-512 CPU has FMA
  if (level == 1) return exp_fma() ? exp_avx2_fma(x, y, n) : exp_avx2(x, y, n);
  if (exp_fma()) {
    for (int64_t i = 0; i < n; ++i) y[i] = exp_fma_one(x[i]);
    return;
  }
#endif
  exp_generic(x, y, n);
}

}  // namespace tdl::rt
