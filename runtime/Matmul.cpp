#include "Matmul.h"

#include <cblas.h>
#include <fmt/format.h>

#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "Arith.h"
#include "Elementwise.h"
#include "Error.h"
#include "ShapeOps.h"
#include "Simd.h"
#include "ThreadPool.h"

// OpenBLAS's thread server (the pthread build): its threads start when the library loads
// and busy-wait (sched_yield) for about 0.1 s before they sleep. Weak, so that a BLAS
// without it links too.
extern "C" int blas_thread_shutdown_(void) __attribute__((weak));

namespace tdl::rt {

namespace {

// BLAS runs single-threaded on blocks of C that the runtime's pool spreads over its
// threads: one pool in the process, so OpenBLAS's own threads never compete with it for
// the cores (their spinning doubled the time of small CNNs on two cores, and of every
// product in a process's first 0.1 s: a 1024^3 sgemm 11 -> 22 ms). Set when the runtime
// loads: one thread, and the threads OpenBLAS started at its own load stopped.
const bool kBlasSingleThreaded = [] {
  openblas_set_num_threads(1);
  if (blas_thread_shutdown_) blas_thread_shutdown_();
  return true;
}();

}  // namespace

bool blas_bands_exact() {
  static const bool exact = [] {
    const char* core = openblas_get_corename();
    if (!core) return false;
    for (const char* ok : {"SkylakeX", "Cooperlake", "Sandybridge"})
      if (std::strcmp(core, ok) == 0) return true;
    return false;
  }();
  return exact;
}

std::string blas_description() {
  const char* config = openblas_get_config();
  const char* core = openblas_get_corename();
  return fmt::format("{}; core {}; products cut into bands keep their bits: {}", config ? config : "OpenBLAS",
                     core ? core : "?", blas_bands_exact() ? "yes" : "no");
}

namespace {

// Products with a small inner dim (k <= kSmallK, n <= kSmallN: the first convolution of a
// CNN, im2col columns of a few channels) cost BLAS more in packing and threading than in
// arithmetic: they run here, one row of C at a time, vectorized over its columns. Every
// f32/f64 product goes through blas_gemm, so a product gives the same bits whichever op or
// engine asks for it (matmul, gemm with transposes, batched): each element is summed over p
// in order, the same in every SIMD width.

// C rows [i0, i1) from B packed as [k, np] (np: n rounded up to a multiple of CB, zeros
// beyond n): blocks of 4 rows by CB columns held in registers over the k products.
template <class T, int CB>
__attribute__((always_inline)) inline void small_k_body(const T* a, int64_t sai, int64_t sap, const T* b, T* c,
                                                        int64_t ldc, int64_t i0, int64_t i1, int64_t n, int64_t np,
                                                        int64_t k, T alpha, T beta) {
  auto finish = [&](T* ci, const T* acc, int64_t jn) {
    for (int64_t j = 0; j < jn; ++j) {
      T v = alpha == T(1) ? acc[j] : alpha * acc[j];
      ci[j] = beta == T(0) ? v : beta * ci[j] + v;
    }
  };
  for (int64_t j0 = 0; j0 < np; j0 += CB) {
    const int64_t jn = std::min<int64_t>(CB, n - j0);
    const T* bj = b + j0;
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4) {
      T acc[4][CB];
      const T* ar[4] = {a + i * sai, a + (i + 1) * sai, a + (i + 2) * sai, a + (i + 3) * sai};
      for (int r = 0; r < 4; ++r)
        for (int j = 0; j < CB; ++j) acc[r][j] = ar[r][0] * bj[j];
      for (int64_t p = 1; p < k; ++p) {
        const T* bp = bj + p * np;
        for (int r = 0; r < 4; ++r) {
          const T ap = ar[r][p * sap];
          for (int j = 0; j < CB; ++j) acc[r][j] = acc[r][j] + ap * bp[j];
        }
      }
      for (int r = 0; r < 4; ++r) finish(c + (i + r) * ldc + j0, acc[r], jn);
    }
    for (; i < i1; ++i) {
      T acc[CB];
      const T* ai = a + i * sai;
      for (int j = 0; j < CB; ++j) acc[j] = ai[0] * bj[j];
      for (int64_t p = 1; p < k; ++p) {
        const T ap = ai[p * sap];
        const T* bp = bj + p * np;
        for (int j = 0; j < CB; ++j) acc[j] = acc[j] + ap * bp[j];
      }
      finish(c + i * ldc + j0, acc, jn);
    }
  }
}

constexpr int kCbF32 = 16, kCbF64 = 8;  // columns per register block
TDL_SIMD_CLONES void small_k_f32(const float* a, int64_t sai, int64_t sap, const float* b, float* c, int64_t ldc,
                                 int64_t i0, int64_t i1, int64_t n, int64_t np, int64_t k, float alpha, float beta) {
  small_k_body<float, kCbF32>(a, sai, sap, b, c, ldc, i0, i1, n, np, k, alpha, beta);
}
TDL_SIMD_CLONES void small_k_f64(const double* a, int64_t sai, int64_t sap, const double* b, double* c, int64_t ldc,
                                 int64_t i0, int64_t i1, int64_t n, int64_t np, int64_t k, double alpha, double beta) {
  small_k_body<double, kCbF64>(a, sai, sap, b, c, ldc, i0, i1, n, np, k, alpha, beta);
}

// One cblas_sgemm / cblas_dgemm call (row-major) on the calling thread.
template <class T>
void blas_call(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
               int64_t ldb, T beta, T* c, int64_t ldc) {
  const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, TA, TB, static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha,
                a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
  else
    cblas_dgemm(CblasRowMajor, TA, TB, static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha,
                a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

// C = alpha * op(A) @ op(B) + beta * C (row-major; beta 0: C is not read), as cblas_?gemm.
template <class T>
void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
               int64_t ldb, T beta, T* c, int64_t ldc) {
  if (gemm_small_k(n, k)) {
    // B as a contiguous [k, np], np a multiple of the register block (it is small).
    const int64_t cb = std::is_same_v<T, float> ? kCbF32 : kCbF64, np = (n + cb - 1) / cb * cb;
    std::vector<T> packed(static_cast<size_t>(k * np), T(0));
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < n; ++j) packed[p * np + j] = tb ? b[j * ldb + p] : b[p * ldb + j];
    const T* bp = packed.data();
    const int64_t sai = ta ? 1 : lda, sap = ta ? lda : 1;
    parallel_for(m, std::max<int64_t>(4, kParallelThreshold / 4 / std::max<int64_t>(n * k, 1)),
                 [&](int64_t i0, int64_t i1) {
                   if constexpr (std::is_same_v<T, float>)
                     small_k_f32(a, sai, sap, bp, c, ldc, i0, i1, n, np, k, alpha, beta);
                   else
                     small_k_f64(a, sai, sap, bp, c, ldc, i0, i1, n, np, k, alpha, beta);
                 });
    return;
  }
  // One BLAS thread (kBlasSingleThreaded) per block of C: a block is a band of rows, or of
  // columns when there are few rows; each element's sum is BLAS's either way (blocking is
  // over k, the same in every band).
  (void)kBlasSingleThreaded;
  auto call = [&](int64_t mm, int64_t nn, const T* aa, const T* bb, T* cc) {
    blas_call<T>(ta, tb, mm, nn, k, alpha, aa, lda, bb, ldb, beta, cc, ldc);
  };
  const int64_t threads = num_threads();
  constexpr int64_t kMinFlops = kGemmSplitMacs / 2;  // per block: less is not worth a hand-off
  const int64_t flops = m * n * k;
  if (threads > 1 && flops >= kGemmSplitMacs) {
    const int64_t blocks = std::min<int64_t>(threads, flops / kMinFlops);
    if (m >= 32 * blocks) {  // bands of rows (a multiple of 8 rows each)
      const int64_t band = (m + blocks - 1) / blocks;
      parallel_for(m, std::max<int64_t>(8, (band + 7) / 8 * 8), [&](int64_t r0, int64_t r1) {
        call(r1 - r0, n, a + (ta ? r0 : r0 * lda), b, c + r0 * ldc);
      });
      return;
    }
    if (n >= 64 * blocks) {  // bands of columns (a multiple of 16 each)
      const int64_t band = (n + blocks - 1) / blocks;
      parallel_for(n, std::max<int64_t>(16, (band + 15) / 16 * 16), [&](int64_t c0, int64_t c1) {
        call(m, c1 - c0, a, b + (tb ? c0 * ldb : c0), c + c0);
      });
      return;
    }
  }
  call(m, n, a, b, c);
}

// C[m, n] = A[m, k] @ B[k, n], all contiguous.
void gemm(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k) {
  blas_gemm<float>(false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
}
void gemm(const double* a, const double* b, double* c, int64_t m, int64_t n, int64_t k) {
  blas_gemm<double>(false, false, m, n, k, 1.0, a, k, b, n, 0.0, c, n);
}
template <class T>
void gemm(const T* a, const T* b, T* c, int64_t m, int64_t n, int64_t k) {
  parallel_for(m, std::max<int64_t>(1, kParallelThreshold / std::max<int64_t>(n * k, 1)), [&](int64_t rb, int64_t re) {
    for (int64_t i = rb; i < re; ++i) {
      T* ci = c + i * n;
      for (int64_t j = 0; j < n; ++j) ci[j] = 0;
      for (int64_t p = 0; p < k; ++p) {
        const T aip = a[i * k + p];
        const T* bp = b + p * n;
        for (int64_t j = 0; j < n; ++j) ci[j] = detail::wrap_add(ci[j], detail::wrap_mul(aip, bp[j]));
      }
    }
  });
}

// BLAS takes int dims (blasint is 32-bit in Debian's OpenBLAS).
bool blas_dims_fit(int64_t m, int64_t n, int64_t k) {
  constexpr int64_t lim = std::numeric_limits<blasint>::max();
  return m <= lim && n <= lim && k <= lim;
}
void check_blas_dims(int64_t m, int64_t n, int64_t k) {
  if (!blas_dims_fit(m, n, k))
    throw Error(fmt::format("matmul dimensions too large for BLAS ({}, {}, {})", m, n, k));
}

}  // namespace

void gemm_strided(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const float* a, int64_t lda,
                  const float* b, int64_t ldb, double beta, float* c, int64_t ldc) {
  blas_gemm<float>(ta, tb, m, n, k, static_cast<float>(alpha), a, lda, b, ldb, static_cast<float>(beta), c, ldc);
}
void gemm_strided(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
                  const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  blas_gemm<double>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  Shape out_shape = matmul_shape(a_in.shape(), b_in.shape());
  DType dt = promote(a_in.dtype(), b_in.dtype());
  DType ct = dt == DType::Bool ? DType::I64 : dt;
  Tensor a = cast(a_in, ct), b = cast(b_in, ct);
  // Views with the 1-D dims added.
  Shape as = a.rank() == 1 ? Shape{1, a.dim(0)} : a.shape();
  Shape bs = b.rank() == 1 ? Shape{b.dim(0), 1} : b.shape();
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  Shape batch = broadcast_shapes(Shape(as.begin(), as.end() - 2), Shape(bs.begin(), bs.end() - 2));
  Shape full_out = batch;
  full_out.push_back(m);
  full_out.push_back(n);
  Tensor out = Tensor::empty(ct, full_out);
  if (out.numel() == 0) return cast(out.with_shape(out_shape), dt);
  if (k == 0) {
    out = Tensor::zeros(ct, full_out);
    return cast(out.with_shape(out_shape), dt);
  }
  dispatch(ct, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, bool>) {
      if constexpr (std::is_floating_point_v<T>) check_blas_dims(m, n, k);
      T* c = out.mutable_data<T>();
      const bool b_plain = bs.size() == 2;
      if (b_plain) {
        // Every batch of a times the same matrix: one big [batch*m, k] @ [k, n].
        int64_t rows = a.numel() / k;
        if (rows == numel_of(batch) * m) {
          if constexpr (std::is_floating_point_v<T>) check_blas_dims(rows, n, k);
          gemm(a.data<T>(), b.data<T>(), c, rows, n, k);
          return;
        }
      }
      // General: materialise both operands at the broadcast batch shape.
      Shape ab = batch, bb = batch;
      ab.push_back(m);
      ab.push_back(k);
      bb.push_back(k);
      bb.push_back(n);
      Tensor A = broadcast_to(a.with_shape(as), ab), B = broadcast_to(b.with_shape(bs), bb);
      const int64_t nb = numel_of(batch);
      for (int64_t i = 0; i < nb; ++i)
        gemm(A.data<T>() + i * m * k, B.data<T>() + i * k * n, c + i * m * n, m, n, k);
    }
  });
  return cast(out.with_shape(out_shape), dt);
}

