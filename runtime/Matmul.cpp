#include "Matmul.h"

#include <cblas.h>
#include <fmt/format.h>

#include <cstring>

#include "Arith.h"
#include "Elementwise.h"
#include "Error.h"
#include "ShapeOps.h"
#include "ThreadPool.h"

namespace tdl::rt {

namespace {

// C[m, n] = A[m, k] @ B[k, n], all contiguous.
void gemm(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), 1.0f, a, static_cast<blasint>(k), b, static_cast<blasint>(n), 0.0f, c,
              static_cast<blasint>(n));
}
void gemm(const double* a, const double* b, double* c, int64_t m, int64_t n, int64_t k) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), 1.0, a, static_cast<blasint>(k), b, static_cast<blasint>(n), 0.0, c,
              static_cast<blasint>(n));
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
void check_blas_dims(int64_t m, int64_t n, int64_t k) {
  constexpr int64_t lim = std::numeric_limits<blasint>::max();
  if (m > lim || n > lim || k > lim)
    throw Error(fmt::format("matmul dimensions too large for BLAS ({}, {}, {})", m, n, k));
}

}  // namespace

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
  const auto lda = static_cast<blasint>(std::max<int64_t>(1, a1)), ldb = static_cast<blasint>(std::max<int64_t>(1, b1));
  const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  for (int64_t i = 0; i < nb; ++i) {
    if (a.dtype() == DType::F32)
      cblas_sgemm(CblasRowMajor, TA, TB, static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k),
                  static_cast<float>(alpha), a.data<float>() + i * a0 * a1, lda, b.data<float>() + i * b0 * b1, ldb,
                  0.0f, out.mutable_data<float>() + i * m * n, static_cast<blasint>(n));
    else
      cblas_dgemm(CblasRowMajor, TA, TB, static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k),
                  alpha, a.data<double>() + i * a0 * a1, lda, b.data<double>() + i * b0 * b1, ldb, 0.0,
                  out.mutable_data<double>() + i * m * n, static_cast<blasint>(n));
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
  const auto lda = static_cast<blasint>(std::max<int64_t>(1, a.dim(1))), ldb = static_cast<blasint>(std::max<int64_t>(1, b.dim(1)));
  const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if (a.dtype() == DType::F32) {
    float* p = out.mutable_data<float>();
    if (k == 0)
      for (int64_t i = 0; i < out.numel(); ++i) p[i] = beta == 0 ? 0.0f : static_cast<float>(beta) * p[i];
    else
      cblas_sgemm(CblasRowMajor, TA, TB, static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k),
                  static_cast<float>(alpha), a.data<float>(), lda, b.data<float>(), ldb, static_cast<float>(beta), p,
                  static_cast<blasint>(n));
  } else {
    double* p = out.mutable_data<double>();
    if (k == 0)
      for (int64_t i = 0; i < out.numel(); ++i) p[i] = beta == 0 ? 0.0 : beta * p[i];
    else
      cblas_dgemm(CblasRowMajor, TA, TB, static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k),
                  alpha, a.data<double>(), lda, b.data<double>(), ldb, beta, p, static_cast<blasint>(n));
  }
  return out;
}

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
