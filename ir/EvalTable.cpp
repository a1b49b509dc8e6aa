// The full runtime's op table: every evaluator of ir/Eval.cpp (runtime/Kernels.h). A minimal
// runtime (`tdl runtime`) links a generated table in this one's place.
#include "ir/Eval.h"

using tdl::ir::Op;
using V = std::vector<tdl::rt::Tensor>;

extern "C" {
#define TDL_EVAL_DECL(e) int32_t tdlk_op_##e(const Op*, const V*, V*);
TDL_EVAL_OPS(TDL_EVAL_DECL)
#undef TDL_EVAL_DECL

tdlk_fn tdlk_op_kernel(int32_t kind) {
  switch (static_cast<tdl::ir::OpKind>(kind)) {
#define TDL_EVAL_CASE(e) \
  case tdl::ir::OpKind::e: return reinterpret_cast<tdlk_fn>(&tdlk_op_##e);
    TDL_EVAL_OPS(TDL_EVAL_CASE)
#undef TDL_EVAL_CASE
    default: return nullptr;
  }
}
}
