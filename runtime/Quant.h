// Symmetric int8 quantization (`tdl export --quantize int8`, docs/quantization.md): the
// kernels of the IR's quantize, dequantize and qgemm ops.
//   q = clamp(round_half_even(x / scale), -127, 127), x ~ q * scale
// Weights get one scale per output channel (a column of w[K, N]), activations one per
// tensor (from calibration). qgemm multiplies int8 by int8 with exact int32 accumulation,
// so its integer results are the same on every machine.
#pragma once

#include <optional>
#include <utility>

#include "runtime/Tensor.h"

namespace tdl::rt {

// i8 tensor of x (a float tensor) at one scale (> 0).
Tensor quantize_i8(const Tensor& x, double scale);
// f32 tensor q * scale: scale an f32 scalar, or f32[N] with N = q's size along `axis`
// (one scale per channel along that axis).
Tensor dequantize_i8(const Tensor& q, const Tensor& scale, int64_t axis = -1);
// w f32[N, K] (one row per output channel, as dense layers store them in TF Lite) ->
// (i8[N, K], f32[N]): row n at scale max|w[n, :]| / 127 (1 when zero).
std::pair<Tensor, Tensor> quantize_rows_i8(const Tensor& w);
// alpha * (dequantize(quantize(a, x_scale), x_scale) @ dequantize(w, w_scale, 0)^T) + beta * c,
// computed as alpha * (x_scale * w_scale[n]) * int32(sum_k qa[m, k] * w[n, k]) + beta * c:
// a f32[M, K], w i8[N, K], w_scale f32[N], c f32[M, N] (optional). a may also be i8[M, K],
// already quantize(a, x_scale) (then it is used as it is).
// Then, as the ops after a layer's product would (and with the same float operations, so the
// same bits): + bias[n] (f32[N], optional), and relu when `relu`.
Tensor qgemm(const Tensor& a, const Tensor& w, const Tensor& w_scale, double x_scale, const std::optional<Tensor>& c,
             double alpha, double beta, const std::optional<Tensor>& bias = std::nullopt, bool relu = false);

}  // namespace tdl::rt
