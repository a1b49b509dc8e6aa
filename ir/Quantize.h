// int8 post-training quantization of a graph fn (`tdl export --quantize int8`,
// docs/quantization.md): the matrix products with a constant weight matrix (matmul, gemm:
// dense layers, and convolutions, which are im2col + gemm) get int8 weights with one scale
// per output channel and int8 activations with one scale per tensor, measured on
// calibration data.
//   1. quant_candidates: those products (in the function's top-level block).
//   2. add_range_probes: a copy of the fn that also returns max|a| of each one's input a,
//      to run on calibration inputs.
//   3. quantize_int8: each product becomes gemm(dequantize(quantize(a, xs), xs),
//      dequantize(wq, ws, axis 0), c) {trans_b}, wq the int8 weights [N, K] (a row per
//      output channel) — quantize/dequantize ops in the IR, the reference form;
//   4. the `qgemm` pass (ir/Pipeline.cpp) fuses that into one qgemm op: int8 x int8 with
//      int32 accumulation (rt::qgemm).
#pragma once

#include <vector>

#include "ir/IR.h"

namespace tdl::ir {

// Weight matrices smaller than this stay f32 (too small to matter). A first 3x3 convolution
// of one channel (144 weights) is quantized: its product is over every pixel of the batch.
inline constexpr int64_t kMinQuantizedWeights = 64;

// The matmul/gemm ops of the top-level block whose b is a rank-2 f32 constant of at least
// kMinQuantizedWeights elements and whose a is a rank-2 f32 value (gemm: not trans_a).
std::vector<Op*> quant_candidates(Function& fn);

// Appends one f32[] result per candidate (in order): max|a| of its input a.
void add_range_probes(Function& fn, const std::vector<Op*>& candidates);

// Rewrites each candidate i with the activation range absMax[i] (0: scale 1) into the
// quantize/dequantize form above.
void quantize_int8(Function& fn, const std::vector<Op*>& candidates, const std::vector<double>& absMax);

}  // namespace tdl::ir
