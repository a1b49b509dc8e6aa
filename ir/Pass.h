// A pass rewrites one function and says whether it changed anything (DESIGN habit 6).
// Passes live one per file in ir/passes/; the only list of them is ir/Pipeline.cpp.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "ir/IR.h"

namespace tdl::ir {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string_view name() const = 0;
  // Rewrites f; returns whether it changed it. Precondition: f verifies.
  virtual bool run(Function& f) = 0;
};

std::unique_ptr<Pass> create_constant_fold_pass();
std::unique_ptr<Pass> create_simplify_pass();
std::unique_ptr<Pass> create_cse_pass();
std::unique_ptr<Pass> create_dce_pass();
std::unique_ptr<Pass> create_fusion_pass();
std::unique_ptr<Pass> create_gemm_pass();
std::unique_ptr<Pass> create_qgemm_pass();  // ir/passes/Quantize.cpp (not in the default pipeline: tdl export --quantize)
std::unique_ptr<Pass> create_if_convert_pass();
std::unique_ptr<Pass> create_loops_pass();
std::unique_ptr<Pass> create_conv_pass();
// A while the loops pass counts: carried i64 i from a constant >= 0, `i < n` with n from
// outside, i + 1 yielded; it runs at most n times (code generation leaves the interrupt
// test out of such loops, which keeps them vectorizable: runtime/Interrupt.h).
bool is_counted_while(const Op& w);
// Whether an op may sit in the body of a `fused` op (codegen lowers each such op inline).
bool is_fusable_scalar_op(const Op& op);
// How an operand x of a fused op with result type r is read, viewing r as rows (all axes
// but the last) by columns (the last axis): Scalar (rank 0), Full (x's dims are r's),
// Row (x is broadcast along every leading axis: dims [1, ..., 1, C] or [C]), Col (x is r
// with a last dim of known size 1: [B, 1]), Strided (any other NumPy broadcast to r: each
// of x's dims, aligned right, is r's or of known size 1: [N, 1, 2] or [8, 2] of [N, 8, 2];
// read through per-axis strides, 0 along broadcast axes); None when x does not broadcast
// to r as the types say.
enum class FusedOperand { Scalar, Full, Row, Col, Strided, None };
FusedOperand fused_operand_kind(const TensorType& x, const TensorType& r);
// The domain a fused op loops over: a fused op's result type; a fused_reduce's is the
// broadcast of its operands' types (operand 0's when it has them all). Every dim of the
// domain is some operand's (or of known size 1), so the operands' shapes give it at run
// time.
TensorType fused_domain(const Op& op);
// Whether the broadcast of the operands' types is r: every dim of r is, at its position
// (aligned right), some operand's dim, or of known size 1.
bool operands_cover(const Op& op, const TensorType& r);
// Replaces symbolic dims by known sizes (sym name → size), and then every symbol whose
// size follows from those.
std::unique_ptr<Pass> create_specialize_pass(std::map<std::string, int64_t> sizes);

}  // namespace tdl::ir
