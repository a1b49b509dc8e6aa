// The GPU backend without a GPU (issue 8): the CUDA driver loader against a fake driver
// table, the PTX of hand-written IR, and the kernels' own f32 math against libm.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "codegen/Ptx.h"
#include "ir/Eval.h"
#include "ir/Parser.h"
#include "ir/Pass.h"
#include "runtime/Elementwise.h"
#include "runtime/Reduce.h"
#include "runtime/cuda/CudaDriver.h"

using namespace tdl;
using namespace tdl::rt::cuda;

// ---------------------------------------------------------------- a fake driver

namespace {

// What the fake saw, and its "device": host memory handed out as CUdeviceptr.
struct FakeState {
  int devices = 1;
  CUresult initResult = CUDA_SUCCESS;
  bool initCalled = false;
  bool ctxCurrent = false;
  std::string loadedImage;
  std::string functionName;
  unsigned grid[3] = {0, 0, 0}, block[3] = {0, 0, 0}, shared = 0;
  std::vector<std::vector<unsigned char>> launchArgs;
  std::map<CUdeviceptr, std::vector<unsigned char>> mem;
  CUdeviceptr next = 0x1000;
  int frees = 0;
};
FakeState* fake = nullptr;

CUmodule fakeModule() { return reinterpret_cast<CUmodule>(0x10); }
CUfunction fakeFunction() { return reinterpret_cast<CUfunction>(0x20); }

CudaFunctions fakeTable() {
  CudaFunctions f;
  f.cuInit = [](unsigned) {
    fake->initCalled = true;
    return fake->initResult;
  };
  f.cuDeviceGetCount = [](int* n) {
    *n = fake->devices;
    return CUDA_SUCCESS;
  };
  f.cuDeviceGet = [](CUdevice* d, int i) {
    *d = i;
    return i < fake->devices ? CUDA_SUCCESS : 101;  // CUDA_ERROR_INVALID_DEVICE
  };
  f.cuDeviceGetName = [](char* s, int len, CUdevice) {
    std::strncpy(s, "Fake GPU", static_cast<size_t>(len));
    return CUDA_SUCCESS;
  };
  f.cuDevicePrimaryCtxRetain = [](CUcontext* c, CUdevice) {
    *c = reinterpret_cast<CUcontext>(0x30);
    return CUDA_SUCCESS;
  };
  f.cuCtxSetCurrent = [](CUcontext) {
    fake->ctxCurrent = true;
    return CUDA_SUCCESS;
  };
  f.cuModuleLoadData = [](CUmodule* m, const void* image) {
    fake->loadedImage = static_cast<const char*>(image);
    if (fake->loadedImage.find(".version") == std::string::npos) return 218;  // CUDA_ERROR_INVALID_PTX
    *m = fakeModule();
    return CUDA_SUCCESS;
  };
  f.cuModuleGetFunction = [](CUfunction* fn, CUmodule m, const char* name) {
    if (m != fakeModule()) return 400;  // CUDA_ERROR_INVALID_HANDLE
    fake->functionName = name;
    if (fake->loadedImage.find(std::string(".entry ") + name + "(") == std::string::npos) return 500;  // NOT_FOUND
    *fn = fakeFunction();
    return CUDA_SUCCESS;
  };
  f.cuMemAlloc = [](CUdeviceptr* p, size_t bytes) {
    *p = fake->next;
    fake->next += (bytes + 255) / 256 * 256 + 256;
    fake->mem[*p].assign(bytes, 0);
    return CUDA_SUCCESS;
  };
  f.cuMemFree = [](CUdeviceptr p) {
    fake->frees++;
    return fake->mem.erase(p) ? CUDA_SUCCESS : 1;
  };
  f.cuMemcpyHtoD = [](CUdeviceptr dst, const void* src, size_t bytes) {
    auto it = fake->mem.find(dst);
    if (it == fake->mem.end() || it->second.size() < bytes) return 1;  // CUDA_ERROR_INVALID_VALUE
    std::memcpy(it->second.data(), src, bytes);
    return CUDA_SUCCESS;
  };
  f.cuMemcpyDtoH = [](void* dst, CUdeviceptr src, size_t bytes) {
    auto it = fake->mem.find(src);
    if (it == fake->mem.end() || it->second.size() < bytes) return 1;
    std::memcpy(dst, it->second.data(), bytes);
    return CUDA_SUCCESS;
  };
  f.cuLaunchKernel = [](CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, CUstream, void** params, void** extra) {
    if (fn != fakeFunction() || extra) return 400;
    fake->grid[0] = gx, fake->grid[1] = gy, fake->grid[2] = gz;
    fake->block[0] = bx, fake->block[1] = by, fake->block[2] = bz;
    fake->shared = shared;
    // The fake knows its kernel's signature: (ptr, ptr, i64 n, f32 k).
    const size_t sizes[] = {8, 8, 8, 4};
    fake->launchArgs.clear();
    for (size_t i = 0; i < 4; ++i) {
      auto* p = static_cast<unsigned char*>(params[i]);
      fake->launchArgs.emplace_back(p, p + sizes[i]);
    }
    return CUDA_SUCCESS;
  };
  f.cuCtxSynchronize = [] { return CUDA_SUCCESS; };
  f.cuGetErrorName = [](CUresult r, const char** s) {
    *s = r == 218 ? "CUDA_ERROR_INVALID_PTX" : r == 100 ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_UNKNOWN";
    return CUDA_SUCCESS;
  };
  f.cuGetErrorString = [](CUresult r, const char** s) {
    *s = r == 218 ? "a PTX JIT compilation failed" : "unknown error";
    return CUDA_SUCCESS;
  };
  return f;
}

template <class T> T argAs(const std::vector<unsigned char>& bytes) {
  T v;
  REQUIRE(bytes.size() == sizeof(T));
  std::memcpy(&v, bytes.data(), sizeof(T));
  return v;
}

}  // namespace

