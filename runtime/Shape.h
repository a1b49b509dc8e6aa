// Every shape rule of TDL in one place (DESIGN habit 7): validation and element counts,
// broadcasting, axis normalisation, reduction results, matmul, reshape with -1,
// transpose, concat/stack, squeeze/expand_dims. Each rule throws `Error` with the
// SPEC §9 phrase when it fails. Sema, the tracer and the kernels all call these.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tdl::rt {

using Shape = std::vector<int64_t>;

// Tensors have at most this many axes (keeps odometer loops on fixed-size arrays).
inline constexpr int kMaxRank = 32;

// "[2, 3]" (and "[]" for a scalar).
std::string shape_str(const Shape& s);

// Throws Error unless every dim is >= 0 and the rank is <= kMaxRank.
void validate_shape(const Shape& s);

// The element count, or nullopt when it does not fit in int64. A shape with a zero dim
// has 0 elements whatever the other dims are (`[0, 2^32, 2^32]` is fine).
std::optional<int64_t> checked_numel(const Shape& s);

// Unchecked product, for shapes already validated (of existing tensors).
int64_t numel_of(const Shape& s);

// C-order strides in elements.
std::vector<int64_t> strides_of(const Shape& s);

// NumPy broadcasting; throws `cannot broadcast shapes A and B`.
Shape broadcast_shapes(const Shape& a, const Shape& b);
// Whether `from` broadcasts to exactly `to`; broadcast_to's rule.
bool broadcasts_to(const Shape& from, const Shape& to);
// Throws `cannot broadcast shape A to B` unless broadcasts_to.
void check_broadcast_to(const Shape& from, const Shape& to);

// Negative axes count from the end; `axis 3 is out of range for a tensor of rank 2`.
int64_t normalize_axis(int64_t axis, int64_t rank);

// Reductions. `axes` nullopt means all axes. The mask marks reduced axes; duplicates
// are an error.
using Axes = std::optional<std::vector<int64_t>>;
std::vector<bool> reduction_mask(const Axes& axes, int64_t rank);
Shape reduced_shape(const Shape& s, const std::vector<bool>& mask, bool keepdims);

// matmul with NumPy semantics (1-D operands get a dim added and removed again, batch
// dims broadcast). Throws `cannot multiply shapes [2, 3] and [4, 5]` (or the broadcast
// phrase for batch dims).
Shape matmul_shape(const Shape& a, const Shape& b);

// reshape target with at most one -1; throws `cannot reshape [6] into [4, -1]`.
Shape reshape_shape(const Shape& from, const Shape& spec);

// transpose with a permutation (empty perm = reverse the axes); validates the perm.
std::vector<int64_t> normalize_perm(const std::vector<int64_t>& perm, int64_t rank);
Shape transpose_shape(const Shape& s, const std::vector<int64_t>& perm);

// Result shape of concat along `axis` (already normalised); checks ranks and other dims.
Shape concat_shape(const std::vector<Shape>& shapes, int64_t axis);

// expand_dims: axis in [-(rank+1), rank]. squeeze: nullopt removes every 1 dim; an
// explicit axis must have size 1.
Shape expand_dims_shape(const Shape& s, int64_t axis);
// NumPy's expand_dims with several axes: each is a position in the result (of rank
// rank + axes.size()), normalized against it; a repeated one is an error. Sorted.
std::vector<int64_t> expand_dims_positions(int64_t rank, const std::vector<int64_t>& axes);
Shape expand_dims_shape(const Shape& s, const std::vector<int64_t>& axes);
Shape squeeze_shape(const Shape& s, const Axes& axes);

}  // namespace tdl::rt
