#include "ShapeOps.h"

#include <fmt/format.h>

#include <cstring>

#include "Copy.h"
#include "Create.h"
#include "Elementwise.h"
#include "Error.h"
#include "Loop.h"

namespace tdl::rt {

Tensor reshape(const Tensor& x, const Shape& spec) { return x.with_shape(reshape_shape(x.shape(), spec)); }

Tensor expand_dims(const Tensor& x, int64_t axis) { return x.with_shape(expand_dims_shape(x.shape(), axis)); }
Tensor expand_dims(const Tensor& x, const std::vector<int64_t>& axes) {
  return x.with_shape(expand_dims_shape(x.shape(), axes));
}

Tensor squeeze(const Tensor& x, const Axes& axes) { return x.with_shape(squeeze_shape(x.shape(), axes)); }

Tensor flatten(const Tensor& x) { return x.with_shape({x.numel()}); }

Tensor transpose(const Tensor& x, const std::vector<int64_t>& perm_in) {
  const int64_t r = x.rank();
  std::vector<int64_t> perm = normalize_perm(perm_in, r);
  Shape out_shape(r);
  for (int64_t i = 0; i < r; ++i) out_shape[i] = x.shape()[perm[i]];
  bool identity = true;
  for (int64_t i = 0; i < r; ++i)
    if (perm[i] != i && x.shape()[perm[i]] != 1) identity = false;
  if (identity) return x.with_shape(out_shape);
  Tensor out = Tensor::empty(x.dtype(), out_shape);
  if (out.numel() == 0) return out;
  // Input strides seen from the output's axes; out is operand 0 of a loop plan whose
  // operand 1 strides we patch in directly.
  std::vector<int64_t> in_strides = strides_of(x.shape());
  detail::LoopPlan p;
  p.nops = 2;
  p.rank = static_cast<int>(r);
  std::vector<int64_t> out_strides = strides_of(out_shape);
  for (int64_t i = 0; i < r; ++i) {
    p.shape[i] = out_shape[i];
    p.strides[0][i] = out_strides[i];
    p.strides[1][i] = in_strides[perm[i]];
  }
  detail::dispatch_bits(itemsize(x.dtype()), [&](auto tag) {
    using U = decltype(tag);
    const U* src = static_cast<const U*>(x.raw());
    U* dst = static_cast<U*>(out.mutable_raw());
    const int64_t s = p.strides[1][r - 1];
    detail::for_each_row(p, [&](const int64_t* offs, int64_t b, int64_t e) {
      const U* in = src + offs[1];
      U* o = dst + offs[0];
      for (int64_t i = b; i < e; ++i) o[i] = in[i * s];
    });
  });
  return out;
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  check_broadcast_to(x.shape(), shape);
  if (x.shape() == shape) return x;
  Tensor out = Tensor::empty(x.dtype(), shape);
  if (out.numel() == 0) return out;
  detail::LoopPlan p = detail::make_loop_plan(shape, {&shape, &x.shape()});
  detail::dispatch_bits(itemsize(x.dtype()), [&](auto tag) {
    using U = decltype(tag);
    const U* src = static_cast<const U*>(x.raw());
    U* dst = static_cast<U*>(out.mutable_raw());
    const int64_t s = p.strides[1][p.rank - 1];
    detail::for_each_row(p, [&](const int64_t* offs, int64_t b, int64_t e) {
      const U* in = src + offs[1];
      U* o = dst + offs[0];
      if (s == 0) {
        const U v = in[0];
        for (int64_t i = b; i < e; ++i) o[i] = v;
      } else {
        for (int64_t i = b; i < e; ++i) o[i] = in[i];
      }
    });
  });
  return out;
}

Tensor concat(const std::vector<Tensor>& xs, int64_t axis_in) {
  if (xs.empty()) throw Error("cannot concatenate an empty list of tensors");
  DType dt = xs[0].dtype();
  std::vector<Shape> shapes;
  for (const Tensor& t : xs) {
    dt = promote(dt, t.dtype());
    shapes.push_back(t.shape());
  }
  if (xs[0].rank() == 0) throw Error("cannot concatenate scalars (rank 0 tensors)");
  int64_t axis = normalize_axis(axis_in, xs[0].rank());
  Shape out_shape = concat_shape(shapes, axis);
  Tensor out = Tensor::empty(dt, out_shape);
  if (out.numel() == 0) return out;
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= out_shape[d];
  const size_t item = itemsize(dt);
  std::vector<Tensor> cast_xs;
  std::vector<size_t> chunk;
  for (const Tensor& t : xs) {
    cast_xs.push_back(cast(t, dt));
    chunk.push_back(static_cast<size_t>(outer ? t.numel() / outer : 0) * item);
  }
  char* dst = static_cast<char*>(out.mutable_raw());
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t k = 0; k < cast_xs.size(); ++k) {
      if (chunk[k] == 0) continue;
      std::memcpy(dst, static_cast<const char*>(cast_xs[k].raw()) + o * chunk[k], chunk[k]);
      dst += chunk[k];
    }
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t axis) {
  if (xs.empty()) throw Error("cannot stack an empty list of tensors");
  for (const Tensor& t : xs)
    if (t.shape() != xs[0].shape())
      throw Error(fmt::format("cannot stack shapes {} and {}", shape_str(xs[0].shape()), shape_str(t.shape())));
  int64_t a = normalize_axis(axis, xs[0].rank() + 1);
  std::vector<Tensor> ex;
  for (const Tensor& t : xs) ex.push_back(expand_dims(t, a));
  return concat(ex, a);
}