TEST_CASE("the real loader reports why there is no driver", "[cuda]") {
  std::string why;
  CudaDriver d = CudaDriver::load(&why);
  if (d.available()) {
    // A machine with a driver: then the loader must have found every entry point.
    SUCCEED("libcuda.so.1 is installed here");
    return;
  }
  CHECK(why.rfind("no CUDA driver (", 0) == 0);
  CHECK(why.find("libcuda.so.1") != std::string::npos);
  CHECK(d.reason() == why);
  CHECK(d.deviceCount() == 0);
  CHECK_FALSE(d.open());
  CHECK(d.alloc(16) == 0);
  CHECK(d.loadModule(".version 7.8") == nullptr);
}

TEST_CASE("an incomplete table is not available", "[cuda]") {
  CudaFunctions f = fakeTable();
  f.cuLaunchKernel = nullptr;
  CudaDriver d = CudaDriver::fromTable(f);
  CHECK_FALSE(d.available());
  CHECK(d.reason().find("incomplete") != std::string::npos);
}

TEST_CASE("a driver without devices says so", "[cuda]") {
  FakeState st;
  fake = &st;
  SECTION("count 0") { st.devices = 0; }
  SECTION("cuInit fails with CUDA_ERROR_NO_DEVICE") { st.initResult = CUDA_ERROR_NO_DEVICE; }
  CudaDriver d = CudaDriver::fromTable(fakeTable());
  REQUIRE(d.available());
  CHECK(d.deviceCount() == 0);
  CHECK(d.error() == "no CUDA device");
  CHECK_FALSE(d.open());
  CHECK(d.error() == "no CUDA device");
  fake = nullptr;
}

TEST_CASE("a fake device: module, launch arguments, memory round trip", "[cuda]") {
  FakeState st;
  fake = &st;
  CudaDriver d = CudaDriver::fromTable(fakeTable());
  REQUIRE(d.available());
  REQUIRE(d.deviceCount() == 1);
  CHECK(st.initCalled);
  // Nothing works before a device is open.
  CHECK(d.alloc(8) == 0);
  CHECK(d.error().find("no device is open") != std::string::npos);
  REQUIRE(d.open(0));
  CHECK(st.ctxCurrent);
  CHECK(d.deviceName() == "Fake GPU");
  CHECK_FALSE(d.open(3) == true);

  // Memory: a round trip through the fake's host-memory "device".
  std::vector<float> host = {1.5f, -2.0f, 3.25f, 0.0f, 1e-3f};
  size_t bytes = host.size() * sizeof(float);
  CUdeviceptr in = d.alloc(bytes);
  CUdeviceptr out = d.alloc(bytes);
  REQUIRE(in != 0);
  REQUIRE(out != 0);
  CHECK(in != out);
  REQUIRE(d.copyToDevice(in, host.data(), bytes));
  std::vector<float> back(host.size(), 0.0f);
  REQUIRE(d.copyToHost(back.data(), in, bytes));
  CHECK(back == host);
  CHECK_FALSE(d.copyToHost(back.data(), 0xdead, bytes));  // not an allocation
  CHECK(d.error().rfind("cuMemcpyDtoH: CUDA_ERROR_UNKNOWN", 0) == 0);

  // A module: bad PTX is an error message with the driver's names for it.
  CHECK(d.loadModule("garbage") == nullptr);
  CHECK(d.error() == "cuModuleLoadData: CUDA_ERROR_INVALID_PTX (a PTX JIT compilation failed)");
  std::string ptx = ".version 7.8\n.target sm_90\n.address_size 64\n.visible .entry scale(\n) {}\n";
  CUmodule m = d.loadModule(ptx);
  REQUIRE(m != nullptr);
  CHECK(st.loadedImage == ptx);
  CHECK(d.function(m, "nope") == nullptr);
  CHECK(d.error().find("cuModuleGetFunction(nope)") == 0);
  CUfunction fn = d.function(m, "scale");
  REQUIRE(fn != nullptr);
  CHECK(st.functionName == "scale");

  // Launch: every argument reaches the driver as a pointer to its bytes.
  std::vector<KernelArg> args = {KernelArg::of(out), KernelArg::of(in), KernelArg::of(int64_t{5}), KernelArg::of(2.5f)};
  REQUIRE(d.launch(fn, Dim3{4, 1, 1}, Dim3{256, 1, 1}, args, 128));
  CHECK(st.grid[0] == 4);
  CHECK(st.grid[1] == 1);
  CHECK(st.block[0] == 256);
  CHECK(st.shared == 128);
  REQUIRE(st.launchArgs.size() == 4);
  CHECK(argAs<CUdeviceptr>(st.launchArgs[0]) == out);
  CHECK(argAs<CUdeviceptr>(st.launchArgs[1]) == in);
  CHECK(argAs<int64_t>(st.launchArgs[2]) == 5);
  CHECK(argAs<float>(st.launchArgs[3]) == 2.5f);
  CHECK(d.synchronize());

  CHECK(d.free(in));
  CHECK(d.free(out));
  CHECK(st.mem.empty());
  CHECK(st.frees == 2);
  fake = nullptr;
}