namespace {
// Batched gemm: a [..., ra0, ra1] and b [..., rb0, rb1] with the same batch dims, one BLAS
// call per matrix, each operand read transposed in place where asked (no copy).
Tensor batched_gemm(const Tensor& a, const Tensor& b, bool ta, bool tb, double alpha) {
  const int64_t r = a.rank();
  Shape batch(a.shape().begin(), a.shape().end() - 2);
  if (b.rank() != r || Shape(b.shape().begin(), b.shape().end() - 2) != batch || a.dtype() != b.dtype() ||
      !is_float(a.dtype()))
    throw Error(fmt::format("internal: batched gemm of {} {} and {} {}", dtype_name(a.dtype()), shape_str(a.shape()),
                            dtype_name(b.dtype()), shape_str(b.shape())));
  const int64_t a0 = a.dim(r - 2), a1 = a.dim(r - 1);
  const int64_t b0 = b.dim(r - 2), b1 = b.dim(r - 1);
  const int64_t m = ta ? a1 : a0, k = ta ? a0 : a1, kb = tb ? b1 : b0, n = tb ? b0 : b1;
  if (k != kb) {  // eager's words: the shapes of op(a) and op(b), batch dims included
    Shape sa = batch, sb = batch;
    sa.insert(sa.end(), {m, k});
    sb.insert(sb.end(), {kb, n});
    throw Error(fmt::format("cannot multiply shapes {} and {} ({} != {})", shape_str(sa), shape_str(sb), k, kb));
  }
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  if (k == 0) return Tensor::zeros(a.dtype(), out_shape);
  Tensor out = Tensor::empty(a.dtype(), out_shape);
  if (out.numel() == 0) return out;
  check_blas_dims(m, n, k);
  const int64_t nb = numel_of(batch);
  const int64_t lda = std::max<int64_t>(1, a1), ldb = std::max<int64_t>(1, b1);
  for (int64_t i = 0; i < nb; ++i) {
    if (a.dtype() == DType::F32)
      blas_gemm<float>(ta, tb, m, n, k, static_cast<float>(alpha), a.data<float>() + i * a0 * a1, lda,
                       b.data<float>() + i * b0 * b1, ldb, 0.0f, out.mutable_data<float>() + i * m * n, n);
    else
      blas_gemm<double>(ta, tb, m, n, k, alpha, a.data<double>() + i * a0 * a1, lda, b.data<double>() + i * b0 * b1,
                        ldb, 0.0, out.mutable_data<double>() + i * m * n, n);
  }
  return out;
}
}  // namespace

