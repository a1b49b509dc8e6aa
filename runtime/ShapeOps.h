// Shape operations (SPEC §5). Ops that keep the element order (reshape, expand_dims,
// squeeze, flatten) share the input's storage; the others copy. Mixed dtypes in
// concat/stack are promoted to the common dtype.
#pragma once

#include <utility>
#include <vector>

#include "Tensor.h"

namespace tdl::rt {

// `spec` may hold one -1; `cannot reshape [6] into [4, -1]`.
Tensor reshape(const Tensor& x, const Shape& spec);
Tensor expand_dims(const Tensor& x, int64_t axis);
Tensor expand_dims(const Tensor& x, const std::vector<int64_t>& axes);  // NumPy's several axes
// nullopt removes every size-1 axis; an explicit axis must have size 1.
Tensor squeeze(const Tensor& x, const Axes& axes = std::nullopt);
Tensor flatten(const Tensor& x);

// Reverses the axes when perm is empty; else NumPy's transpose(x, perm).
Tensor transpose(const Tensor& x, const std::vector<int64_t>& perm = {});

Tensor concat(const std::vector<Tensor>& xs, int64_t axis = 0);
Tensor stack(const std::vector<Tensor>& xs, int64_t axis = 0);
// Materialises x broadcast to `shape`; `cannot broadcast shape A to B`.
Tensor broadcast_to(const Tensor& x, const Shape& shape);

// take(x, idx, axis): x.shape[:axis] + idx.shape + x.shape[axis+1:]. idx is an integer
// tensor; negative indices count from the end; out of range is
// `index I is out of range for axis A of size S`.
Tensor take(const Tensor& x, const Tensor& idx, int64_t axis = 0);
// The adjoint of take: `base` with src's slices added at idx along `axis` (src has take's
// result shape for base and idx; repeated indices add up). Floats only (gradients).
Tensor index_add(const Tensor& base, const Tensor& idx, const Tensor& src, int64_t axis = 0);
// one_hot(idx, n): idx.shape + [n]; an index outside [0, n) gives a row of zeros (as in
// TensorFlow and JAX).
Tensor one_hot(const Tensor& idx, int64_t n, DType dtype = DType::F32);
// NumPy tile: reps shorter than the rank are padded with leading 1s, longer reps add
// leading axes.
Tensor tile(const Tensor& x, const std::vector<int64_t>& reps);
// widths: one (before, after) per axis, or a single pair applied to every axis; `value`
// is a scalar converted to x's dtype.
Tensor pad(const Tensor& x, const std::vector<std::pair<int64_t, int64_t>>& widths,
           const Tensor& value);
// pad's widths for a tensor of `shape`: one (before, after) per axis (a single pair
// repeated), checked (count, >= 0, the result's size); the result's shape in out_shape.
// shape_text: the shape as errors name it (default: `shape`'s sizes).
std::vector<std::pair<int64_t, int64_t>> pad_widths(const Shape& shape, const std::vector<std::pair<int64_t, int64_t>>& widths,
                                                    Shape* out_shape = nullptr, const std::string& shape_text = "");

}  // namespace tdl::rt