TEST_CASE("cuBLAS is optional", "[cuda]") {
  std::string why;
  Cublas c = Cublas::load(&why);
  if (!c.available()) CHECK(why.rfind("no cuBLAS (", 0) == 0);
  else CHECK(c.fns().cublasSgemm != nullptr);
}

// ---------------------------------------------------------------- PTX

namespace {

codegen::PtxModule ptxOf(const std::string& ir, const std::string& arch = "sm_90") {
  auto m = ir::parse_module(ir);
  REQUIRE(m->functions.size() == 1);
  return codegen::compilePtx(*m->functions[0], arch);
}

}  // namespace

TEST_CASE("a fused op and reductions become kernels; the rest stays on the host", "[ptx]") {
  const char* text = R"(
func @f<B>(%0: f32[B, 4], %1: f32[4], %2: f32[4, 3]) -> (f32[B, 4], f32[B], f32[4], f32[B, 3]) {
  %3 = constant() {value = dense<[2.0] : f32[]>} : f32[]
  %4 = fused(%0, %1, %3) : f32[B, 4] {
  ^body(%5: f32[], %6: f32[], %7: f32[]):
    %8 = add(%5, %6) : f32[]
    %9 = exp(%8) : f32[]
    %10 = mul(%9, %7) : f32[]
    yield(%10)
  }
  %11 = reduce(%4) {axes = [1], keepdims = false, kind = "max"} : f32[B]
  %12 = reduce(%4) {axes = [0], keepdims = false, kind = "sum"} : f32[4]
  %13 = matmul(%4, %2) : f32[B, 3]
  return(%4, %11, %12, %13)
}
)";
  codegen::PtxModule p = ptxOf(text);
  REQUIRE(p.kernels.size() == 3);
  CHECK(p.kernels[0].name == "f_k0_fused");
  CHECK(p.kernels[0].kind == codegen::PtxKernel::ElementwiseRows);
  CHECK(p.kernels[1].kind == codegen::PtxKernel::Reduce);
  CHECK(p.kernels[2].kind == codegen::PtxKernel::ReduceStrided);
  CHECK(p.hostOps == std::vector<std::string>{"matmul"});
  const std::string& s = p.ptx;
  CHECK(s.rfind("// tdl: graph fn f for sm_90 (3 kernels)\n", 0) == 0);
  CHECK(s.find("// host: matmul\n") != std::string::npos);
  CHECK(s.find(".target sm_90") != std::string::npos);
  CHECK(s.find(".visible .entry f_k0_fused(") != std::string::npos);
  CHECK(s.find(".visible .entry f_k1_reduce(") != std::string::npos);
  CHECK(s.find(".reqntid 256, 1, 1") != std::string::npos);
  CHECK(s.find("shfl.sync.bfly.b32") != std::string::npos);
  CHECK(s.find("bar.sync") != std::string::npos);
  CHECK(s.find("ld.global") != std::string::npos);
  // Our own exp: no calls, nothing for ptxas to resolve.
  CHECK(s.find("call") == std::string::npos);
  CHECK(s.find(".extern") == std::string::npos);
}

TEST_CASE("a graph fn without kernels is still a PTX module", "[ptx]") {
  const char* text = R"(
func @g(%0: i64[]) -> (i64[]) {
  %1 = constant() {value = dense<[1] : i64[]>} : i64[]
  %2 = add(%0, %1) : i64[]
  print(%2) {format = "{}"}
  return(%2)
}
)";
  codegen::PtxModule p = ptxOf(text, "sm_80");
  CHECK(p.kernels.empty());
  CHECK(p.ptx.find(".target sm_80") != std::string::npos);
  CHECK(p.ptx.find(".version") != std::string::npos);
  CHECK(p.ptx.find("// host: add, print\n") != std::string::npos);
}

