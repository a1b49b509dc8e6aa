// The patches of a 2-D window over x [N, H, W, C] (TensorFlow's layout) and their adjoint:
// what conv2d, conv2d_transpose and the pooling builtins are made of (vm/Composite.h), one
// kernel each for eager mode and compiled code (the IR ops im2col and col2im).
#pragma once

#include <array>

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
