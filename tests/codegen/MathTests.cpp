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

struct Sweep {
  int64_t checked = 0, vsEager = 0, vsLoop = 0, wrong = 0;
  double worst = 0;
  std::string first, worstAt;
};

// Runs a compiled fused loop of `op` over blocks of f32 bit patterns (a sample of every
// 2^20-value block, each block also holding `edges` with both signs; every block with
// TDL_MATH_SWEEP=full) and compares it bit for bit with the eager scalar function and the
// eager kernel's vectorized loop, and the scalar function with the exact value (`exact`, in
// double). `extraBlock(blk)` says which further blocks to check in full.
template <class Scalar, class Loop, class Exact, class Extra>
Sweep sweep(const std::string& op, Scalar scalar, Loop loopFn, Exact exact, const std::vector<uint32_t>& edges,
            Extra extraBlock) {
  auto module = ir::parse_module(unaryLoop(op));
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
  Sweep s;
  auto note = [&](const std::string& what) {
    if (s.first.empty()) s.first = what;
  };
  for (int64_t blk = 0; blk < 4096; ++blk) {
    if (!full && blk % 61 != 0 && !extraBlock(blk)) continue;
    for (int64_t i = 0; i < kBlock; ++i) {
      uint32_t u = static_cast<uint32_t>((blk << 20) + i);
      std::memcpy(&x[i], &u, sizeof u);
    }
    for (size_t e = 0; e < edges.size(); ++e)
      for (uint32_t sign : {0u, 0x80000000u}) {
        uint32_t u = edges[e] | sign;
        std::memcpy(&x[2 * e + (sign ? 1 : 0)], &u, sizeof u);
      }
    std::vector<rt::Tensor> out;
    codegen::ExecError err;
    REQUIRE(cf->run({in}, out, err));
    const float* y = out[0].data<float>();
    loopFn(x, loop.data(), kBlock);  // the eager kernel's vectorized loop
    auto same = [](float p, float q) { return std::isnan(p) ? std::isnan(q) : bitsOf(p) == bitsOf(q); };
    auto at = [&](int64_t i) { return op + "(bits " + std::to_string(bitsOf(x[i])) + "): "; };
    for (int64_t i = 0; i < kBlock; ++i) {
      const float eager = scalar(x[i]);
      if (!same(eager, y[i]) && s.vsEager++ == 0)
        note(at(i) + "compiled " + std::to_string(bitsOf(y[i])) + ", eager " + std::to_string(bitsOf(eager)));
      if (!same(eager, loop[i]) && s.vsLoop++ == 0)
        note(at(i) + "eager loop " + std::to_string(bitsOf(loop[i])) + ", eager " + std::to_string(bitsOf(eager)));
      const double t = exact(static_cast<double>(x[i]));
      if (std::isnan(t) || std::isnan(eager)) {
        if (std::isnan(t) != std::isnan(eager) && s.wrong++ == 0) note(at(i) + "NaN mismatch");
        continue;
      }
      if (std::signbit(eager) != std::signbit(t) && s.wrong++ == 0) note(at(i) + "the wrong sign");
      if (std::isinf(static_cast<float>(t)) || std::isinf(eager)) {
        if (static_cast<float>(t) != eager && s.wrong++ == 0) note(at(i) + "overflow mismatch");
        continue;
      }
      const double error = ulpError(eager, t);
      if (error > s.worst) {
        s.worst = error;
        s.worstAt = std::to_string(bitsOf(x[i]));
      }
    }
    s.checked += kBlock;
  }
  return s;
}

// The engines agree bit for bit, and the eager function is within `bound` ulp everywhere.
void checkSweep(const Sweep& s, double bound) {
  INFO(s.first);
  INFO("checked " << s.checked << " values; worst " << s.worst << " ulp at bits " << s.worstAt);
  CHECK(s.vsEager == 0);
  CHECK(s.vsLoop == 0);
  CHECK(s.wrong == 0);
  CHECK(s.worst < bound);
}

}  // namespace

TEST_CASE("f32 tanh: compiled loops and the eager kernels agree bit for bit, within 1.5 ulp of the exact value") {
  // Block b holds the patterns b * 2^20 + i: every sign and exponent, and the bounds of the
  // method's branches (2^-12, 0.6, 9.1), 0, subnormals, inf and NaN fall in some block.
  Sweep s = sweep(
      "tanh", [](float v) { return rt::tanh_f32(v); }, rt::tanh_f32_loop, [](double v) { return std::tanh(v); },
      {0x00000000u, 0x00000001u, 0x39800000u, 0x397fffffu, 0x3f19999au, 0x3f199999u, 0x3f19999bu, 0x4111999au,
       0x41119999u, 0x4111999bu, 0x7f7fffffu, 0x7f800000u, 0x7fc00000u, 0x7f800001u, 0x3f000000u, 0x3f800000u},
      [](int64_t) { return false; });
  checkSweep(s, 1.5);
}

// With AVX-512 the vectorized compiled loops scale by 2^n with vscalefps (one rounding),
// elsewhere in two products: the same bits, subnormal results included, which every block of
// |x| in [64, 128) (results subnormal, or overflowing) checks in full.
TEST_CASE("f32 exp: compiled loops and the eager kernels agree bit for bit, within 1 ulp of the exact value") {
  Sweep s = sweep(
      "exp", [](float v) { return rt::exp_f32_host(v); }, rt::exp_f32_loop, [](double v) { return std::exp(v); },
      {0x00000000u, 0x00000001u, 0x42b20000u, 0x42b1ffffu, 0x42b20001u, 0x42d00000u, 0x42cfffffu, 0x42d00001u,
       0x42b17218u, 0x42b17217u, 0x7f7fffffu, 0x7f800000u, 0x7fc00000u, 0x7f800001u, 0x3f000000u, 0x3f800000u},
      [](int64_t blk) { return (blk & 2047) >> 3 == (0x42800000 >> 23); });
  checkSweep(s, 1.0);
}