TEST_CASE("f64 transcendentals stay on the host (no libdevice)", "[ptx]") {
  const char* text = R"(
func @h(%0: f64[8], %1: f64[8]) -> (f64[8], f64[8]) {
  %2 = exp(%0) : f64[8]
  %3 = add(%0, %1) : f64[8]
  return(%2, %3)
}
)";
  codegen::PtxModule p = ptxOf(text);
  REQUIRE(p.kernels.size() == 1);
  CHECK(p.kernels[0].name == "h_k0_add");
  CHECK(p.hostOps == std::vector<std::string>{"exp (f64 exp needs libdevice)"});
}

TEST_CASE("an unknown arch is refused", "[ptx]") {
  CHECK(codegen::isKnownGpuArch("sm_90"));
  CHECK(codegen::isKnownGpuArch("sm_90a"));
  CHECK_FALSE(codegen::isKnownGpuArch("sm_100"));
  CHECK_FALSE(codegen::isKnownGpuArch("compute_90"));
  auto m = ir::parse_module("func @g(%0: i64[]) -> (i64[]) {\n  return(%0)\n}\n");
  CHECK_THROWS_AS(codegen::compilePtx(*m->functions[0], "sm_1"), std::invalid_argument);
}

// ---------------------------------------------------------------- kernel math

namespace {

void checkMath(const std::string& op, double (*ref)(double), double lo, double hi, double relTol, double absTol) {
  std::vector<float> xs;
  for (int i = 0; i <= 4000; ++i) xs.push_back(static_cast<float>(lo + (hi - lo) * i / 4000.0));
  std::vector<float> ys = codegen::evalKernelMathF32(op, xs);
  REQUIRE(ys.size() == xs.size());
  double worst = 0;
  float at = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    double want = ref(static_cast<double>(xs[i]));
    double err = std::fabs(ys[i] - want);
    double allowed = std::max(absTol, relTol * std::fabs(want));
    if (err / allowed > worst) worst = err / allowed, at = xs[i];
  }
  INFO(op << " worst at x = " << at << " (error / tolerance " << worst << ")");
  CHECK(worst <= 1.0);
}

double sigmoidRef(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace

TEST_CASE("the kernels' f32 math agrees with libm (SPEC §11: 1e-5 relative)", "[ptx][math]") {
  checkMath("exp", [](double x) { return std::exp(x); }, -87.0, 88.0, 1e-6, 0);
  checkMath("log", [](double x) { return std::log(x); }, 1e-30, 1e4, 1e-6, 1e-7);
  checkMath("log", [](double x) { return std::log(x); }, 0.5, 2.0, 1e-6, 1e-7);
  checkMath("log1p", [](double x) { return std::log1p(x); }, -0.9, 10.0, 1e-5, 1e-7);
  checkMath("log1p", [](double x) { return std::log1p(x); }, -1e-4, 1e-4, 1e-5, 0);
  checkMath("tanh", [](double x) { return std::tanh(x); }, -20.0, 20.0, 1e-5, 1e-7);
  checkMath("tanh", [](double x) { return std::tanh(x); }, -0.01, 0.01, 1e-5, 0);
  checkMath("sigmoid", sigmoidRef, -30.0, 30.0, 1e-5, 1e-7);
  checkMath("sin", [](double x) { return std::sin(x); }, -100.0, 100.0, 1e-5, 1e-6);
  checkMath("cos", [](double x) { return std::cos(x); }, -100.0, 100.0, 1e-5, 1e-6);
  checkMath("sin", [](double x) { return std::sin(x); }, -1e-3, 1e-3, 1e-5, 0);
  // Large arguments: the reduction by the bits of 2/pi (4096 and above), around its threshold
  // and up to f32's largest.
  checkMath("sin", [](double x) { return std::sin(x); }, 4000.0, 4200.0, 1e-5, 1e-6);
  checkMath("cos", [](double x) { return std::cos(x); }, -1e6, 1e6, 1e-5, 1e-6);
  for (const char* op : {"sin", "cos"}) {
    std::vector<float> xs;
    for (int k = 0; k <= 3800; ++k) xs.push_back((k % 2 ? -1.0f : 1.0f) * static_cast<float>(std::pow(10.0, k / 100.0)));
    std::vector<float> ys = codegen::evalKernelMathF32(op, xs);
    double worst = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      double x = xs[i], want = std::string(op) == "sin" ? std::sin(x) : std::cos(x);
      double e = std::fabs(ys[i] - want) / std::max(1e-6, 1e-5 * std::fabs(want));
      worst = std::isnan(e) ? INFINITY : std::max(worst, e);
    }
    INFO(op << " over 1 .. 1e38: error / tolerance " << worst);
    CHECK(worst <= 1.0);
  }

  // Special values.
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  auto e = codegen::evalKernelMathF32("exp", {inf, -inf, nan, 100.0f, -200.0f, 0.0f});
  CHECK(e[0] == inf);
  CHECK(e[1] == 0.0f);
  CHECK(std::isnan(e[2]));
  CHECK(e[3] == inf);
  CHECK(e[4] == 0.0f);
  CHECK(e[5] == 1.0f);
  auto l = codegen::evalKernelMathF32("log", {0.0f, -1.0f, inf, nan, 1.0f, 1e-40f});
  CHECK(l[0] == -inf);
  CHECK(std::isnan(l[1]));
  CHECK(l[2] == inf);
  CHECK(std::isnan(l[3]));
  CHECK(l[4] == 0.0f);
  CHECK(std::fabs(l[5] - std::log(1e-40)) < 1e-4 * std::fabs(std::log(1e-40)));
  auto t = codegen::evalKernelMathF32("tanh", {inf, -inf, nan, 0.0f});
  CHECK(t[0] == 1.0f);
  CHECK(t[1] == -1.0f);
  CHECK(std::isnan(t[2]));
  CHECK(t[3] == 0.0f);
  auto s = codegen::evalKernelMathF32("sin", {inf, nan, 0.0f, -0.0f, -inf});
  CHECK(std::isnan(s[0]));
  CHECK(std::isnan(s[1]));
  CHECK((s[2] == 0.0f && !std::signbit(s[2])));
  CHECK((s[3] == 0.0f && std::signbit(s[3])));  // sin(-0.0) is -0.0, as libm's
  CHECK(std::isnan(s[4]));
  auto p = codegen::evalKernelMathF32("log1p", {-1.0f, inf, 0.0f});
  CHECK(p[0] == -inf);
  CHECK(p[1] == inf);
  CHECK(p[2] == 0.0f);
}

