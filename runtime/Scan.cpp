#include "Scan.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include <fmt/format.h>

#include "DType.h"
#include "Elementwise.h"
#include "Error.h"
#include "Shape.h"

namespace tdl::rt {
namespace {

// outer x n x inner: the axis' length n and the products of the dims around it.
struct Around {
  int64_t outer = 1, n = 1, inner = 1;
};

Around around(const Shape& s, int64_t axis) {
  Around a;
  for (int64_t d = 0; d < axis; ++d) a.outer *= s[static_cast<size_t>(d)];
  a.n = s[static_cast<size_t>(axis)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < s.size(); ++d) a.inner *= s[d];
  return a;
}

}  // namespace

Tensor argsort(const Tensor& x, int64_t axis_in, bool descending) {
  if (x.rank() == 0) throw Error("argsort: cannot sort a scalar (a rank-0 tensor)");
  int64_t axis = normalize_axis(axis_in, x.rank());
  Tensor out = Tensor::empty(DType::I64, x.shape());
  if (x.numel() == 0) return out;
  Around a = around(x.shape(), axis);
  int64_t* dst = out.mutable_data<int64_t>();
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = x.data<T>();
    std::vector<int64_t> idx(static_cast<size_t>(a.n));
    std::vector<T> row(static_cast<size_t>(a.n));
    for (int64_t o = 0; o < a.outer; ++o)
      for (int64_t i = 0; i < a.inner; ++i) {
        const T* base = src + o * a.n * a.inner + i;
        for (int64_t j = 0; j < a.n; ++j) row[static_cast<size_t>(j)] = base[j * a.inner];
        std::iota(idx.begin(), idx.end(), int64_t{0});
        auto less = [&](int64_t p, int64_t q) {
          T u = row[static_cast<size_t>(p)], v = row[static_cast<size_t>(q)];
          if constexpr (std::is_floating_point_v<T>) {
            if (std::isnan(u) || std::isnan(v)) return descending ? std::isnan(u) && !std::isnan(v)
                                                                  : !std::isnan(u) && std::isnan(v);
          }
          return descending ? v < u : u < v;
        };
        std::stable_sort(idx.begin(), idx.end(), less);
        int64_t* d = dst + o * a.n * a.inner + i;
        for (int64_t j = 0; j < a.n; ++j) d[j * a.inner] = idx[static_cast<size_t>(j)];
      }
  });
  return out;
}

Tensor scan(const Tensor& x, int64_t axis_in, bool prod, bool reverse) {
  if (x.rank() == 0) throw Error(fmt::format("{}: needs a tensor of rank >= 1, got a scalar", prod ? "cumprod" : "cumsum"));
  int64_t axis = normalize_axis(axis_in, x.rank());
  DType rd = is_float(x.dtype()) ? x.dtype() : DType::I64;
  Tensor in = x.dtype() == rd ? x : cast(x, rd);
  Tensor out = Tensor::empty(rd, x.shape());
  if (x.numel() == 0) return out;
  Around a = around(x.shape(), axis);
  dispatch(rd, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, bool>) {
      const T* src = in.data<T>();
      T* dst = out.mutable_data<T>();
      for (int64_t o = 0; o < a.outer; ++o) {
        int64_t off = o * a.n * a.inner;
        for (int64_t jj = 0; jj < a.n; ++jj) {
          int64_t j = reverse ? a.n - 1 - jj : jj;
          const T* s = src + off + j * a.inner;
          T* d = dst + off + j * a.inner;
          if (jj == 0) {
            std::copy(s, s + a.inner, d);
            continue;
          }
          const T* p = dst + off + (reverse ? j + 1 : j - 1) * a.inner;
          if constexpr (std::is_integral_v<T>) {  // i64: wraps around as NumPy's does
            using U = uint64_t;
            for (int64_t i = 0; i < a.inner; ++i)
              d[i] = static_cast<T>(prod ? static_cast<U>(p[i]) * static_cast<U>(s[i]) : static_cast<U>(p[i]) + static_cast<U>(s[i]));
          } else if (prod) {
            for (int64_t i = 0; i < a.inner; ++i) d[i] = p[i] * s[i];
          } else {
            for (int64_t i = 0; i < a.inner; ++i) d[i] = p[i] + s[i];
          }
        }
      }
    }
  });
  return out;
}

}  // namespace tdl::rt
