// Float math TDL computes itself (runtime/Libm.h): compiled code (the inline, vectorized form
// of codegen/ScalarEmit.cpp) and the eager kernels give the same bits, close to the exact
// value. A sample of every 2^20-value block of f32 bit patterns by default;
// TDL_MATH_SWEEP=full checks all 2^32.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "codegen/Codegen.h"
#include "ir/Parser.h"
#include "runtime/Libm.h"

using namespace tdl;

namespace {

constexpr int64_t kBlock = int64_t{1} << 20;

// A fused loop of one f32 op over 2^20 elements, as IR text.
std::string unaryLoop(const std::string& op) {
  return "func @f(%0: f32[1048576]) -> (f32[1048576]) {\n"
         "  %1 = fused(%0) : f32[1048576] {\n"
         "  ^body(%2: f32[]):\n"
         "    %3 = " + op + "(%2) : f32[]\n"
         "    yield(%3)\n"
         "  }\n"
         "  return(%1)\n"
         "}\n";
}

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// The distance of y from the exact value t in units of the last place of t's float.
double ulpError(float y, double t) {
  const float tf = static_cast<float>(t);
  const double ulp =
      std::fabs(static_cast<double>(std::nextafter(std::fabs(tf), INFINITY)) - std::fabs(static_cast<double>(tf)));
  return std::fabs(static_cast<double>(y) - t) / ulp;
}

}  // namespace

TEST_CASE("f32 tanh: compiled loops and the eager kernels agree bit for bit, within 1.5 ulp of the exact value") {
  auto module = ir::parse_module(unaryLoop("tanh"));
  ir::Function& fn = *module->functions.front();
  auto cf = codegen::compile(std::move(module), fn);
  if (cf->optimized.valid()) {  // the vectorized version, as a hot fn runs
    cf->optimized.wait();
    codegen::tierUp(cf);
  }
  const bool full = std::getenv("TDL_MATH_SWEEP") && std::string(std::getenv("TDL_MATH_SWEEP")) == "full";
  rt::Tensor in = rt::Tensor::empty(rt::DType::F32, {kBlock});
  float* x = in.mutable_data<float>();
  std::vector<float> loop(kBlock);
  int64_t checked = 0, vsEager = 0, vsLoop = 0, wrong = 0;
  double worst = 0;
  std::string first, worstAt;
  // Block b holds the patterns b * 2^20 + i: every sign and exponent, and the bounds of the
  // method's branches (2^-12, 0.6, 9.1), 0, subnormals, inf and NaN fall in some block.
  const int step = full ? 1 : 61;
  for (int64_t blk = 0; blk < 4096; blk += step) {
    for (int64_t i = 0; i < kBlock; ++i) {
      uint32_t u = static_cast<uint32_t>((blk << 20) + i);
      std::memcpy(&x[i], &u, sizeof u);
    }
    // The branch bounds and their neighbours and special values, in every block (both signs).
    const uint32_t edges[] = {0x00000000u, 0x00000001u, 0x39800000u, 0x397fffffu, 0x3f19999au, 0x3f199999u,
                              0x3f19999bu, 0x4111999au, 0x41119999u, 0x4111999bu, 0x7f7fffffu, 0x7f800000u,
                              0x7fc00000u, 0x7f800001u, 0x3f000000u, 0x3f800000u};
    for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); ++e)
      for (uint32_t sign : {0u, 0x80000000u}) {
        uint32_t u = edges[e] | sign;
        std::memcpy(&x[2 * e + (sign ? 1 : 0)], &u, sizeof u);
      }
    std::vector<rt::Tensor> out;
    codegen::ExecError err;
    REQUIRE(cf->run({in}, out, err));
    const float* y = out[0].data<float>();
    rt::tanh_f32_loop(x, loop.data(), kBlock);  // the eager kernel's vectorized loop
    auto same = [](float p, float q) { return std::isnan(p) ? std::isnan(q) : bitsOf(p) == bitsOf(q); };
    for (int64_t i = 0; i < kBlock; ++i) {
      const float eager = rt::tanh_f32(x[i]);
      if (!same(eager, y[i]) && vsEager++ == 0)
        first = "tanh(bits " + std::to_string(bitsOf(x[i])) + "): compiled " + std::to_string(bitsOf(y[i])) +
                ", eager " + std::to_string(bitsOf(eager));
      if (!same(eager, loop[i]) && vsLoop++ == 0 && first.empty())
        first = "tanh(bits " + std::to_string(bitsOf(x[i])) + "): eager loop " + std::to_string(bitsOf(loop[i])) +
                ", eager " + std::to_string(bitsOf(eager));
      if (std::isnan(x[i]) || std::isnan(eager)) {
        if (std::isnan(x[i]) != std::isnan(eager) && wrong++ == 0 && first.empty())
          first = "tanh(bits " + std::to_string(bitsOf(x[i])) + ") NaN mismatch";
        continue;
      }
      const double error = ulpError(eager, std::tanh(static_cast<double>(x[i])));
      if (error > worst) {
        worst = error;
        worstAt = std::to_string(bitsOf(x[i]));
      }
      // The sign is x's, -0 included.
      if (std::signbit(eager) != std::signbit(x[i]) && wrong++ == 0 && first.empty())
        first = "tanh(bits " + std::to_string(bitsOf(x[i])) + ") has the wrong sign";
    }
    checked += kBlock;
  }
  INFO(first);
  INFO("checked " << checked << " values; worst " << worst << " ulp at bits " << worstAt);
  CHECK(vsEager == 0);
  CHECK(vsLoop == 0);
  CHECK(wrong == 0);
  CHECK(worst < 1.5);
}

