#include "Index.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "Copy.h"
#include "Elementwise.h"
#include "Error.h"
#include "ShapeOps.h"

namespace tdl::rt {

int64_t ellipsis_axes(int64_t rank, int64_t taken, int64_t ellipses) {
  if (ellipses > 1) throw Error("an index can only have a single ellipsis ('...')");
  return std::max<int64_t>(0, rank - taken);
}

AxisRange resolve_index(const IndexItem& item, int64_t axis, int64_t n) {
  AxisRange r;
  if (!item.is_slice) {
    int64_t i = item.index;
    if (i < -n || i >= n)
      throw Error(fmt::format("index {} is out of range for axis {} of size {}", i, axis, n));
    r.start = i < 0 ? i + n : i;
    r.count = 1;
    r.keep = false;
    return r;
  }
  int64_t step = item.step.value_or(1);
  if (step == 0) throw Error("slice step cannot be zero");
  // Clamp as Python's PySlice_AdjustIndices does.
  auto adjust = [&](int64_t v) {
    if (v < 0) {
      v = v < -n ? -1 : v + n;
      if (v < 0) v = step < 0 ? -1 : 0;
    } else if (v >= n) {
      v = step < 0 ? n - 1 : n;
    }
    return v;
  };
  int64_t start = item.start ? adjust(*item.start) : (step < 0 ? n - 1 : 0);
  int64_t stop = item.stop ? adjust(*item.stop) : (step < 0 ? -1 : n);
  int64_t count = 0;
  if (step > 0 && stop > start) count = (stop - start - 1) / step + 1;
  if (step < 0 && start > stop) count = (start - stop - 1) / (-step) + 1;
  r.start = count ? start : 0;
  r.step = step;
  r.count = count;
  return r;
}

IndexRegion index_region(const Shape& shape, const IndexSpec& spec) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  if (static_cast<int64_t>(spec.size()) > rank)
    throw Error(fmt::format("too many indices for a tensor of shape {}: got {}", shape_str(shape), spec.size()));
  IndexRegion s;
  s.numel = 1;
  for (int64_t a = 0; a < rank; ++a) {
    AxisRange r = a < static_cast<int64_t>(spec.size()) ? resolve_index(spec[a], a, shape[a])
                                                        : resolve_index(IndexItem::all(), a, shape[a]);
    if (r.keep) s.shape.push_back(r.count);
    s.numel *= r.count;
    s.ranges.push_back(r);
  }
  return s;
}

namespace {

using Selection = IndexRegion;
Selection select(const Tensor& x, const IndexSpec& spec) { return index_region(x.shape(), spec); }

// Calls f(x_offset, region_offset) for the first element of every row (the last axis) of
// a selection with elements, in C order of the region.
template <class F>
void walk_rows(const Tensor& x, const Selection& s, F&& f) {
  const int64_t r = x.rank();
  std::vector<int64_t> st = strides_of(x.shape());
  std::vector<int64_t> idx(r, 0);
  int64_t base = 0;
  for (int64_t a = 0; a < r; ++a) base += s.ranges[a].start * st[a];
  const int64_t row = s.ranges[r - 1].count;
  for (int64_t k = 0;; k += row) {
    f(base, k);
    int64_t a = r - 2;
    for (; a >= 0; --a) {
      base += s.ranges[a].step * st[a];
      if (++idx[a] < s.ranges[a].count) break;
      base -= s.ranges[a].step * st[a] * s.ranges[a].count;
      idx[a] = 0;
    }
    if (a < 0) break;
  }
}

// Calls f(x_offset, region_offset) for every selected element, in C order of the region.
template <class F>
void walk(const Tensor& x, const Selection& s, F&& f) {
  if (s.numel == 0) return;
  if (x.rank() == 0) {
    f(int64_t{0}, int64_t{0});
    return;
  }
  const AxisRange& last = s.ranges.back();  // the last axis has stride 1
  walk_rows(x, s, [&](int64_t base, int64_t k) {
    int64_t off = base;
    for (int64_t i = 0; i < last.count; ++i, off += last.step) f(off, k + i);
  });
}

}  // namespace