Tensor gemm(const Tensor& a, const Tensor& b, std::optional<Tensor> c, bool ta, bool tb, double alpha, double beta) {
  if (a.rank() > 2 && !c) return batched_gemm(a, b, ta, tb, alpha);
  if (a.rank() != 2 || b.rank() != 2 || a.dtype() != b.dtype() || !is_float(a.dtype()))
    throw Error(fmt::format("internal: gemm of {} {} and {} {}", dtype_name(a.dtype()), shape_str(a.shape()),
                            dtype_name(b.dtype()), shape_str(b.shape())));
  const int64_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1);
  const int64_t kb = tb ? b.dim(1) : b.dim(0), n = tb ? b.dim(0) : b.dim(1);
  if (k != kb)
    throw Error(fmt::format("cannot multiply shapes {} and {} ({} != {})", shape_str({m, k}), shape_str({kb, n}), k, kb));
  Tensor out;
  if (c) {
    if (c->shape() != Shape{m, n} || c->dtype() != a.dtype())
      throw Error(fmt::format("internal: gemm accumulator {} for a [{}, {}] result", shape_str(c->shape()), m, n));
    out = std::move(*c);
  } else {
    out = Tensor::empty(a.dtype(), {m, n});
    beta = 0;
  }
  if (out.numel() == 0) return out;
  check_blas_dims(m, n, k);
  const int64_t lda = std::max<int64_t>(1, a.dim(1)), ldb = std::max<int64_t>(1, b.dim(1));
  if (a.dtype() == DType::F32) {
    float* p = out.mutable_data<float>();
    if (k == 0)
      for (int64_t i = 0; i < out.numel(); ++i) p[i] = beta == 0 ? 0.0f : static_cast<float>(beta) * p[i];
    else
      blas_gemm<float>(ta, tb, m, n, k, static_cast<float>(alpha), a.data<float>(), lda, b.data<float>(), ldb,
                       static_cast<float>(beta), p, n);
  } else {
    double* p = out.mutable_data<double>();
    if (k == 0)
      for (int64_t i = 0; i < out.numel(); ++i) p[i] = beta == 0 ? 0.0 : beta * p[i];
    else
      blas_gemm<double>(ta, tb, m, n, k, alpha, a.data<double>(), lda, b.data<double>(), ldb, beta, p, n);
  }
  return out;
}