Tensor take(const Tensor& x, const Tensor& idx, int64_t axis_in) {
  if (!is_integer(idx.dtype()))
    throw Error(fmt::format("indices must be integers, got {}", idx.type_str()));
  if (x.rank() == 0) throw Error("cannot index a scalar");
  int64_t axis = normalize_axis(axis_in, x.rank());
  const int64_t n = x.shape()[axis];
  Shape out_shape(x.shape().begin(), x.shape().begin() + axis);
  out_shape.insert(out_shape.end(), idx.shape().begin(), idx.shape().end());
  out_shape.insert(out_shape.end(), x.shape().begin() + axis + 1, x.shape().end());
  // Validate and normalise the indices first.
  std::vector<int64_t> ids(idx.numel());
  for (int64_t i = 0; i < idx.numel(); ++i) {
    int64_t v = idx.item_int64(i);
    if (v < -n || v >= n)
      throw Error(fmt::format("index {} is out of range for axis {} of size {}", v, axis, n));
    ids[i] = v < 0 ? v + n : v;
  }
  Tensor out = Tensor::empty(x.dtype(), out_shape);
  if (out.numel() == 0) return out;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape()[d];
  for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.shape()[d];
  const size_t row = static_cast<size_t>(inner) * itemsize(x.dtype());
  const char* src = static_cast<const char*>(x.raw());
  char* dst = static_cast<char*>(out.mutable_raw());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j : ids) {
      std::memcpy(dst, src + (o * n + j) * row, row);
      dst += row;
    }
  return out;
}

Tensor index_add(const Tensor& base, const Tensor& idx, const Tensor& src_in, int64_t axis_in) {
  if (!is_integer(idx.dtype()))
    throw Error(fmt::format("indices must be integers, got {}", idx.type_str()));
  if (!is_float(base.dtype())) throw Error(fmt::format("index_add: needs a float tensor, got {}", base.type_str()));
  if (base.rank() == 0) throw Error("cannot index a scalar");
  int64_t axis = normalize_axis(axis_in, base.rank());
  const int64_t n = base.shape()[axis];
  Shape src_shape(base.shape().begin(), base.shape().begin() + axis);
  src_shape.insert(src_shape.end(), idx.shape().begin(), idx.shape().end());
  src_shape.insert(src_shape.end(), base.shape().begin() + axis + 1, base.shape().end());
  Tensor src = cast(src_in, base.dtype());
  check_broadcast_to(src.shape(), src_shape);
  if (src.shape() != src_shape) src = broadcast_to(src, src_shape);
  std::vector<int64_t> ids(idx.numel());
  for (int64_t i = 0; i < idx.numel(); ++i) {
    int64_t v = idx.item_int64(i);
    if (v < -n || v >= n) throw Error(fmt::format("index {} is out of range for axis {} of size {}", v, axis, n));
    ids[i] = v < 0 ? v + n : v;
  }
  Tensor out = base;
  out.ensure_unique();
  if (src.numel() == 0) return out;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= base.shape()[d];
  for (int64_t d = axis + 1; d < base.rank(); ++d) inner *= base.shape()[d];
  dispatch(base.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      T* dst = out.mutable_data<T>();
      const T* s = src.data<T>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j : ids) {
          T* row = dst + (o * n + j) * inner;
          for (int64_t k = 0; k < inner; ++k) row[k] += s[k];
          s += inner;
        }
    }
  });
  return out;
}