namespace {

float pow2(int k) {
  uint32_t u = static_cast<uint32_t>(k + 127) << 23;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// codegen's f32 exp (emitExpF32) step by step, 2^n in two exact-then-rounding products; the
// polynomial's llvm.fmuladd steps are FMAs where the host has them (x86-64 with FMA).
float referenceExp(float x, bool fused) {
  const bool tiny = x < -104.0f;
  float cx = x > 89.0f ? 89.0f : x;
  cx = tiny ? 0.0f : cx;
  const float fx = std::floor(cx * 1.44269504088896341f + 0.5f);
  const float r = (cx - fx * 0.693359375f) - fx * -2.12194440e-4f;
  const float z = r * r;
  float y = 1.9875691500e-4f;
  for (float c : {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f})
    y = fused ? std::fma(y, r, c) : y * r + c;
  y = (y * z + r) + 1.0f;
  if (std::isnan(y)) return y;
  const int n = static_cast<int>(fx), n1 = n >> 1, n2 = n - n1;
  return tiny ? 0.0f : (y * pow2(n1)) * pow2(n2);
}

}  // namespace

// With AVX-512 the vectorized loops scale by 2^n with vscalefps (one rounding); elsewhere in
// two products. Both must give the bits of the steps as written, subnormal results included.
TEST_CASE("f32 exp: compiled loops (vscalefps where vectorized) give the bits of the two-step form") {
  auto module = ir::parse_module(unaryLoop("exp"));
  ir::Function& fn = *module->functions.front();
  auto cf = codegen::compile(std::move(module), fn);
  if (cf->optimized.valid()) {
    cf->optimized.wait();
    codegen::tierUp(cf);
  }
  const bool fused = __builtin_cpu_supports("fma");
  const bool full = std::getenv("TDL_MATH_SWEEP") && std::string(std::getenv("TDL_MATH_SWEEP")) == "full";
  rt::Tensor in = rt::Tensor::empty(rt::DType::F32, {kBlock});
  float* x = in.mutable_data<float>();
  int64_t checked = 0, diffs = 0;
  std::string first;
  // Every block of the range where results are subnormal or overflow (|x| in [64, 128)),
  // a sample of the rest.
  for (int64_t blk = 0; blk < 4096; ++blk) {
    const int64_t exponentBlocks = blk & 2047;  // the sign bit is block bit 11
    const bool edgeRange = exponentBlocks >> 3 == (0x42800000 >> 23);
    if (!full && !edgeRange && blk % 61 != 0) continue;
    for (int64_t i = 0; i < kBlock; ++i) {
      uint32_t u = static_cast<uint32_t>((blk << 20) + i);
      std::memcpy(&x[i], &u, sizeof u);
    }
    std::vector<rt::Tensor> out;
    codegen::ExecError err;
    REQUIRE(cf->run({in}, out, err));
    const float* y = out[0].data<float>();
    for (int64_t i = 0; i < kBlock; ++i) {
      const float want = referenceExp(x[i], fused);
      const bool same = std::isnan(want) ? std::isnan(y[i]) : bitsOf(y[i]) == bitsOf(want);
      if (!same && diffs++ == 0)
        first = "exp(bits " + std::to_string(bitsOf(x[i])) + "): compiled " + std::to_string(bitsOf(y[i])) +
                ", steps " + std::to_string(bitsOf(want));
    }
    checked += kBlock;
  }
  INFO(first);
  INFO("checked " << checked << " values");
  CHECK(diffs == 0);
}
