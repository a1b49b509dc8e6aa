// im2col (runtime/Conv.h) against its definition, element by element, over random windows:
// sizes, strides, dilations, padding on each side, and channel counts that take both the
// compile-time runs and the general copy.
#include <array>
#include <cmath>
#include <cstring>
#include <random>

#include "Helpers.h"
#include "runtime/Conv.h"
#include "runtime/Matmul.h"
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

TEST_CASE("conv_nhwc, its adjoint and its filter gradient are im2col @ wm, col2im(g @ wm^T) and im2col^T @ g", "[conv]") {
  // Large enough for the direct kernels (where the CPU has them); windows with strides,
  // dilations, padding on either side and channel counts that are not multiples of 16.
  struct Case {
    int64_t N, H, W, C, O;
    Window2d w;
  };
  auto out = [](int64_t size, int64_t k, int64_t s, int64_t d, int64_t before, int64_t after) {
    return (size + before + after - ((k - 1) * d + 1)) / s + 1;
  };
  std::vector<Case> cases;
  for (auto [k, s, d, p, C, O] : std::vector<std::array<int64_t, 6>>{
           {3, 1, 1, 1, 32, 64}, {3, 1, 1, 0, 16, 40}, {5, 1, 2, 3, 8, 24}, {3, 2, 1, 1, 24, 33}, {1, 1, 1, 0, 64, 80},
           {3, 1, 1, 2, 9, 100}}) {
    Window2d w{k, k, s, s, d, d, p, p, 0, 0};
    w.oh = out(30, k, s, d, p, p);
    w.ow = out(34, k, s, d, p, 1);
    cases.push_back({6, 30, 34, C, O, w});
  }
  // many channels: the filter gradient's partial sums are capped by memory (fewer chunks)
  cases.push_back({1, 8, 8, 512, 512, Window2d{3, 3, 1, 1, 1, 1, 1, 1, 8, 8}});
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (const Case& t : cases) {
    Tensor x = Tensor::empty(DType::F32, {t.N, t.H, t.W, t.C});
    Tensor wm = Tensor::empty(DType::F32, {t.w.kh * t.w.kw * t.C, t.O});
    Tensor g = Tensor::empty(DType::F32, {t.N, t.w.oh, t.w.ow, t.O});
    for (Tensor* z : {&x, &wm, &g})
      for (int64_t i = 0; i < z->numel(); ++i) z->mutable_data<float>()[i] = u(rng);
    const int64_t M = t.N * t.w.oh * t.w.ow, K = wm.dim(0);
    Tensor want = reshape(matmul(reshape(im2col(x, t.w, 0.0), {M, K}), wm), {t.N, t.w.oh, t.w.ow, t.O});
    Tensor got = conv_nhwc(x, wm, t.w);
    Tensor wantA = col2im(reshape(gemm(reshape(g, {M, t.O}), wm, std::nullopt, false, true, 1.0, 0.0), {t.N, t.w.oh, t.w.ow, K}),
                          t.H, t.W, t.w);
    Tensor gotA = conv_nhwc_adjoint(g, wm, t.w, t.H, t.W);
    Tensor wantF = gemm(reshape(im2col(x, t.w, 0.0), {M, K}), reshape(g, {M, t.O}), std::nullopt, true, false, 1.0, 0.0);
    Tensor gotF = conv_nhwc_filter_grad(x, g, t.w);
    REQUIRE(gotF.shape() == wantF.shape());
    double errF = 0, scaleF = 0;
    for (int64_t i = 0; i < wantF.numel(); ++i) {
      errF = std::max(errF, double(std::fabs(gotF.data<float>()[i] - wantF.data<float>()[i])));
      scaleF = std::max(scaleF, double(std::fabs(wantF.data<float>()[i])));
    }
    REQUIRE(got.shape() == want.shape());
    REQUIRE(gotA.shape() == wantA.shape());
    // the largest difference, against the largest magnitude (sums of up to 4608 products)
    double err = 0, errA = 0, scale = 0, scaleA = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      err = std::max(err, double(std::fabs(got.data<float>()[i] - want.data<float>()[i])));
      scale = std::max(scale, double(std::fabs(want.data<float>()[i])));
    }
    for (int64_t i = 0; i < wantA.numel(); ++i) {
      errA = std::max(errA, double(std::fabs(gotA.data<float>()[i] - wantA.data<float>()[i])));
      scaleA = std::max(scaleA, double(std::fabs(wantA.data<float>()[i])));
    }
    INFO(t.w.kh << "x" << t.w.kw << " stride " << t.w.sh << " dilation " << t.w.dh << " pad " << t.w.pt << " C " << t.C << " O " << t.O);
    CHECK(err < 1e-5 * scale + 1e-5);
    CHECK(errA < 1e-5 * scaleA + 1e-5);
    CHECK(errF < 1e-5 * scaleF + 1e-5);
  }
}

TEST_CASE("conv_nhwc with a bias and relu gives the bits of the separate ops", "[conv]") {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t O : {int64_t{64}, int64_t{40}, int64_t{7}}) {
    Tensor x = Tensor::empty(DType::F32, {4, 32, 32, 16}), wm = Tensor::empty(DType::F32, {144, O}), b = Tensor::empty(DType::F32, {O});
    for (Tensor* z : {&x, &wm, &b})
      for (int64_t i = 0; i < z->numel(); ++i) z->mutable_data<float>()[i] = u(rng);
    b.mutable_data<float>()[1] = NAN;  // a NaN bias stays NaN through relu
    Window2d w{3, 3, 1, 1, 1, 1, 1, 1, 32, 32};
    Tensor plain = conv_nhwc(x, wm, w), fused = conv_nhwc(x, wm, w, b, true), biased = conv_nhwc(x, wm, w, b, false);
    int64_t same = 0;
    for (int64_t i = 0; i < plain.numel(); ++i) {
      const float s = plain.data<float>()[i] + b.data<float>()[i % O], r = (s > 0 || s != s) ? s : 0.0f;
      const float f = fused.data<float>()[i], g = biased.data<float>()[i];
      same += std::memcmp(&f, &r, sizeof f) == 0 && std::memcmp(&g, &s, sizeof g) == 0;
    }
    INFO("O " << O);
    CHECK(same == plain.numel());
  }
}