Tensor one_hot(const Tensor& idx, int64_t n, DType dtype) {
  if (!is_integer(idx.dtype()))
    throw Error(fmt::format("one_hot: indices must be integers, got {}", idx.type_str()));
  if (n < 0) throw Error(fmt::format("one_hot: the depth must be >= 0, got {}", n));
  Shape shape = idx.shape();
  shape.push_back(n);
  Tensor out = Tensor::zeros(dtype, shape);
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = out.mutable_data<T>();
    for (int64_t i = 0; i < idx.numel(); ++i) {
      int64_t v = idx.item_int64(i);
      if (v >= 0 && v < n) p[i * n + v] = T(1);
    }
  });
  return out;
}

Tensor tile(const Tensor& x, const std::vector<int64_t>& reps) {
  for (int64_t r : reps)
    if (r < 0) throw Error(fmt::format("tile: repetitions must be >= 0, got [{}]", fmt::join(reps, ", ")));
  size_t d = std::max(reps.size(), x.shape().size());
  Shape xs(d - x.shape().size(), 1);
  xs.insert(xs.end(), x.shape().begin(), x.shape().end());
  std::vector<int64_t> rs(d - reps.size(), 1);
  rs.insert(rs.end(), reps.begin(), reps.end());
  Shape interleaved, target, result;
  for (size_t i = 0; i < d; ++i) {
    interleaved.push_back(1);
    interleaved.push_back(xs[i]);
    target.push_back(rs[i]);
    target.push_back(xs[i]);
    int64_t m;
    if (__builtin_mul_overflow(rs[i], xs[i], &m)) throw Error("tile: the result is too large");
    result.push_back(m);
  }
  if (2 * d > static_cast<size_t>(kMaxRank)) {
    // Too many axes to interleave: tile axis by axis through concat.
    Tensor t = x.with_shape(xs);
    for (size_t i = 0; i < d; ++i) {
      if (rs[i] == 1) continue;
      t = concat(std::vector<Tensor>(static_cast<size_t>(rs[i]), t), static_cast<int64_t>(i));
    }
    return t;
  }
  return broadcast_to(x.with_shape(interleaved), target).with_shape(result);
}

std::vector<std::pair<int64_t, int64_t>> pad_widths(const Shape& shape, const std::vector<std::pair<int64_t, int64_t>>& widths_in,
                                                    Shape* out_shape, const std::string& shape_text) {
  const int64_t r = static_cast<int64_t>(shape.size());
  std::vector<std::pair<int64_t, int64_t>> widths = widths_in;
  if (widths.size() == 1 && r != 1) widths.assign(r, widths_in[0]);
  if (static_cast<int64_t>(widths.size()) != r)
    throw Error(fmt::format("pad: expected {} (before, after) pairs for a tensor of shape {}, got {}", r,
                            shape_text.empty() ? shape_str(shape) : shape_text, widths_in.size()));
  Shape out(r);
  for (int64_t i = 0; i < r; ++i) {
    auto [b, a] = widths[i];
    if (b < 0 || a < 0) throw Error(fmt::format("pad: widths must be >= 0, got ({}, {})", b, a));
    if (__builtin_add_overflow(shape[i], b, &out[i]) || __builtin_add_overflow(out[i], a, &out[i]))
      throw Error("pad: the result is too large");
  }
  if (out_shape) *out_shape = out;
  return widths;
}

Tensor pad(const Tensor& x, const std::vector<std::pair<int64_t, int64_t>>& widths_in,
           const Tensor& value) {
  const int64_t r = x.rank();
  Shape out_shape;
  std::vector<std::pair<int64_t, int64_t>> widths = pad_widths(x.shape(), widths_in, &out_shape);
  if (value.numel() != 1) throw Error("pad: the value must be a scalar, got " + value.type_str());
  Tensor out = full(out_shape, cast(value, x.dtype()));
  if (out.numel() == 0 || x.numel() == 0) return out;
  if (r == 0) return x;
  // Copy each last-axis row of x into place.
  std::vector<int64_t> ostr = strides_of(out_shape);
  const size_t item = itemsize(x.dtype());
  const int64_t inner = x.shape()[r - 1];
  const int64_t rows = x.numel() / inner;
  std::vector<int64_t> idx(r, 0);
  const char* src = static_cast<const char*>(x.raw());
  char* dst = static_cast<char*>(out.mutable_raw());
  for (int64_t row = 0; row < rows; ++row) {
    int64_t off = widths[r - 1].first;
    for (int64_t d = 0; d + 1 < r; ++d) off += (idx[d] + widths[d].first) * ostr[d];
    std::memcpy(dst + off * item, src + row * inner * item, inner * item);
    for (int64_t d = r - 2; d >= 0; --d) {
      if (++idx[d] < x.shape()[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

}  // namespace tdl::rt
