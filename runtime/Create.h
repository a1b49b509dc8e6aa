// Tensor creation (SPEC §5): zeros/ones/full/arange/linspace/eye.
#pragma once

#include "Tensor.h"

namespace tdl::rt {

Tensor zeros(const Shape& shape, DType dtype = DType::F32);
Tensor ones(const Shape& shape, DType dtype = DType::F32);
// `value` is converted to `dtype` as cast() would.
Tensor full(const Shape& shape, double value, DType dtype);
// A tensor of `shape` filled with the scalar `value` (its dtype).
Tensor full(const Shape& shape, const Tensor& value);
Tensor zeros_like(const Tensor& x);
Tensor ones_like(const Tensor& x);

// Integer arange: [start, stop) by step (step != 0), i64.
Tensor arange_int(int64_t start, int64_t stop, int64_t step = 1);
// Float arange: ceil((stop - start) / step) values start + i * step, in `dtype`.
Tensor arange(double start, double stop, double step = 1.0, DType dtype = DType::F32);
// arange's rule for scalar bounds, both engines' (the eager builtin, ir::Eval's Arange): integer
// bounds and an integer dtype count exactly (arange_int); float bounds with an integer dtype
// take NumPy's rule (the float range's count, from int(start) by int(start + step) -
// int(start)); otherwise arange in double.
Tensor arange_of(const Tensor& start, const Tensor& stop, const Tensor& step, DType dtype);
// n values from a to b inclusive (n >= 0); the last one is exactly b.
Tensor linspace(double a, double b, int64_t n, DType dtype = DType::F32);
// n x m identity (m < 0 means m = n).
Tensor eye(int64_t n, int64_t m = -1, DType dtype = DType::F32);

}  // namespace tdl::rt
