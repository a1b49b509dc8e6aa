// int8 quantization kernels (runtime/Quant.h): rounding and clamping, per-channel weight
// scales, and qgemm against the same products computed in plain integers, over sizes that
// exercise every edge of the blocked (AVX2) kernel.
#include <cmath>
#include <cstring>
#include <random>

#include "Helpers.h"
#include "runtime/Quant.h"

using namespace tdl::rt;
using namespace tdl::rt::test;

TEST_CASE("quantize rounds half to even and clamps to +-127", "[quant]") {
  Tensor q = quantize_i8(f32({0.5f, 1.5f, -0.5f, -2.5f, 1000.0f, -1000.0f, 0.26f, NAN}, {8}), 1.0);
  CHECK(q.dtype() == DType::I8);
  const int8_t* p = q.data<int8_t>();
  CHECK(std::vector<int>(p, p + 8) == std::vector<int>{0, 2, 0, -2, 127, -127, 0, 0});
  Tensor d = dequantize_i8(quantize_i8(f32({0.3f, -0.7f}, {2}), 0.1), Tensor::scalar(0.1f));
  CHECK(d.data<float>()[0] == 3 * 0.1f);
  CHECK(d.data<float>()[1] == -7 * 0.1f);
  CHECK_THROWS_WITH(quantize_i8(f32({1.0f}, {1}), 0.0), "quantize: the scale must be a positive finite number, got 0");
  CHECK_THROWS(dequantize_i8(f32({1.0f}, {1}), Tensor::scalar(1.0f)));
}

TEST_CASE("weights get one scale per output channel", "[quant]") {
  // rows: max 2.54 -> scale 0.02; all zero -> scale 1
  auto [q, s] = quantize_rows_i8(f32({2.54f, -1.27f, 0.0f, 0.0f}, {2, 2}));
  CHECK(s.data<float>()[0] == 2.54f / 127.0f);
  CHECK(s.data<float>()[1] == 1.0f);
  CHECK(static_cast<int>(q.data<int8_t>()[0]) == 127);
  CHECK(static_cast<int>(q.data<int8_t>()[1]) == -64);  // -1.27 / 0.02 = -63.5 -> -64 (half to even)
  CHECK(static_cast<int>(q.data<int8_t>()[2]) == 0);
  // dequantize along axis 0 (rows) and along the last axis
  Tensor d0 = dequantize_i8(q, s, 0), d1 = dequantize_i8(q, s, 1);
  CHECK(d0.data<float>()[1] == -64 * s.data<float>()[0]);
  CHECK(d1.data<float>()[1] == -64 * s.data<float>()[1]);
}

TEST_CASE("qgemm is the integer product of the quantized operands, scaled", "[quant]") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (auto [M, K, N] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {1, 64, 10}, {2, 16, 4}, {3, 17, 5},
                                                            {7, 33, 9}, {64, 64, 64}, {65, 100, 13}, {300, 300, 70},
                                                            {4096, 9, 16}, {1024, 144, 32}, {21, 128, 40}}) {
    Tensor a = Tensor::empty(DType::F32, {M, K}), w = Tensor::empty(DType::F32, {N, K}), c = Tensor::empty(DType::F32, {M, N});
    for (int64_t i = 0; i < M * K; ++i) a.mutable_data<float>()[i] = u(rng);
    for (int64_t i = 0; i < K * N; ++i) w.mutable_data<float>()[i] = u(rng);
    for (int64_t i = 0; i < M * N; ++i) c.mutable_data<float>()[i] = u(rng);
    auto [wq, ws] = quantize_rows_i8(w);
    const double xs = 2.0 / 127.0;
    Tensor qa = quantize_i8(a, xs);
    Tensor r = qgemm(a, wq, ws, xs, c, 0.5, 2.0);
    Tensor r0 = qgemm(a, wq, ws, xs, std::nullopt, 1.0, 0.0);
    REQUIRE(r.shape() == Shape{M, N});
    bool same = true, near = true;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        int32_t acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += int32_t{qa.data<int8_t>()[m * K + k]} * int32_t{wq.data<int8_t>()[n * K + k]};
        float scale = static_cast<float>(xs) * ws.data<float>()[n];
        float want0 = static_cast<float>(acc) * (1.0f * scale);
        float want = static_cast<float>(acc) * (0.5f * scale) + 2.0f * c.data<float>()[m * N + n];
        same = same && r0.data<float>()[m * N + n] == want0 && r.data<float>()[m * N + n] == want;
        // and close to the float product
        double f = 0;
        for (int64_t k = 0; k < K; ++k) f += double(a.data<float>()[m * K + k]) * double(w.data<float>()[n * K + k]);
        near = near && std::fabs(f - r0.data<float>()[m * N + n]) <= 0.06 * std::sqrt(double(K)) + 1e-6;
      }
    INFO(M << "x" << K << "x" << N);
    CHECK(same);
    CHECK(near);
  }
}

TEST_CASE("qgemm of quantized activations, and with a bias and relu, gives the same bits", "[quant]") {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (auto [M, K, N] : std::vector<std::array<int64_t, 3>>{{1, 9, 16}, {5, 7, 3}, {64, 128, 10}, {4096, 9, 16},
                                                            {1024, 144, 32}, {33, 300, 70}}) {
    Tensor a = Tensor::empty(DType::F32, {M, K}), w = Tensor::empty(DType::F32, {N, K}), b = Tensor::empty(DType::F32, {N});
    for (int64_t i = 0; i < M * K; ++i) a.mutable_data<float>()[i] = u(rng);
    for (int64_t i = 0; i < K * N; ++i) w.mutable_data<float>()[i] = u(rng);
    for (int64_t i = 0; i < N; ++i) b.mutable_data<float>()[i] = u(rng);
    b.mutable_data<float>()[0] = NAN;  // a NaN bias stays NaN through relu
    auto [wq, ws] = quantize_rows_i8(w);
    const double xs = 2.0 / 127.0;
    Tensor plain = qgemm(a, wq, ws, xs, std::nullopt, 1.0, 0.0);
    // activations quantized beforehand (the windows of int8 pixels)
    Tensor pre = qgemm(quantize_i8(a, xs), wq, ws, xs, std::nullopt, 1.0, 0.0);
    Tensor withBias = qgemm(a, wq, ws, xs, std::nullopt, 1.0, 0.0, b, false);
    Tensor withRelu = qgemm(quantize_i8(a, xs), wq, ws, xs, std::nullopt, 1.0, 0.0, b, true);
    bool samePre = true, sameBias = true, sameRelu = true;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t i = m * N + n;
        const float p = plain.data<float>()[i], sum = p + b.data<float>()[n];
        const float relu = (sum > 0 || sum != sum) ? sum : 0.0f;
        auto same = [](float x, float y) { return std::memcmp(&x, &y, sizeof x) == 0; };
        samePre = samePre && same(pre.data<float>()[i], p);
        sameBias = sameBias && same(withBias.data<float>()[i], sum);
        sameRelu = sameRelu && same(withRelu.data<float>()[i], relu);
      }
    INFO(M << "x" << K << "x" << N);
    CHECK(samePre);
    CHECK(sameBias);
    CHECK(sameRelu);
  }
  Tensor a = Tensor::zeros(DType::F32, {2, 3});
  auto [wq, ws] = quantize_rows_i8(Tensor::zeros(DType::F32, {4, 3}));
  CHECK_THROWS_WITH(qgemm(a, wq, ws, 1.0, std::nullopt, 1.0, 0.0, Tensor::zeros(DType::F32, {3})),
                    "internal: qgemm's bias must be f32[4], got f32[3]");
}