TEST_CASE("every float op of the table: the kernels' f32 math agrees with the eager kernels", "[ptx][math]") {
  // Enumerates runtime/ops.def: each unary op computed in float, on a grid over its domain
  // (kPos: positive operands), against rt::unary (the C library's math, the reference).
  int checked = 0;
  for (int i = 0;; ++i) {
    auto op = static_cast<rt::UnaryOp>(i);
    std::string name(rt::op_name(op));
    if (name == "?") break;
    if (!(rt::props(op) & rt::kFloat)) continue;
    bool pos = rt::props(op) & rt::kPos;
    std::vector<float> xs;
    for (int k = 0; k <= 2000; ++k) xs.push_back(pos ? static_cast<float>(1e-3 * std::pow(1e7, k / 2000.0))
                                                    : static_cast<float>(-20.0 + 40.0 * k / 2000.0));
    std::vector<float> ys = codegen::evalKernelMathF32(name, xs);
    rt::Tensor want = rt::unary(op, rt::Tensor::from_vector<float>(xs, {static_cast<int64_t>(xs.size())}));
    double worst = 0;
    float at = 0;
    for (size_t k = 0; k < xs.size(); ++k) {
      double w = want.item_double(static_cast<int64_t>(k));
      double allowed = std::max(1e-7, 1e-5 * std::fabs(w));
      double err = std::fabs(static_cast<double>(ys[k]) - w);
      if (err / allowed > worst) worst = err / allowed, at = xs[k];
    }
    INFO(name << " worst at x = " << at << " (error / tolerance " << worst << ")");
    CHECK(worst <= 1.0);
    ++checked;
  }
  CHECK(checked >= 15);  // exp, expm1, log, ..., softplus, silu
}

// ---------------------------------------------------------------- kernels on an emulated grid


