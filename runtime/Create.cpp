#include "Create.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "Convert.h"
#include "Elementwise.h"
#include "Error.h"
#include "ShapeOps.h"
#include "ThreadPool.h"

namespace tdl::rt {

namespace {
template <class T>
void fill(T* p, int64_t n, T v) {
  parallel_for(n, kParallelThreshold / 2, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) p[i] = v;
  });
}
}  // namespace

Tensor zeros(const Shape& shape, DType dtype) { return Tensor::zeros(dtype, shape); }

Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }

Tensor full(const Shape& shape, double value, DType dtype) {
  Tensor t = Tensor::empty(dtype, shape);
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    fill<T>(t.mutable_data<T>(), t.numel(), convert<T>(value));
  });
  return t;
}

Tensor full(const Shape& shape, const Tensor& value) {
  if (value.numel() != 1) throw Error("full: the fill value must be a scalar, got " + value.type_str());
  return broadcast_to(value.with_shape({}), shape);
}

Tensor zeros_like(const Tensor& x) { return Tensor::zeros(x.dtype(), x.shape()); }
Tensor ones_like(const Tensor& x) { return full(x.shape(), 1.0, x.dtype()); }

Tensor arange_int(int64_t start, int64_t stop, int64_t step) {
  if (step == 0) throw Error("arange(): 'step' must not be zero");
  __int128 span = static_cast<__int128>(stop) - start;
  __int128 n = 0;
  if ((step > 0 && span > 0) || (step < 0 && span < 0))
    n = (span + (step > 0 ? step - 1 : step + 1)) / step;
  if (n > INT64_MAX) throw Error(fmt::format("arange: too many values ({})", static_cast<unsigned long long>(n)));
  Tensor t = Tensor::empty(DType::I64, {static_cast<int64_t>(n)});
  int64_t* p = t.mutable_data<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = start + i * step;
  return t;
}

Tensor arange(double start, double stop, double step, DType dtype) {
  if (step == 0) throw Error("arange(): 'step' must not be zero");
  double c = std::ceil((stop - start) / step);
  if (!std::isfinite(c)) throw Error("arange: the bounds must be finite");
  if (c >= 9.2e18) throw Error(fmt::format("arange: too many values ({})", c));
  int64_t n = c > 0 ? static_cast<int64_t>(c) : 0;
  Tensor t = Tensor::empty(dtype, {n});
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.mutable_data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = convert<T>(start + static_cast<double>(i) * step);
  });
  return t;
}

Tensor arange_of(const Tensor& start, const Tensor& stop, const Tensor& step, DType dtype) {
  const bool ints = !is_float(start.dtype()) && !is_float(stop.dtype()) && !is_float(step.dtype());
  if (ints && !is_float(dtype))
    return cast(arange_int(start.scalar_as_int64(), stop.scalar_as_int64(), step.scalar_as_int64()), dtype);
  const double a = start.item_double(0), b = stop.item_double(0), h = step.item_double(0);
  if (is_float(dtype)) return arange(a, b, h, dtype);
  // An integer dtype with float bounds, NumPy's rule: the count of the float range, from
  // int(start) by int(start + step) - int(start).
  Tensor counted = arange(a, b, h, DType::F64);
  const int64_t n = counted.numel();
  auto whole = [](double v) {
    if (!(std::fabs(v) < 9.2e18)) throw Error("arange: the bounds must fit an integer dtype");
    return static_cast<int64_t>(v);
  };
  const int64_t first = n > 0 ? whole(a) : 0, delta = n > 0 ? whole(a + h) - first : 0;
  Tensor t = Tensor::empty(DType::I64, {n});
  int64_t* p = t.mutable_data<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = first + i * delta;
  return cast(t, dtype);
}

Tensor linspace(double a, double b, int64_t n, DType dtype) {
  if (n < 0) throw Error(fmt::format("linspace: the number of values must be >= 0, got {}", n));
  Tensor t = Tensor::empty(dtype, {n});
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.mutable_data<T>();
    double step = n > 1 ? (b - a) / static_cast<double>(n - 1) : 0.0;
    for (int64_t i = 0; i < n; ++i) p[i] = convert<T>(a + static_cast<double>(i) * step);
    if (n > 1) p[n - 1] = convert<T>(b);
  });
  return t;
}

Tensor eye(int64_t n, int64_t m, DType dtype) {
  if (m < 0) m = n;
  Tensor t = Tensor::zeros(dtype, {n, m});
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.mutable_data<T>();
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = convert<T>(1);
  });
  return t;
}

}  // namespace tdl::rt
