// im2col (runtime/Conv.h) against its definition, element by element, over random windows:
// sizes, strides, dilations, padding on each side, and channel counts that take both the
// compile-time runs and the general copy.
#include <cstring>
#include <random>

#include "Helpers.h"
#include "runtime/Conv.h"
#include "runtime/Quant.h"
#include "runtime/ShapeOps.h"

using namespace tdl::rt;

TEST_CASE("im2col reads each tap of each window, the fill value outside the image", "[conv]") {
  std::mt19937 rng(1);
  auto R = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  int64_t checked = 0, wrong = 0;
  for (int t = 0; t < 3100; ++t) {
    // the last 100: wide images of many channels, whose output rows take the other loop order
    const bool wide = t >= 3000;
    const int64_t N = R(1, 3), H = R(1, wide ? 4 : 9), W = wide ? R(20, 40) : R(1, 9);
    const int64_t C = wide ? 32 : R(0, 3) == 0 ? 16 : R(1, 5);
    Window2d w;
    w.kh = R(1, 4), w.kw = R(1, 4), w.sh = R(1, 3), w.sw = R(1, 3), w.dh = R(1, 3), w.dw = wide ? 1 : R(1, 3);
    w.pt = R(0, 3), w.pl = R(0, 3);
    const int64_t pb = R(0, 3), pr = R(0, 3), eh = (w.kh - 1) * w.dh + 1, ew = (w.kw - 1) * w.dw + 1;
    if (H + w.pt + pb < eh || W + w.pl + pr < ew) continue;
    w.oh = (H + w.pt + pb - eh) / w.sh + 1;
    w.ow = (W + w.pl + pr - ew) / w.sw + 1;
    Tensor x = Tensor::empty(DType::F32, {N, H, W, C});
    float* xp = x.mutable_data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) xp[i] = static_cast<float>(i + 1);
    Tensor c = im2col(x, w, -7.0);
    REQUIRE(c.shape() == Shape{N, w.oh, w.ow, w.kh * w.kw * C});
    const float* cp = c.data<float>();
    const int64_t K = w.kh * w.kw * C;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < w.oh; ++o)
        for (int64_t p = 0; p < w.ow; ++p)
          for (int64_t i = 0; i < w.kh; ++i)
            for (int64_t j = 0; j < w.kw; ++j)
              for (int64_t ch = 0; ch < C; ++ch) {
                const int64_t hh = o * w.sh + i * w.dh - w.pt, ww = p * w.sw + j * w.dw - w.pl;
                const float want = hh < 0 || hh >= H || ww < 0 || ww >= W ? -7.0f : xp[((n * H + hh) * W + ww) * C + ch];
                wrong += cp[((n * w.oh + o) * w.ow + p) * K + (i * w.kw + j) * C + ch] != want;
                ++checked;
              }
  }
  CHECK(checked > 100000);
  CHECK(wrong == 0);
}

TEST_CASE("im2col of quantized pixels is quantize of im2col when the padding is 0", "[conv][quant]") {
  Tensor x = Tensor::empty(DType::F32, {3, 5, 6, 16});
  for (int64_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] = static_cast<float>((i * 37) % 101) / 25.0f - 2.0f;
  for (int64_t C : {int64_t{16}, int64_t{1}}) {
    Tensor xc = C == 16 ? x : reshape(x, {3, 5, 96, 1});
    Window2d w{3, 3, 1, 2, 1, 1, 1, 1, 5, C == 16 ? 3 : 48};
    Tensor a = im2col(quantize_i8(xc, 0.03), w, 0.0), b = quantize_i8(im2col(xc, w, 0.0), 0.03);
    REQUIRE(a.dtype() == DType::I8);
    REQUIRE(a.shape() == b.shape());
    CHECK(std::memcmp(a.data<int8_t>(), b.data<int8_t>(), static_cast<size_t>(a.numel())) == 0);
  }
  CHECK_THROWS_WITH(im2col(quantize_i8(x, 0.03), Window2d{2, 2, 2, 2, 1, 1, 0, 0, 2, 3}, -1.0),
                    "internal: im2col of i8 pads with 0 only");
}