namespace {

rt::Tensor randomTensor(rt::DType d, const rt::Shape& shape, std::mt19937& rng) {
  rt::Tensor t = rt::Tensor::empty(d, shape);
  void* p = t.mutable_raw();
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  std::uniform_int_distribution<int> k(-3, 3);
  for (int64_t i = 0; i < t.numel(); ++i) switch (d) {
      case rt::DType::Bool: static_cast<bool*>(p)[i] = k(rng) > 0; break;
      case rt::DType::I32: static_cast<int32_t*>(p)[i] = k(rng); break;
      case rt::DType::I64: static_cast<int64_t*>(p)[i] = k(rng); break;
      case rt::DType::F32: static_cast<float*>(p)[i] = static_cast<float>(u(rng)); break;
      case rt::DType::F64: static_cast<double*>(p)[i] = u(rng); break;
    }
  return t;
}

rt::Tensor element(const rt::Tensor& t, int64_t i) {
  rt::Tensor e = rt::Tensor::empty(t.dtype(), {});
  size_t n = rt::itemsize(t.dtype());
  std::memcpy(e.mutable_raw(), static_cast<const unsigned char*>(t.raw()) + static_cast<size_t>(i) * n, n);
  return e;
}

// What the CPU computes for a kernel's op: the runtime's kernels (ir::evaluate); a fused
// op element by element through its body.
rt::Tensor reference(const ir::Op& op, const std::vector<rt::Tensor>& in) {
  bool fusedR = op.kind() == ir::OpKind::FusedReduce;
  if (op.kind() != ir::OpKind::Fused && !fusedR) {
    auto r = ir::evaluate(op, in);
    REQUIRE(r.has_value());
    return (*r)[0];
  }
  // The loop's domain: the result (fused), or operand 0 (fused_reduce, reduced afterwards).
  const ir::Block& body = op.region(0).block();
  const ir::TensorType& dom = fusedR ? op.operand(0)->type : op.result()->type;
  rt::DType ed = fusedR ? body.terminator()->operand(0)->type.dtype : op.result()->type.dtype;
  rt::Shape shape = *dom.static_shape();
  rt::Tensor out = rt::Tensor::empty(ed, shape);
  int64_t inner = shape.back(), n = out.numel();
  size_t isz = rt::itemsize(ed);
  for (int64_t i = 0; i < n; ++i) {
    std::map<const ir::Value*, rt::Tensor> v;
    for (size_t j = 0; j < in.size(); ++j) {
      switch (ir::fused_operand_kind(op.operand(j)->type, dom)) {
        case ir::FusedOperand::Scalar: v[body.arg(j)] = in[j]; break;
        case ir::FusedOperand::Row: v[body.arg(j)] = element(in[j], i % inner); break;
        case ir::FusedOperand::Col: v[body.arg(j)] = element(in[j], i / inner); break;
        case ir::FusedOperand::Strided: {  // NumPy's broadcast: the index along each axis, aligned right
          const rt::Shape& xs = in[j].shape();
          int64_t rest = i, at = 0, st = 1;
          for (size_t a = shape.size(); a-- > 0;) {
            int64_t c = rest % shape[a];
            rest /= shape[a];
            size_t off = shape.size() - xs.size();
            if (a < off) continue;
            if (xs[a - off] != 1) at += c * st;
            st *= xs[a - off];
          }
          v[body.arg(j)] = element(in[j], at);
          break;
        }
        default: v[body.arg(j)] = element(in[j], i); break;
      }
    }
    rt::Tensor y;
    for (size_t k = 0; k < body.size(); ++k) {
      const ir::Op& x = body.op(k);
      std::vector<rt::Tensor> xs;
      for (const ir::Value* o : x.operands()) xs.push_back(v.at(o));
      if (x.kind() == ir::OpKind::Yield) {
        y = rt::cast(xs.at(0), ed);
        break;
      }
      auto r = ir::evaluate(x, xs);
      REQUIRE(r.has_value());
      v[x.result()] = (*r)[0];
    }
    std::memcpy(static_cast<unsigned char*>(out.mutable_raw()) + static_cast<size_t>(i) * isz, y.raw(), isz);
  }
  if (fusedR) {
    rt::ReduceOp kind = rt::ReduceOp::Sum;
    for (auto k : {rt::ReduceOp::Sum, rt::ReduceOp::Mean})
      if (rt::reduce_op_name(k) == op.str_attr("kind")) kind = k;
    return rt::reduce(kind, out, op.ints_attr("axes"), op.bool_attr("keepdims"));
  }
  return out;
}

double at(const rt::Tensor& t, int64_t i) { return element(t, i).item_double(0); }

// Runs every kernel of the IR function `text` on the emulated grid and compares each
// element with the runtime's result.
void checkKernels(const char* text, size_t count,
                  const std::function<void(std::map<const ir::Value*, rt::Tensor>&, const ir::Function&)>& prepare);

}  // namespace

