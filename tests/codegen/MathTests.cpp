// Float math TDL computes itself (runtime/Libm.h): compiled code (the inline, vectorized form
// of codegen/ScalarEmit.cpp), the eager kernel and, where it is fdlibm's, the C library give
// the same bits. A sample of every 2^20-value block of f32 bit patterns by default;
// TDL_MATH_SWEEP=full checks all 2^32.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <gnu/libc-version.h>

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

const char* kTanhFn = R"(
func @f(%0: f32[1048576]) -> (f32[1048576]) {
  %1 = fused(%0) : f32[1048576] {
  ^body(%2: f32[]):
    %3 = tanh(%2) : f32[]
    yield(%3)
  }
  return(%1)
}
)";

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// glibc before 2.41 computes tanhf by fdlibm's method (2.41 has CORE-MATH's, correctly rounded).
bool libmIsFdlibm() {
  int major = 0, minor = 0;
  return std::sscanf(gnu_get_libc_version(), "%d.%d", &major, &minor) == 2 && (major < 2 || (major == 2 && minor < 41));
}

}  // namespace

TEST_CASE("f32 tanh: compiled loops, the eager kernel and fdlibm's tanhf agree bit for bit") {
  auto module = ir::parse_module(kTanhFn);
  ir::Function& fn = *module->functions.front();
  auto cf = codegen::compile(std::move(module), fn);
  if (cf->optimized.valid()) {  // the vectorized version, as a hot fn runs
    cf->optimized.wait();
    codegen::tierUp(cf);
  }
  const bool full = std::getenv("TDL_MATH_SWEEP") && std::string(std::getenv("TDL_MATH_SWEEP")) == "full";
  const bool checkLibm = libmIsFdlibm();
  rt::Tensor in = rt::Tensor::empty(rt::DType::F32, {kBlock});
  float* x = in.mutable_data<float>();
  int64_t checked = 0, vsEager = 0, vsLibm = 0;
  std::string first;
  // Block b holds the patterns b * 2^20 + i: every sign, exponent and the boundaries of the
  // method's branches (2^-55, ln2/2, 1, 1.5 ln2, 22, inf, NaN) fall in some block.
  const int step = full ? 1 : 61;
  for (int64_t blk = 0; blk < 4096; blk += step) {
    for (int64_t i = 0; i < kBlock; ++i) {
      uint32_t u = static_cast<uint32_t>((blk << 20) + i);
      std::memcpy(&x[i], &u, sizeof u);
    }
    // The branch boundaries themselves, in every block (both signs).
    const uint32_t edges[] = {0x00000000u, 0x24000000u, 0x23ffffffu, 0x33000000u, 0x3eb17218u, 0x3eb17219u,
                              0x3f800000u, 0x3f7fffffu, 0x3f851592u, 0x3f851591u, 0x41b00000u, 0x41afffffu,
                              0x4195b844u, 0x7f800000u, 0x7fc00000u, 0x7f800001u, 0x00000001u, 0x3f000000u};
    for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); ++e)
      for (uint32_t sign : {0u, 0x80000000u}) {
        uint32_t u = edges[e] | sign;
        std::memcpy(&x[2 * e + (sign ? 1 : 0)], &u, sizeof u);
      }
    std::vector<rt::Tensor> out;
    codegen::ExecError err;
    REQUIRE(cf->run({in}, out, err));
    const float* y = out[0].data<float>();
    for (int64_t i = 0; i < kBlock; ++i) {
      const uint32_t mine = bitsOf(y[i]), eager = bitsOf(rt::tanh_f32(x[i]));
      if (mine != eager) {
        if (vsEager++ == 0) first = "tanh(bits " + std::to_string(bitsOf(x[i])) + "): compiled " + std::to_string(mine) +
                                    ", eager " + std::to_string(eager);
      }
      if (checkLibm && eager != bitsOf(std::tanh(x[i]))) {
        if (vsLibm++ == 0 && first.empty())
          first = "tanh(bits " + std::to_string(bitsOf(x[i])) + "): eager " + std::to_string(eager) + ", libm " +
                  std::to_string(bitsOf(std::tanh(x[i])));
      }
    }
    checked += kBlock;
  }
  INFO(first);
  INFO("checked " << checked << " values; libm compared: " << checkLibm);
  CHECK(vsEager == 0);
  CHECK(vsLibm == 0);
}
