// Reductions (SPEC §5) with axis = none | int | list (negative allowed) and keepdims.
//
// Result dtypes: sum, prod: bool/i32/i64 give i64, floats keep theirs.
//   mean, logsumexp: floats keep theirs, bool/integers give f32.
//   max, min: the input dtype. all, any: bool. argmax, argmin: i64.
// Empty reductions: sum 0, prod 1, all true, any false, mean nan, logsumexp -inf;
// max/min/argmax/argmin of an empty axis throw Error. argmax/argmin choose the first
// maximal (minimal) element (the first NaN if any); over several axes they index the
// reduced axes flattened in C order. Float sums use pairwise summation.
#pragma once

#include "Tensor.h"

namespace tdl::rt {

enum class ReduceOp : uint8_t { Sum, Mean, Max, Min, Prod, All, Any, ArgMax, ArgMin, LogSumExp };

std::string_view reduce_op_name(ReduceOp op);
DType reduce_result_dtype(ReduceOp op, DType x);

Tensor reduce(ReduceOp op, const Tensor& x, const Axes& axes = std::nullopt, bool keepdims = false);
// The gradient of a broadcast back at its operand's shape `to`: g summed over its leading axes
// and over the axes where `to` has 1 and g does not (graph fns' gradients where a symbolic dim
// may be 1 at run time, ir/autodiff/Grad.cpp's fitTo).
Tensor sum_to(const Tensor& g, const Shape& to);
// The axes of g that broadcasting added to `to`: its leading extra axes and those where `to`
// has 1 and g does not (sum_to's, and eager autodiff's sumTo).
std::vector<int64_t> broadcast_axes(const Shape& g, const Shape& to);

inline Tensor sum(const Tensor& x, const Axes& axes = std::nullopt, bool keepdims = false) { return reduce(ReduceOp::Sum, x, axes, keepdims); }
inline Tensor mean(const Tensor& x, const Axes& axes = std::nullopt, bool keepdims = false) { return reduce(ReduceOp::Mean, x, axes, keepdims); }
inline Tensor max(const Tensor& x, const Axes& axes = std::nullopt, bool keepdims = false) { return reduce(ReduceOp::Max, x, axes, keepdims); }
inline Tensor min(const Tensor& x, const Axes& axes = std::nullopt, bool keepdims = false) { return reduce(ReduceOp::Min, x, axes, keepdims); }
inline Tensor prod(const Tensor& x, const Axes& axes = std::nullopt, bool keepdims = false) { return reduce(ReduceOp::Prod, x, axes, keepdims); }
inline Tensor all(const Tensor& x, const Axes& axes = std::nullopt, bool keepdims = false) { return reduce(ReduceOp::All, x, axes, keepdims); }
inline Tensor any(const Tensor& x, const Axes& axes = std::nullopt, bool keepdims = false) { return reduce(ReduceOp::Any, x, axes, keepdims); }
inline Tensor argmax(const Tensor& x, const Axes& axes = std::nullopt, bool keepdims = false) { return reduce(ReduceOp::ArgMax, x, axes, keepdims); }
inline Tensor argmin(const Tensor& x, const Axes& axes = std::nullopt, bool keepdims = false) { return reduce(ReduceOp::ArgMin, x, axes, keepdims); }
inline Tensor logsumexp(const Tensor& x, const Axes& axes = std::nullopt, bool keepdims = false) { return reduce(ReduceOp::LogSumExp, x, axes, keepdims); }

}  // namespace tdl::rt