Tensor get_index(const Tensor& x, const IndexSpec& spec) {
  Selection s = select(x, spec);
  Tensor out = Tensor::empty(x.dtype(), s.shape);
  if (s.numel == 0) return out;
  if (x.rank() > 0 && s.ranges.back().step == 1) {
    // Rows of the last axis are contiguous in x and in the result: one copy per row (x[i],
    // x[a:b], x[:, a:b] of a batch), one for the whole region when its rows follow each other.
    const int64_t row = s.ranges.back().count;
    const size_t bytes = static_cast<size_t>(row) * itemsize(x.dtype());
    const char* src = static_cast<const char*>(x.raw());
    char* dst = static_cast<char*>(out.mutable_raw());
    const int64_t r = x.rank();
    std::vector<int64_t> st = strides_of(x.shape());
    bool whole = true;  // every axis after the first with more than one index is taken whole
    bool seenMulti = false;
    for (int64_t a = 0; a < r - 1; ++a) {
      const AxisRange& ar = s.ranges[a];
      if (seenMulti && !(ar.start == 0 && ar.step == 1 && ar.count == x.shape()[a])) whole = false;
      if (!seenMulti && ar.count > 1 && ar.step != 1) whole = false;
      if (ar.count > 1) seenMulti = true;
    }
    if (seenMulti && row != x.shape()[r - 1]) whole = false;
    const size_t item = itemsize(x.dtype());
    if (whole) {
      int64_t base = 0;
      for (int64_t a = 0; a < r; ++a) base += s.ranges[a].start * st[a];
      std::memcpy(dst, src + base * static_cast<int64_t>(item), static_cast<size_t>(s.numel) * item);
      return out;
    }
    walk_rows(x, s, [&](int64_t base, int64_t k) {
      std::memcpy(dst + k * static_cast<int64_t>(item), src + base * static_cast<int64_t>(item), bytes);
    });
    return out;
  }
  detail::dispatch_bits(itemsize(x.dtype()), [&](auto tag) {
    using U = decltype(tag);
    const U* src = static_cast<const U*>(x.raw());
    U* dst = static_cast<U*>(out.mutable_raw());
    walk(x, s, [&](int64_t xo, int64_t ro) { dst[ro] = src[xo]; });
  });
  return out;
}

void set_index(Tensor& x, const IndexSpec& spec, const Tensor& value) {
  Selection s = select(x, spec);
  Tensor v = cast(value, x.dtype());
  check_broadcast_to(v.shape(), s.shape);
  if (s.numel == 0) return;
  if (v.numel() != 1 && v.shape() != s.shape) v = broadcast_to(v, s.shape);
  const bool single = v.numel() == 1;
  x.ensure_unique();
  detail::dispatch_bits(itemsize(x.dtype()), [&](auto tag) {
    using U = decltype(tag);
    const U* src = static_cast<const U*>(v.raw());
    U* dst = static_cast<U*>(x.mutable_raw());
    if (single) {
      const U c = src[0];
      walk(x, s, [&](int64_t xo, int64_t) { dst[xo] = c; });
    } else {
      walk(x, s, [&](int64_t xo, int64_t ro) { dst[xo] = src[ro]; });
    }
  });
}

Tensor gather(const Tensor& x, const Tensor& idx) { return take(x, idx, 0); }

void scatter(Tensor& x, const Tensor& idx, const Tensor& value) {
  if (!is_integer(idx.dtype()))
    throw Error(fmt::format("indices must be integers, got {}", idx.type_str()));
  if (x.rank() == 0) throw Error("cannot index a scalar");
  const int64_t n = x.shape()[0];
  std::vector<int64_t> ids(idx.numel());
  for (int64_t i = 0; i < idx.numel(); ++i) {
    int64_t k = idx.item_int64(i);
    if (k < -n || k >= n) throw Error(fmt::format("index {} is out of range for axis 0 of size {}", k, n));
    ids[i] = k < 0 ? k + n : k;
  }
  Shape region = idx.shape();
  region.insert(region.end(), x.shape().begin() + 1, x.shape().end());
  Tensor v = cast(value, x.dtype());
  check_broadcast_to(v.shape(), region);
  v = broadcast_to(v, region);
  if (ids.empty()) return;
  const size_t row = static_cast<size_t>(x.numel() / n) * itemsize(x.dtype());
  char* dst = static_cast<char*>(x.mutable_raw());
  const char* src = static_cast<const char*>(v.raw());
  for (size_t i = 0; i < ids.size(); ++i) std::memcpy(dst + ids[i] * row, src + i * row, row);
}

Shape mask_rows(const Shape& x, const Tensor& mask) {
  if (mask.dtype() != DType::Bool) throw Error(fmt::format("a mask must be bool, got {}", mask.type_str()));
  const Shape& m = mask.shape();
  if (m.empty()) throw Error("a boolean mask used as an index needs at least one axis");
  if (m.size() > x.size() || !std::equal(m.begin(), m.end(), x.begin()))
    throw Error(fmt::format("a boolean mask of shape {} does not match the indexed shape {} (its shape must be the "
                            "tensor's leading axes)",
                            shape_str(m), shape_str(x)));
  Shape rows{mask.numel()};
  rows.insert(rows.end(), x.begin() + static_cast<std::ptrdiff_t>(m.size()), x.end());
  return rows;
}

Tensor mask_indices(const Shape& x, const Tensor& mask) {
  mask_rows(x, mask);  // checks the shapes
  const bool* p = mask.data<bool>();
  std::vector<int64_t> at;
  for (int64_t i = 0; i < mask.numel(); ++i)
    if (p[i]) at.push_back(i);
  Tensor out = Tensor::empty(DType::I64, {static_cast<int64_t>(at.size())});
  if (!at.empty()) std::memcpy(out.mutable_data<int64_t>(), at.data(), at.size() * sizeof(int64_t));
  return out;
}

}  // namespace tdl::rt