std::optional<GemmBands> gemm_bands(const Tensor& a, const Tensor& b, std::optional<Tensor>& c, bool ta, bool tb,
                                    double alpha, double beta) {
  if (a.rank() != 2 || b.rank() != 2 || a.dtype() != b.dtype() || !is_float(a.dtype())) return std::nullopt;
  GemmBands g;
  g.m = ta ? a.dim(1) : a.dim(0);
  g.k = ta ? a.dim(0) : a.dim(1);
  g.n = tb ? b.dim(0) : b.dim(1);
  const int64_t kb = tb ? b.dim(1) : b.dim(0);
  if (g.k != kb || g.k == 0 || g.m == 0 || g.n == 0 || gemm_small_k(g.n, g.k)) return std::nullopt;
  if (!blas_dims_fit(g.m, g.n, g.k)) return std::nullopt;
  if (c && (c->shape() != Shape{g.m, g.n} || c->dtype() != a.dtype())) return std::nullopt;
  g.ta = ta;
  g.tb = tb;
  g.alpha = alpha;
  g.beta = c ? beta : 0.0;
  g.a = a.raw();
  g.b = b.raw();
  g.dtype = a.dtype();
  g.lda = a.dim(1);
  g.ldb = b.dim(1);
  if (c) {
    g.out = std::move(*c);
    c.reset();
  } else {
    g.out = Tensor::empty(a.dtype(), {g.m, g.n});
  }
  g.c = g.out.mutable_raw();  // the copy of a shared accumulator, made here once
  return g;
}