TEST_CASE("the kernels compute what the CPU does (host emulation of the grid)", "[ptx][emulate]") {
  const char* text = R"(
func @k(%0: f32[5, 7], %1: f32[7], %2: f32[5, 1], %3: bool[5, 7], %4: i32[5, 7], %5: f64[5, 7], %6: f32[], %7: f32[3, 1000]) -> (f32[5, 7]) {
  %10 = fused(%0, %1, %2, %6) : f32[5, 7] {
  ^body(%30: f32[], %31: f32[], %32: f32[], %33: f32[]):
    %34 = mul(%30, %31) : f32[]
    %35 = sub(%34, %32) : f32[]
    %36 = tanh(%35) : f32[]
    %37 = exp(%36) : f32[]
    %38 = add(%37, %33) : f32[]
    yield(%38)
  }
  %11 = select(%3, %0, %2) : f32[5, 7]
  %12 = cast(%4) : f64[5, 7]
  %13 = gt(%0, %1) : bool[5, 7]
  %14 = add(%4, %4) : i32[5, 7]
  %15 = sigmoid(%0) : f32[5, 7]
  %16 = log(%0) : f32[5, 7]
  %17 = sqrt(%5) : f64[5, 7]
  %18 = maximum(%0, %2) : f32[5, 7]
  %19 = logical_not(%3) : bool[5, 7]
  %20 = reduce(%0) {axes = [1], keepdims = false, kind = "sum"} : f32[5]
  %21 = reduce(%0) {axes = [0, 1], keepdims = false, kind = "max"} : f32[]
  %22 = reduce(%0) {axes = [0], keepdims = false, kind = "mean"} : f32[7]
  %23 = reduce(%4) {axes = [1], keepdims = false, kind = "sum"} : i64[5]
  %24 = reduce(%3) {axes = [1], keepdims = false, kind = "any"} : bool[5]
  %25 = reduce(%3) {axes = [0], keepdims = false, kind = "all"} : bool[7]
  %26 = reduce(%5) {axes = [1], keepdims = true, kind = "min"} : f64[5, 1]
  %27 = reduce(%4) {axes = [0, 1], keepdims = false, kind = "prod"} : i64[]
  %28 = reduce(%7) {axes = [1], keepdims = false, kind = "sum"} : f32[3]
  %29 = reduce(%7) {axes = [0, 1], keepdims = false, kind = "min"} : f32[]
  %39 = reduce(%5) {axes = [0], keepdims = true, kind = "max"} : f64[1, 7]
  %40 = reduce(%7) {axes = [0], keepdims = false, kind = "sum"} : f32[1000]
  %41 = argmax(%0) {axis = 1, keepdims = false} : i64[5]
  %42 = argmin(%5) {axis = 1, keepdims = true} : i64[5, 1]
  %43 = argmax(%4) {axis = 0, keepdims = false} : i64[7]
  %44 = argmin(%3) {axis = 0, keepdims = false} : i64[7]
  %45 = argmax(%5) {axis = 0, keepdims = false} : i64[7]
  return(%10)
}
)";
  // A NaN in the f64 input: min/max must propagate it like the runtime.
  checkKernels(text, 27, [](std::map<const ir::Value*, rt::Tensor>& params, const ir::Function& fn) {
    static_cast<double*>(params[fn.params()[5]].mutable_raw())[2 * 7 + 3] = std::nan("");
  });
}

TEST_CASE("fused reductions (host emulation)", "[ptx][emulate]") {
  const char* text = R"(
func @r(%0: f32[6, 300], %1: f32[300], %2: f32[6, 1], %3: f32[], %4: f64[9, 5]) -> (f32[6]) {
  %5 = fused_reduce(%0, %1, %2, %3) {axes = [1], keepdims = false, kind = "sum"} : f32[6] {
  ^body(%6: f32[], %7: f32[], %8: f32[], %9: f32[]):
    %10 = mul(%6, %7) : f32[]
    %11 = sub(%10, %8) : f32[]
    %12 = exp(%11) : f32[]
    %13 = mul(%12, %9) : f32[]
    yield(%13)
  }
  %14 = fused_reduce(%0, %1) {axes = [0, 1], keepdims = false, kind = "mean"} : f32[] {
  ^body(%15: f32[], %16: f32[]):
    %17 = sub(%15, %16) : f32[]
    %18 = square(%17) : f32[]
    yield(%18)
  }
  %19 = fused_reduce(%4) {axes = [1], keepdims = true, kind = "mean"} : f64[9, 1] {
  ^body(%20: f64[]):
    %21 = abs(%20) : f64[]
    yield(%21)
  }
  return(%5)
}
)";
  checkKernels(text, 3, nullptr);
}

TEST_CASE("general broadcasts by strides (host emulation)", "[ptx][emulate]") {
  const char* text = R"(
func @b(%0: f32[4, 1, 2], %1: f32[3, 2], %2: i64[4, 1], %3: i64[1, 3], %4: f32[2]) -> (f32[4, 3, 2]) {
  %5 = sub(%0, %1) : f32[4, 3, 2]
  %6 = eq(%2, %3) : bool[4, 3]
  %7 = mul(%1, %4) : f32[3, 2]
  %8 = add(%4, %0) : f32[4, 1, 2]
  return(%5)
}
)";
  checkKernels(text, 4, nullptr);
}

TEST_CASE("fused loops with strided operands read them by strides (host emulation)", "[ptx][emulate]") {
  // k-means' distances (no operand of the result's shape), a table added to a batch; the
  // fused reduction over a strided domain stays on the host (3 kernels, not 4).
  const char* text = R"(
func @s(%0: f32[4, 1, 2], %1: f32[1, 3, 2], %2: f32[4, 3, 2], %3: f32[3, 2]) -> (f32[4, 3, 2]) {
  %4 = fused(%0, %1) : f32[4, 3, 2] {
  ^body(%5: f32[], %6: f32[]):
    %7 = sub(%5, %6) : f32[]
    %8 = square(%7) : f32[]
    yield(%8)
  }
  %9 = fused(%2, %3, %0) : f32[4, 3, 2] {
  ^body(%10: f32[], %11: f32[], %12: f32[]):
    %13 = add(%10, %11) : f32[]
    %14 = mul(%13, %12) : f32[]
    yield(%14)
  }
  %15 = fused(%3, %0) : f32[4, 3, 2] {
  ^body(%16: f32[], %17: f32[]):
    %18 = maximum(%16, %17) : f32[]
    yield(%18)
  }
  %19 = fused_reduce(%0, %1) {axes = [2], keepdims = false, kind = "sum"} : f32[4, 3] {
  ^body(%20: f32[], %21: f32[]):
    %22 = sub(%20, %21) : f32[]
    yield(%22)
  }
  return(%4)
}
)";
  checkKernels(text, 3, nullptr);
}

