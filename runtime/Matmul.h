// Linear algebra (SPEC §5): matmul with NumPy semantics, dot, outer. f32/f64 go through
// OpenBLAS sgemm/dgemm; integers use a plain loop (wrapping); bool operands give bool
// (logical or of ands). Operands are promoted to their common dtype.
#pragma once

#include <optional>
#include <string>

#include "Tensor.h"

namespace tdl::rt {

// A float product of at least this many multiply-adds (m * n * k) is split over the pool's
// threads (bands of rows or columns, one BLAS call each, at least half this each); a smaller
// one runs on the calling thread. From 2^18 on two halves pay for the hand-off: [32, 128] @
// [128, 128] 10.3 -> 6.3 us, [16, 256] @ [256, 256] 27 -> 11 us (2026-12-06; 2^21 before).
inline constexpr int64_t kGemmSplitMacs = int64_t{1} << 18;
// Independent products below this size run at once, in bands over the threads, as one
// hand-off (compiled code's tdl_op_group), when the work besides the largest is at least
// kGroupMinMacs (~3 us at one core's BLAS speed; less does not pay for the hand-off);
// otherwise one after another, each split by itself from kGemmSplitMacs on.
inline constexpr int64_t kGroupMaxMacs = int64_t{1} << 21;
inline constexpr int64_t kGroupMinMacs = int64_t{1} << 17;
// A float product with at most kSmallK terms per sum and at most kSmallN columns runs TDL's
// own row kernel (its cost is in C's rows, not in multiply-adds), split over the pool by rows.
inline constexpr int64_t kSmallK = 16, kSmallN = 512;
inline bool gemm_small_k(int64_t n, int64_t k) { return k >= 1 && k <= kSmallK && n <= kSmallN; }

// 1-D operands get a dim added (a: in front, b: at the end) that is removed from the
// result; batch dims broadcast. Errors: `cannot multiply shapes A and B (k1 != k2)`.
Tensor matmul(const Tensor& a, const Tensor& b);
// NumPy dot: 1-D x 1-D is the inner product, a scalar operand multiplies, N-D x M-D sums
// over the last axis of a and the second-to-last of b (the last one when b is 1-D).
Tensor dot(const Tensor& a, const Tensor& b);
// The graph compiler's `gemm` op (ir/passes/Gemm.cpp): alpha * op(a) @ op(b) + beta * c
// in one BLAS call, op(x) being x, or x transposed when ta / tb (never materialized). a and b
// are rank-2 f32 or f64 of one dtype, or of rank > 2 with the same batch dims and no c (one
// BLAS call per matrix, e.g. attention's q @ k^T); c (optional) has the result's shape and dtype and is
// updated in place when the caller handed over the last reference (compiled code moves a c
// that dies at the op), else copied. Errors as matmul's, on op(a) and op(b).
Tensor gemm(const Tensor& a, const Tensor& b, std::optional<Tensor> c, bool ta, bool tb, double alpha, double beta);
// Whether the BLAS kernels in use sum each element of a product in an order that a band of
// its rows or columns keeps (the OpenBLAS cores checked here: SkylakeX, Cooperlake,
// Sandybridge); false for any other, so compiled code then runs each product whole.
bool blas_bands_exact();
// The BLAS in use, for `tdl --version`: its build, the core whose kernels run, and
// blas_bands_exact.
std::string blas_description();
// alpha * op(a) @ op(b) + beta * c on row-major matrices with leading dims (beta 0: c is
// not read), computed as every f32/f64 product here is (the small-k row kernel, else BLAS,
// split over the pool from kGemmSplitMacs on): the emulated device's gemm, so that its
// bits are eager mode's whatever the BLAS kernels.
void gemm_strided(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const float* a, int64_t lda,
                  const float* b, int64_t ldb, double beta, float* c, int64_t ldc);
void gemm_strided(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
                  const double* b, int64_t ldb, double beta, double* c, int64_t ldc);
// A rank-2 float product alpha * op(a) @ op(b) + beta * c prepared to run in bands of the
// result's columns (compiled code spreads the bands of independent small products over the
// pool: tdl_op_group): the result is allocated, or the accumulator c taken over (copied if
// shared), and nothing is computed until run. Each band is one BLAS call on the calling
// thread with BLAS's own kernel choice for the whole product.
struct GemmBands {
  Tensor out;
  const void* a = nullptr;  // the operands' data: their tensors must outlive the GemmBands
  const void* b = nullptr;
  DType dtype = DType::F32;
  int64_t lda = 0, ldb = 0;
  bool ta = false, tb = false;
  int64_t m = 0, n = 0, k = 0;
  double alpha = 1, beta = 0;
  void* c = nullptr;  // out's data (unique)
  // Columns [j0, j1) of the result.
  void run(int64_t j0, int64_t j1) const;
  // Rows [i0, i1) of the result (the same bits as columns: bands_same_bits).
  void run_rows(int64_t i0, int64_t i1) const;
  // Whether bands (of columns or rows) give the same bits as one call: OpenBLAS's AVX-512
  // and AVX kernels (small-matrix and general alike) sum each element over k in order while
  // k fits one block of its general kernel (k <= kBandMaxK) and b is read untransposed; its
  // kernel for a transposed b changes with the band's width, and its Haswell (AVX2) kernels,
  // which OPENBLAS_CORETYPE=Haswell or Zen selects, change with the band's size anyway
  // (blas_bands_exact; tests/runtime: GemmBands).
  bool bands_same_bits() const { return !tb && k <= kBandMaxK && blas_bands_exact(); }
  static constexpr int64_t kBandMaxK = 256;
};
// A product gemm() would compute as BLAS calls (rank-2 operands of one float dtype, matching
// inner dims, c of the result's shape and dtype, k > 0, no empty result, not the small-k
// kernel's): prepared; otherwise nullopt and c untouched (the op then runs as usual and
// reports its errors). c is taken over only when the result is returned. It reads a's and
// b's data where they are: both must outlive it (no copies of the tensors: a product group
// prepares several each time round a loop).
std::optional<GemmBands> gemm_bands(const Tensor& a, const Tensor& b, std::optional<Tensor>& c, bool ta, bool tb,
                                    double alpha, double beta);
// outer(a, b)[i, j] = a.flat[i] * b.flat[j].
Tensor outer(const Tensor& a, const Tensor& b);

}  // namespace tdl::rt