namespace {
// C[i0:i1, j0:j1] of a GemmBands: one BLAS call.
void gemm_block(const GemmBands& g, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  if (i1 <= i0 || j1 <= j0) return;
  const int64_t lda = g.lda, ldb = g.ldb;
  const int64_t aoff = g.ta ? i0 : i0 * lda, boff = g.tb ? j0 * ldb : j0, coff = i0 * g.n + j0;
  if (g.dtype == DType::F32)
    blas_call<float>(g.ta, g.tb, i1 - i0, j1 - j0, g.k, static_cast<float>(g.alpha),
                     static_cast<const float*>(g.a) + aoff, lda, static_cast<const float*>(g.b) + boff, ldb,
                     static_cast<float>(g.beta), static_cast<float*>(g.c) + coff, g.n);
  else
    blas_call<double>(g.ta, g.tb, i1 - i0, j1 - j0, g.k, g.alpha, static_cast<const double*>(g.a) + aoff, lda,
                      static_cast<const double*>(g.b) + boff, ldb, g.beta, static_cast<double*>(g.c) + coff, g.n);
}
}  // namespace

void GemmBands::run(int64_t j0, int64_t j1) const { gemm_block(*this, 0, m, j0, j1); }
void GemmBands::run_rows(int64_t i0, int64_t i1) const { gemm_block(*this, i0, i1, 0, n); }

Tensor dot(const Tensor& a, const Tensor& b) {
  if (a.rank() == 0 || b.rank() == 0) return mul(a, b);
  if (a.rank() <= 2 && b.rank() <= 2) return matmul(a, b);
  if (b.rank() == 1) return matmul(a, b);
  // a[..., k] . b[B..., k, n] -> a.shape[:-1] + B + [n]
  const int64_t r = b.rank();
  std::vector<int64_t> perm{r - 2};
  for (int64_t d = 0; d < r; ++d)
    if (d != r - 2) perm.push_back(d);
  Tensor bt = transpose(b, perm);  // [k, B..., n]
  const int64_t k = b.dim(r - 2);
  Tensor b2 = bt.with_shape({k, b.numel() / std::max<int64_t>(k, 1)});
  if (k == 0) b2 = Tensor::zeros(b.dtype(), {0, numel_of(Shape(b.shape().begin(), b.shape().end() - 2)) * b.dim(r - 1)});
  Tensor a2 = reshape(a, {-1, a.dim(a.rank() - 1)});
  if (a.dim(a.rank() - 1) != k)
    throw Error(fmt::format("cannot multiply shapes {} and {} ({} != {})", shape_str(a.shape()),
                            shape_str(b.shape()), a.dim(a.rank() - 1), k));
  Tensor c = matmul(a2, b2);
  Shape out(a.shape().begin(), a.shape().end() - 1);
  out.insert(out.end(), b.shape().begin(), b.shape().end() - 2);
  out.push_back(b.dim(r - 1));
  return c.with_shape(out);
}

Tensor outer(const Tensor& a, const Tensor& b) {
  return mul(a.with_shape({a.numel(), 1}), b.with_shape({1, b.numel()}));
}

}  // namespace tdl::rt
