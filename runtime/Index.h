// Basic indexing (SPEC §4): per axis an integer (negative counts from the end; out of
// range is `index I is out of range for axis A of size S`) or a Python slice
// start:stop:step (each optional, negative steps allowed). Axes not named are taken
// whole. Integer items remove their axis.
#pragma once

#include <optional>
#include <vector>

#include "Tensor.h"

namespace tdl::rt {

struct IndexItem {
  bool is_slice = false;
  int64_t index = 0;  // when !is_slice
  std::optional<int64_t> start, stop, step;  // when is_slice

  static IndexItem at(int64_t i) { return IndexItem{false, i, {}, {}, {}}; }
  static IndexItem slice(std::optional<int64_t> start = {}, std::optional<int64_t> stop = {},
                         std::optional<int64_t> step = {}) {
    return IndexItem{true, 0, start, stop, step};
  }
  static IndexItem all() { return slice(); }
};
using IndexSpec = std::vector<IndexItem>;

// The normalised selection along one axis: `count` positions start, start + step, ...
struct AxisRange {
  int64_t start = 0, step = 1, count = 0;
  bool keep = true;  // false for an integer index (the axis is removed)
};

// Python's slice.indices() plus integer checks; throws the SPEC errors. `axis` is used in
// messages only.
AxisRange resolve_index(const IndexItem& item, int64_t axis, int64_t size);

// NumPy's `...` among the subscripts of a tensor of rank `rank`: the count of whole axes it
// stands for, the axes the others do not take (`taken`: an integer or a slice takes one, a
// boolean mask its rank, a new axis none). `ellipses` is how many there are: more than one is
// the error "an index can only have a single ellipsis ('...')". Never negative: too many
// subscripts are the indexing's own error.
int64_t ellipsis_axes(int64_t rank, int64_t taken, int64_t ellipses);

// What x[spec] selects in a tensor of `shape`: each axis's range, the selected shape (the
// kept axes) and its element count. Throws the SPEC errors, as get_index and set_index do.
struct IndexRegion {
  std::vector<AxisRange> ranges;  // one per axis
  Shape shape;
  int64_t numel = 0;
};
IndexRegion index_region(const Shape& shape, const IndexSpec& spec);

// x[spec] as a new tensor.
Tensor get_index(const Tensor& x, const IndexSpec& spec);
// x[spec] = value: value is cast to x's dtype and broadcast to the selected region
// (`cannot broadcast shape A to B`); x is updated in place after ensuring it does not
// share its storage.
void set_index(Tensor& x, const IndexSpec& spec, const Tensor& value);

// x[idx] for an integer tensor idx: gathers along axis 0 (= take(x, idx, 0)).
Tensor gather(const Tensor& x, const Tensor& idx);
// x[idx] = value for an integer tensor idx (rows along axis 0; later duplicates win).
void scatter(Tensor& x, const Tensor& idx, const Tensor& value);

// A boolean mask as integer indices (NumPy's x[mask]): the mask's shape must be x's leading
// axes; the result is the i64 [count] positions of its true elements in row-major order,
// which index x seen as [numel(mask), the rest of x's axes] (mask_rows gives that shape).
Tensor mask_indices(const Shape& x, const Tensor& mask);
Shape mask_rows(const Shape& x, const Tensor& mask);

}  // namespace tdl::rt
