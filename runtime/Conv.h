// The patches of a 2-D window over x [N, H, W, C] (TensorFlow's layout) and their adjoint:
// what conv2d, conv2d_transpose and the pooling builtins are made of (vm/Composite.h), one
// kernel each for eager mode and compiled code (the IR ops im2col and col2im).
#pragma once

#include <array>
#include <optional>

#include "Tensor.h"

namespace tdl::rt {

// A window: size kh x kw, stride sh x sw, dilation dh x dw, padding before pt (top) and pl
// (left), and the output's oh x ow positions (the padding after is what they reach past
// the input). Output position (o, p), tap (i, j) reads x[o * sh + i * dh - pt, p * sw + j * dw - pl].
struct Window2d {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, oh = 0, ow = 0;
  static Window2d from(const std::array<int64_t, 10>& a) { return {a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]}; }
  std::array<int64_t, 10> list() const { return {kh, kw, sh, sw, dh, dw, pt, pl, oh, ow}; }
};

// [N, oh, ow, kh * kw * C]: for each output position its window's taps in (i, j, c) order;
// taps outside x read `pad`. x may also be i8 (quantized pixels; pad 0).
Tensor im2col(const Tensor& x, const Window2d& w, double pad = 0.0);
// The adjoint of im2col for an input of h x w positions: [N, h, w, C] where each element is
// the sum of the columns' entries that read it (C = cols' last dim / (kh * kw)).
Tensor col2im(const Tensor& cols, int64_t h, int64_t w, const Window2d& win);

}  // namespace tdl::rt

namespace tdl::rt {

// A convolution without the patches in memory: im2col(x, win, 0) @ wm, as [N, oh, ow, O],
// for x f32 [N, H, W, C] and wm f32 [kh * kw * C, O] (the filter in im2col's tap order).
// Large problems on x86 with AVX-512 run a direct kernel (each output position's taps read
// from padded copies of the input rows, 6 positions x 64 channels of accumulators in
// registers); the others, and other dtypes, im2col and matmul (the same sums, possibly
// added in another order).
// With bias f32[O] and relu: then + bias[o] and relu on each result, as the ops after a
// layer would (the same float operations, so the same bits), as it is written.
Tensor conv_nhwc(const Tensor& x, const Tensor& wm, const Window2d& win, const std::optional<Tensor>& bias = std::nullopt,
                 bool relu = false);
// The direct kernels run from this many multiply-adds on (ir/passes/Conv.cpp rewrites only
// products at least this large, so smaller ones keep their exact im2col + matmul sums).
inline constexpr int64_t kConvDirectMinMacs = int64_t{1} << 24;
// Its adjoint with respect to x: col2im(g @ wm^T, h, w, win) for g [N, oh, ow, O], as
// [N, h, w, C]. With stride 1 this is a convolution of g with the filter flipped and its
// channels swapped, which runs the same direct kernel; otherwise gemm and col2im.
Tensor conv_nhwc_adjoint(const Tensor& g, const Tensor& wm, const Window2d& win, int64_t h, int64_t w);
// Its gradient with respect to wm: im2col(x, win, 0)^T @ g as [kh * kw * C, O], for x
// [N, H, W, C] and g [N, oh, ow, O]; large problems run a direct kernel (partial sums over
// a fixed number of chunks of output rows, added in order), the others im2col and gemm.
Tensor conv_nhwc_filter_grad(const Tensor& x, const Tensor& g, const Window2d& win);

}  // namespace tdl::rt