namespace {

void checkKernels(const char* text, size_t count,
                  const std::function<void(std::map<const ir::Value*, rt::Tensor>&, const ir::Function&)>& prepare) {
  auto m = ir::parse_module(text);
  const ir::Function& fn = *m->functions[0];
  codegen::HostKernelEmulator emu(fn);
  REQUIRE(emu.kernels().size() == count);
  std::mt19937 rng(42);
  std::map<const ir::Value*, rt::Tensor> params;
  for (const ir::Value* p : fn.params()) params[p] = randomTensor(p->type.dtype, *p->type.static_shape(), rng);
  if (prepare) prepare(params, fn);
  for (const codegen::PtxKernel& k : emu.kernels()) {
    INFO("kernel " << k.name << " " << k.signature);
    std::vector<rt::Tensor> in;
    std::vector<uint64_t> bufs;
    for (const ir::Value* o : k.op->operands()) {
      in.push_back(params.at(o));
      bufs.push_back(reinterpret_cast<uint64_t>(in.back().raw()));
    }
    rt::Tensor want = reference(*k.op, in);
    rt::Tensor got = rt::Tensor::zeros(want.dtype(), want.shape());
    // A small grid and odd blocks, so that the grid-stride loops go round.
    codegen::KernelLaunch l = codegen::planLaunch(k, reinterpret_cast<uint64_t>(got.mutable_raw()), bufs, in,
                                                  want.shape(), 2, 5);
    REQUIRE_FALSE(l.skip);
    emu.launch(k.name, l);
    bool flt = want.dtype() == rt::DType::F32 || want.dtype() == rt::DType::F64;
    for (int64_t i = 0; i < want.numel(); ++i) {
      double w = at(want, i), g = at(got, i);
      INFO("element " << i << ": want " << w << ", got " << g);
      if (std::isnan(w)) CHECK(std::isnan(g));
      else if (flt) CHECK(std::fabs(g - w) <= 1e-5 * std::fabs(w) + 1e-6);
      else CHECK(g == w);
    }
  }
}

}  // namespace

TEST_CASE("launch plans", "[ptx]") {
  auto m = ir::parse_module(R"(
func @p(%0: f32[4, 300], %1: f32[300], %2: bool[]) -> (f32[4, 300]) {
  %3 = select(%2, %0, %1) : f32[4, 300]
  %4 = reduce(%0) {axes = [1], keepdims = false, kind = "max"} : f32[4]
  %5 = reduce(%0) {axes = [0], keepdims = false, kind = "sum"} : f32[300]
  return(%3)
}
)");
  codegen::PtxModule p = codegen::compilePtx(*m->functions[0], "sm_90");
  REQUIRE(p.kernels.size() == 3);
  rt::Tensor x = rt::Tensor::zeros(rt::DType::F32, {4, 300}), r = rt::Tensor::zeros(rt::DType::F32, {300});
  rt::Tensor flag = rt::Tensor::scalar(true);
  auto sel = codegen::planLaunch(p.kernels[0], 0x100, {0, 0x200, 0x300}, {flag, x, r}, {4, 300});
  CHECK(sel.block == 256);
  CHECK(sel.grid == 5);  // ceil(1200 / 256)
  REQUIRE(sel.args.size() == 6);  // out, flag (1 byte), x, r, n, inner
  CHECK(sel.args[1] == std::vector<unsigned char>{1});
  CHECK(argAs<uint64_t>(sel.args[2]) == 0x200);
  CHECK(argAs<int64_t>(sel.args[4]) == 1200);
  CHECK(argAs<int64_t>(sel.args[5]) == 300);
  auto red = codegen::planLaunch(p.kernels[1], 0x100, {0x200}, {x}, {4});
  CHECK(red.block == codegen::kReduceBlock);
  CHECK(red.grid == 4);
  CHECK(argAs<int64_t>(red.args[2]) == 4);
  CHECK(argAs<int64_t>(red.args[3]) == 300);
  auto col = codegen::planLaunch(p.kernels[2], 0x100, {0x200}, {x}, {300}, 4096, 128);
  CHECK(col.grid == 3);  // ceil(300 / 128)
  CHECK(argAs<int64_t>(col.args[2]) == 1);
  CHECK(argAs<int64_t>(col.args[3]) == 4);
  CHECK(argAs<int64_t>(col.args[4]) == 300);
  // An empty max has nothing to launch (the host reports the error).
  rt::Tensor e = rt::Tensor::zeros(rt::DType::F32, {4, 0});
  CHECK(codegen::planLaunch(p.kernels[1], 0x100, {0x200}, {e}, {4}).skip);
}
