// Evaluates one op on tensor operands by calling the runtime kernels, so constant folding
// (and any later reference interpreter) has exactly the runtime's semantics.
#pragma once

#include <optional>
#include <vector>

#include "ir/IR.h"
#include "runtime/Index.h"
#include "runtime/Kernels.h"

namespace tdl::ir {

// The results of `op` applied to `operands`, or nullopt for ops that cannot be evaluated
// here (effects, regions, symbolic result shapes). Throws rt::Error when the runtime
// does (e.g. integer division by zero, an index out of range).
std::optional<std::vector<rt::Tensor>> evaluate(const Op& op, const std::vector<rt::Tensor>& operands);

// The index spec an `update` (x[i0, ...] = v) or `dyn_slice_update` (x[slices] = v) writes,
// from its operands (x, v, then the indices or bounds).
rt::IndexSpec update_spec(const Op& op, const std::vector<rt::Tensor>& operands);

// An `iota` result: the index along `axis`, as `dtype`, broadcast to `shape` (the evaluator's
// and compiled code's host op, which resolves a symbolic shape first).
rt::Tensor iota_tensor(const rt::Shape& shape, int64_t axis, DType dtype);

// The ops `evaluate` computes besides the elementwise ones: each by its kernel
// tdlk_op_<Enum>, found through the op table tdlk_op_kernel (runtime/Kernels.h; the full
// table is EvalTable.cpp, a minimal runtime's names only what its models use).
#define TDL_EVAL_OPS(X)                                                                          \
  X(Constant) X(Cast) X(Select) X(Dim) X(Iota) X(BroadcastTo) X(Reshape) X(BroadcastDyn)        \
  X(ReshapeDyn) X(Arange) X(Transpose) X(Concat) X(Slice) X(Reduce) X(ArgMax) X(ArgMin)         \
  X(Im2col) X(Col2im) X(ConvNhwc) X(Argsort) X(Scan) X(MatMul) X(Gemm) X(Quantize)              \
  X(Dequantize) X(QGemm) X(Index) X(Take) X(IndexAdd) X(DynSlice) X(DynSliceUpdate) X(Update)
bool has_evaluator(OpKind kind);
using EvalKernel = int32_t (*)(const Op* op, const std::vector<rt::Tensor>* in, std::vector<rt::Tensor>* out);

}  // namespace tdl::ir

extern "C" {
// The kernel of op kind `kind` (an ir::OpKind) that `evaluate` calls, or null.
tdlk_fn tdlk_op_kernel(int32_t kind);
}

namespace tdl::ir {

}  // namespace tdl::ir
