// The device layer (issue 22) without a GPU: graph fns run by the device executor on the
// emulated device and on the CUDA device over a fake driver whose "GPU" is host memory and
// whose kernels run on the host emulation of the grid, compared with compiled CPU code;
// transfers and launches counted; every driver call the CUDA device makes, and its errors.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <cblas.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "codegen/Codegen.h"
#include "codegen/Device.h"
#include "codegen/DeviceExec.h"
#include "codegen/Ptx.h"
#include "ir/Parser.h"
#include "runtime/Create.h"
#include "runtime/Random.h"

using namespace tdl;
using namespace tdl::rt::cuda;

namespace {

// A graph fn's optimized IR (from `tdl emit --stage opt`): a while loop of matmul, a fused
// tanh and a gemm with c; a max read back for a cond; reductions over both axes.
const char* kStep = R"(
func @step(%0: f32[8, 4], %1: f32[16, 8], %2: i64[]) -> (f32[8, 4]) {
  %3 = constant() {value = dense<[0] : i64[]>} : i64[]
  %4, %5 = while(%0, %3) : f32[8, 4], i64[] {
  ^cond(%6: f32[8, 4], %7: i64[]):
    %8 = lt(%7, %2) : bool[]
    yield(%8)
  } {
  ^body(%9: f32[8, 4], %10: i64[]):
    %11 = matmul(%1, %9) : f32[16, 4]
    %12 = constant() {value = dense<[0.01] : f32[]>} : f32[]
    %13 = fused(%12, %11) : f32[16, 4] {
    ^body(%14: f32[], %15: f32[]):
      %16 = tanh(%15) : f32[]
      %17 = mul(%16, %14) : f32[]
      yield(%17)
    }
    %18 = gemm(%1, %13, %9) {alpha = -1.0, beta = 1.0, trans_a = true, trans_b = false} : f32[8, 4]
    %19 = constant() {value = dense<[1] : i64[]>} : i64[]
    %20 = add(%10, %19) : i64[]
    yield(%18, %20)
  }
  %21 = reduce(%4) {axes = [0, 1], keepdims = false, kind = "max"} : f32[]
  %22 = constant() {value = dense<[100.0] : f32[]>} : f32[]
  %23 = gt(%21, %22) : bool[]
  %24 = cond(%23) : f32[8, 4] {
  ^then:
    %25 = constant() {value = dense<[0.5] : f32[]>} : f32[]
    %26 = mul(%4, %25) : f32[8, 4]
    yield(%26)
  } {
  ^else:
    %27 = reduce(%4) {axes = [0], keepdims = false, kind = "sum"} : f32[4]
    %28 = constant() {value = dense<[0.001] : f32[]>} : f32[]
    %29 = mul(%27, %28) : f32[4]
    %30 = fused(%4, %29) : f32[8, 4] {
    ^body(%31: f32[], %32: f32[]):
      %33 = add(%31, %32) : f32[]
      yield(%33)
    }
    yield(%30)
  }
  return(%24)
}
)";

// f64 matmul (cublasDgemm), a mean over rows (a block reduction), argmax, a host op (concat).
const char* kStats = R"(
func @stats(%0: f64[3, 5], %1: f64[5, 2]) -> (f64[3, 2], f64[3], i64[3], f64[6, 2]) {
  %2 = matmul(%0, %1) : f64[3, 2]
  %3 = reduce(%0) {axes = [1], keepdims = false, kind = "mean"} : f64[3]
  %4 = argmax(%0) {axis = 1, keepdims = false} : i64[3]
  %5 = concat(%2, %2) {axis = 0} : f64[6, 2]
  return(%2, %3, %4, %5)
}
)";

// Copy kernels: a transpose, a slice with a negative step and an open end, a bool broadcast,
// an empty slice.
const char* kViews = R"(
func @views(%0: f32[4, 6], %1: bool[3, 1]) -> (f32[6, 4], f32[3, 3], bool[2, 3, 5], f32[0, 6]) {
  %2 = transpose(%0) {perm = [1, 0]} : f32[6, 4]
  %3 = slice(%0) {start = [1, 9223372036854775807], step = [1, -2], stop = [4, -9223372036854775808]} : f32[3, 3]
  %4 = broadcast_to(%1) : bool[2, 3, 5]
  %5 = slice(%0) {start = [3, 0], step = [1, 1], stop = [1, 9223372036854775807]} : f32[0, 6]
  return(%2, %3, %4, %5)
}
)";

// Insert kernels: an update with an i64 row cast to f32 (x a parameter: copied), an element
// update of a value that dies there (written in place), a dynamic slice update with a
// broadcast column.
const char* kUpdates = R"(
func @upd(%0: f32[6, 3], %1: i64[3], %2: i64[], %3: i64[], %4: f32[2, 1]) -> (f32[6, 3]) {
  %5 = update(%0, %1, %2) : f32[6, 3]
  %6 = constant() {value = dense<[7.0] : f32[]>} : f32[]
  %7 = update(%5, %6, %2, %3) : f32[6, 3]
  %8 = constant() {value = dense<[2] : i64[]>} : i64[]
  %9 = add(%2, %8) : i64[]
  %10 = dyn_slice_update(%7, %4, %2, %9) {dynamic = [1, 0], start = [0, 0], step = [1, 1], stop = [9223372036854775807, 9223372036854775807]} : f32[6, 3]
  return(%10)
}
)";

struct Fn {
  std::unique_ptr<ir::Module> module;
  ir::Function* fn = nullptr;
};
Fn parse(const char* text) {
  Fn f;
  f.module = ir::parse_module(text);
  f.fn = f.module->functions.front().get();
  return f;
}

std::vector<rt::Tensor> runCpu(const char* text, const std::vector<rt::Tensor>& in) {
  Fn f = parse(text);
  ir::Function& fn = *f.fn;
  auto cf = codegen::compile(std::move(f.module), fn);
  std::vector<rt::Tensor> out;
  codegen::ExecError err;
  REQUIRE(cf->run(in, out, err));
  return out;
}

std::unique_ptr<codegen::CompiledFn> onDevice(const char* text) {
  Fn f = parse(text);
  ir::Function& fn = *f.fn;
  return codegen::compileForDevice(std::move(f.module), fn);
}

void checkClose(const rt::Tensor& a, const rt::Tensor& b, double rtol = 1e-5) {
  REQUIRE(a.shape() == b.shape());
  REQUIRE(a.dtype() == b.dtype());
  for (int64_t i = 0; i < a.numel(); ++i) {
    double x = a.item_double(i), y = b.item_double(i);
    INFO("element " << i << ": " << x << " vs " << y);
    CHECK(std::abs(x - y) <= rtol * std::max(1.0, std::abs(y)));
  }
}

std::vector<rt::Tensor> stepInputs(int64_t n) {
  rt::seed(7);
  return {rt::randn({8, 4}, rt::DType::F32), rt::randn({16, 8}, rt::DType::F32), rt::Tensor::scalar(n)};
}

std::vector<rt::Tensor> statsInputs() {
  rt::seed(3);
  return {rt::randn({3, 5}, rt::DType::F64), rt::randn({5, 2}, rt::DType::F64)};
}

// ---------------------------------------------------------------- a fake driver with a GPU

// Its memory is host memory (so the emulated kernels read it); each allocation is checked.
struct FakeGpu {
  std::map<std::string, int> calls;
  std::map<uint64_t, size_t> live;  // address -> bytes
  size_t capacity = size_t{1} << 30, used = 0;
  std::vector<std::unique_ptr<codegen::HostKernelEmulator>> modules;
  std::vector<std::pair<size_t, std::string>> functions;  // (module, kernel name)
  const ir::Function* loading = nullptr;  // the fn whose PTX the next cuModuleLoadData gets
  bool failLaunch = false;
  bool inside(uint64_t p, size_t n) const {
    auto it = live.upper_bound(p);
    if (it == live.begin()) return false;
    --it;
    return p + n <= it->first + it->second;
  }
};
FakeGpu* gpu = nullptr;
// As the driver: a context is current per thread, and calls without one fail.
thread_local bool contextCurrent = false;
constexpr CUresult kInvalidContext = 201;  // CUDA_ERROR_INVALID_CONTEXT

CudaFunctions fakeDriver() {
  CudaFunctions f;
  f.cuInit = [](unsigned) { return ++gpu->calls["cuInit"], CUDA_SUCCESS; };
  f.cuDeviceGetCount = [](int* n) { return *n = 1, ++gpu->calls["cuDeviceGetCount"], CUDA_SUCCESS; };
  f.cuDeviceGet = [](CUdevice* d, int i) { return *d = i, ++gpu->calls["cuDeviceGet"], CUDA_SUCCESS; };
  f.cuDeviceGetName = [](char* s, int len, CUdevice) {
    std::strncpy(s, "Fake GPU", static_cast<size_t>(len));
    return ++gpu->calls["cuDeviceGetName"], CUDA_SUCCESS;
  };
  f.cuDevicePrimaryCtxRetain = [](CUcontext* c, CUdevice) {
    *c = reinterpret_cast<CUcontext>(0x30);
    return ++gpu->calls["cuDevicePrimaryCtxRetain"], CUDA_SUCCESS;
  };
  f.cuCtxSetCurrent = [](CUcontext) { return contextCurrent = true, ++gpu->calls["cuCtxSetCurrent"], CUDA_SUCCESS; };
  f.cuDevicePrimaryCtxRelease = [](CUdevice) { return ++gpu->calls["cuDevicePrimaryCtxRelease"], CUDA_SUCCESS; };
  f.cuModuleLoadData = [](CUmodule* m, const void* image) {
    ++gpu->calls["cuModuleLoadData"];
    if (!contextCurrent) return kInvalidContext;
    std::string ptx = static_cast<const char*>(image);
    if (ptx.find(".version") == std::string::npos || !gpu->loading) return 218;  // CUDA_ERROR_INVALID_PTX
    gpu->modules.push_back(std::make_unique<codegen::HostKernelEmulator>(*gpu->loading));
    *m = reinterpret_cast<CUmodule>(gpu->modules.size());
    return CUDA_SUCCESS;
  };
  f.cuModuleGetFunction = [](CUfunction* fn, CUmodule m, const char* name) {
    ++gpu->calls["cuModuleGetFunction"];
    size_t mi = reinterpret_cast<size_t>(m);
    if (mi == 0 || mi > gpu->modules.size()) return 400;  // CUDA_ERROR_INVALID_HANDLE
    gpu->functions.emplace_back(mi - 1, name);
    *fn = reinterpret_cast<CUfunction>(gpu->functions.size());
    return CUDA_SUCCESS;
  };
  f.cuMemAlloc = [](CUdeviceptr* p, size_t bytes) {
    ++gpu->calls["cuMemAlloc"];
    if (!contextCurrent) return kInvalidContext;
    if (gpu->used + bytes > gpu->capacity) return 2;  // CUDA_ERROR_OUT_OF_MEMORY
    void* q = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
    *p = reinterpret_cast<CUdeviceptr>(q);
    gpu->live[*p] = bytes;
    gpu->used += bytes;
    return CUDA_SUCCESS;
  };
  f.cuMemFree = [](CUdeviceptr p) {
    ++gpu->calls["cuMemFree"];
    auto it = gpu->live.find(p);
    if (it == gpu->live.end()) return 1;  // CUDA_ERROR_INVALID_VALUE
    gpu->used -= it->second;
    gpu->live.erase(it);
    std::free(reinterpret_cast<void*>(p));
    return CUDA_SUCCESS;
  };
  f.cuMemcpyHtoD = [](CUdeviceptr dst, const void* src, size_t bytes) {
    ++gpu->calls["cuMemcpyHtoD"];
    if (!contextCurrent) return kInvalidContext;
    if (!gpu->inside(dst, bytes)) return 1;
    std::memcpy(reinterpret_cast<void*>(dst), src, bytes);
    return CUDA_SUCCESS;
  };
  f.cuMemcpyDtoH = [](void* dst, CUdeviceptr src, size_t bytes) {
    ++gpu->calls["cuMemcpyDtoH"];
    if (!contextCurrent) return kInvalidContext;
    if (!gpu->inside(src, bytes)) return 1;
    std::memcpy(dst, reinterpret_cast<const void*>(src), bytes);
    return CUDA_SUCCESS;
  };
  f.cuMemcpyDtoD = [](CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    ++gpu->calls["cuMemcpyDtoD"];
    if (!contextCurrent) return kInvalidContext;
    if (!gpu->inside(src, bytes) || !gpu->inside(dst, bytes)) return 1;
    std::memcpy(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), bytes);
    return CUDA_SUCCESS;
  };
  f.cuLaunchKernel = [](CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned, CUstream, void** params, void** extra) {
    ++gpu->calls["cuLaunchKernel"];
    if (!contextCurrent) return kInvalidContext;
    size_t fi = reinterpret_cast<size_t>(fn);
    if (gpu->failLaunch) return 719;  // CUDA_ERROR_LAUNCH_FAILED
    if (fi == 0 || fi > gpu->functions.size() || extra || gy != 1 || gz != 1 || by != 1 || bz != 1) return 400;
    auto& [mi, name] = gpu->functions[fi - 1];
    gpu->modules[mi]->launch(name, gx, bx, params);
    return CUDA_SUCCESS;
  };
  f.cuCtxSynchronize = [] { return ++gpu->calls["cuCtxSynchronize"], CUDA_SUCCESS; };
  f.cuGetErrorName = [](CUresult r, const char** s) {
    *s = r == 2 ? "CUDA_ERROR_OUT_OF_MEMORY" : r == 719 ? "CUDA_ERROR_LAUNCH_FAILED" : "CUDA_ERROR_UNKNOWN";
    return ++gpu->calls["cuGetErrorName"], CUDA_SUCCESS;
  };
  f.cuGetErrorString = [](CUresult, const char** s) { return *s = "fake", ++gpu->calls["cuGetErrorString"], CUDA_SUCCESS; };
  return f;
}

CublasFunctions fakeCublas() {
  CublasFunctions f;
  f.cublasCreate = [](void** h) { return *h = reinterpret_cast<void*>(0x40), ++gpu->calls["cublasCreate"], 0; };
  f.cublasDestroy = [](void*) { return ++gpu->calls["cublasDestroy"], 0; };
  f.cublasSgemm = [](void*, int ta, int tb, int m, int n, int k, const float* al, const float* a, int lda,
                     const float* b, int ldb, const float* be, float* c, int ldc) {
    ++gpu->calls["cublasSgemm"];
    cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, *al, a, lda, b,
                ldb, *be, c, ldc);
    return 0;
  };
  f.cublasDgemm = [](void*, int ta, int tb, int m, int n, int k, const double* al, const double* a, int lda,
                     const double* b, int ldb, const double* be, double* c, int ldc) {
    ++gpu->calls["cublasDgemm"];
    cblas_dgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, *al, a, lda, b,
                ldb, *be, c, ldc);
    return 0;
  };
  return f;
}

std::unique_ptr<codegen::CompiledFn> onFake(const char* text) {
  Fn f = parse(text);
  ir::Function& fn = *f.fn;
  gpu->loading = &fn;
  auto cf = codegen::compileForDevice(std::move(f.module), fn);
  gpu->loading = nullptr;
  return cf;
}

}  // namespace

TEST_CASE("the emulated device runs graph fns as compiled CPU code does", "[device]") {
  codegen::setActiveDevice(codegen::makeEmuDevice());
  auto want = runCpu(kStep, stepInputs(5));
  auto cf = onDevice(kStep);
  std::vector<rt::Tensor> out;
  codegen::ExecError err;
  REQUIRE(cf->run(stepInputs(5), out, err));
  REQUIRE(out.size() == 1);
  CHECK(codegen::onDeviceOnly(out[0]));  // the result stays there until read
  checkClose(out[0], want[0]);
  CHECK_FALSE(codegen::onDeviceOnly(out[0]));

  auto want2 = runCpu(kStats, statsInputs());
  auto cf2 = onDevice(kStats);
  REQUIRE(cf2->run(statsInputs(), out, err));
  for (size_t i = 0; i < out.size(); ++i) checkClose(out[i], want2[i], 1e-12);
  CHECK(codegen::deviceStats().gemms > 0);
  CHECK(codegen::deviceStats().launches > 0);

  rt::seed(5);
  std::vector<rt::Tensor> views{rt::randn({4, 6}), rt::Tensor::from_vector<bool>({true, false, true}, {3, 1})};
  auto want3 = runCpu(kViews, views);
  auto cf3 = onDevice(kViews);
  codegen::resetDeviceStats();
  REQUIRE(cf3->run(views, out, err));
  CHECK(codegen::deviceStats().launches == 3);  // the empty slice launches nothing
  REQUIRE(out.size() == 4);
  for (size_t i = 0; i < out.size(); ++i) {
    CHECK(codegen::onDeviceOnly(out[i]));
    checkClose(out[i], want3[i], 0);
  }
}

TEST_CASE("update and dyn_slice_update run on the device, in place where x dies", "[device]") {
  codegen::setActiveDevice(codegen::makeEmuDevice());
  auto inputs = [](int64_t i, int64_t j) {
    rt::seed(9);
    return std::vector<rt::Tensor>{rt::randn({6, 3}), rt::Tensor::from_vector<int64_t>({4, -5, 6}, {3}),
                                   rt::Tensor::scalar(i), rt::Tensor::scalar(j),
                                   rt::Tensor::from_vector<float>({1.5f, -2.5f}, {2, 1})};
  };
  auto cf = onDevice(kUpdates);
  std::vector<rt::Tensor> out;
  codegen::ExecError err;
  for (auto [i, j] : {std::pair<int64_t, int64_t>{1, 2}, {3, -1}, {4, 0}}) {
    auto want = runCpu(kUpdates, inputs(i, j));
    codegen::resetDeviceStats();
    std::vector<rt::Tensor> in = inputs(i, j);
    (void)codegen::deviceData(in[0]);  // x already on the device: the call copies it there once
    codegen::resetDeviceStats();
    REQUIRE(cf->run(in, out, err));
    codegen::DeviceStats s = codegen::deviceStats();
    CHECK(s.launches == 3);
    // Buffers: one per upload (the row, the column, the constant on the first call) and one
    // result: the second and third updates write in place.
    CHECK(s.allocs + s.cacheHits - s.uploads == 1);
    checkClose(out[0], want[0], 0);
    checkClose(in[0], inputs(i, j)[0], 0);  // x itself unchanged
  }
  // The runtime's errors, before anything is written.
  std::vector<rt::Tensor> bad = inputs(6, 0);
  REQUIRE_FALSE(cf->run(bad, out, err));
  CHECK(err.message == "index 6 is out of range for axis 0 of size 6");
  REQUIRE(err.op);
  CHECK(err.op->kind() == ir::OpKind::Update);
  bad = inputs(5, 0);  // the slice 5:7 has one row: [2, 1] does not broadcast to [1, 3]
  REQUIRE_FALSE(cf->run(bad, out, err));
  CHECK(err.message == "cannot broadcast shape [2, 1] to [1, 3]");
  CHECK(err.op->kind() == ir::OpKind::DynSliceUpdate);
}

TEST_CASE("state kept on the device between calls is not copied per call", "[device]") {
  codegen::setActiveDevice(codegen::makeEmuDevice());
  auto cf = onDevice(kStep);
  std::vector<rt::Tensor> in = stepInputs(3), out;
  codegen::ExecError err;
  REQUIRE(cf->run(in, out, err));  // uploads w and x once
  codegen::resetDeviceStats();
  for (int i = 0; i < 10; ++i) {
    in[0] = out[0];  // the state: device-resident from here on
    REQUIRE(cf->run(in, out, err));
  }
  codegen::DeviceStats s = codegen::deviceStats();
  CHECK(s.uploads == 0);
  CHECK(s.downloads == 10);  // the max each call's cond reads: one f32 each
  CHECK(s.bytesDown == 40);
  // Per call: the fused tanh of each of 3 iterations, the max, and the else branch's sum,
  // scaling and fused add.
  CHECK(s.launches == 10 * (3 + 1 + 3));
  CHECK(s.gemms == 10 * 3 * 2);
  CHECK(s.allocs <= 2);  // buffers come from the allocator's cache
  CHECK(s.cacheHits >= 10 * 13);
  CHECK(codegen::onDeviceOnly(out[0]));
  (void)out[0].raw();  // the host reads it: one copy
  CHECK(codegen::deviceStats().downloads == 11);
  CHECK(codegen::deviceStats().bytesDown == 40 + 8 * 4 * 4);
  // A host write drops the device copy: the next call uploads it again.
  rt::Tensor w = out[0];
  w.mutable_data<float>()[0] += 1.0f;
  in[0] = w;
  REQUIRE(cf->run(in, out, err));
  CHECK(codegen::deviceStats().uploads == 1);
}

TEST_CASE("errors of host ops on the device carry their op", "[device]") {
  codegen::setActiveDevice(codegen::makeEmuDevice());
  const char* text = R"(
func @f(%0: f32[4], %1: i64[]) -> (f32[]) {
  %2 = exp(%0) : f32[4]
  %3 = index(%2, %1) : f32[]
  return(%3)
}
)";
  auto cf = onDevice(text);
  std::vector<rt::Tensor> out;
  codegen::ExecError err;
  REQUIRE(cf->run({rt::Tensor::zeros(rt::DType::F32, {4}), rt::Tensor::scalar(int64_t{2})}, out, err));
  CHECK(out[0].item_double(0) == 1.0);
  REQUIRE_FALSE(cf->run({rt::Tensor::zeros(rt::DType::F32, {4}), rt::Tensor::scalar(int64_t{9})}, out, err));
  CHECK(err.message == "index 9 is out of range for axis 0 of size 4");
  REQUIRE(err.op);
  CHECK(err.op->kind() == ir::OpKind::Index);

  // An index with a tensor result is a copy kernel on the device; its errors are the same.
  const char* rows = R"(
func @row(%0: f32[4, 6], %1: i64[]) -> (f32[6]) {
  %2 = index(%0, %1) : f32[6]
  return(%2)
}
)";
  auto cr = onDevice(rows);
  rt::seed(4);
  rt::Tensor x = rt::randn({4, 6});
  codegen::resetDeviceStats();
  REQUIRE(cr->run({x, rt::Tensor::scalar(int64_t{-1})}, out, err));
  CHECK(codegen::deviceStats().launches == 1);
  CHECK(codegen::onDeviceOnly(out[0]));
  checkClose(out[0], runCpu(rows, {x, rt::Tensor::scalar(int64_t{-1})})[0], 0);
  REQUIRE_FALSE(cr->run({x, rt::Tensor::scalar(int64_t{4})}, out, err));
  CHECK(err.message == "index 4 is out of range for axis 0 of size 4");
  CHECK(err.op->kind() == ir::OpKind::Index);
}

TEST_CASE("the CUDA device over a fake driver: every driver call, the same results", "[device][cuda]") {
  FakeGpu fake;
  gpu = &fake;
  {
    codegen::setActiveDevice(codegen::makeCudaDevice(CudaDriver::fromTable(fakeDriver()),
                                                     Cublas::fromTable(fakeCublas()), "sm_90"));
    CHECK(codegen::activeDevice()->name() == "Fake GPU");
    auto want = runCpu(kStep, stepInputs(4));
    auto cf = onFake(kStep);
    std::vector<rt::Tensor> out;
    codegen::ExecError err;
    REQUIRE(cf->run(stepInputs(4), out, err));
    checkClose(out[0], want[0]);
    // Brought back to the host from another thread (as the runtime's pool may): the device
    // binds its context there first.
    REQUIRE(cf->run(stepInputs(4), out, err));
    std::string threadError;
    std::thread reader([&] {
      try {
        (void)out[0].raw();
      } catch (const std::exception& e) {
        threadError = e.what();
      }
    });
    reader.join();
    CHECK(threadError.empty());
    checkClose(out[0], want[0]);
    auto want2 = runCpu(kStats, statsInputs());
    auto cf2 = onFake(kStats);
    REQUIRE(cf2->run(statsInputs(), out, err));
    for (size_t i = 0; i < out.size(); ++i) checkClose(out[i], want2[i], 1e-12);
    codegen::activeDevice()->synchronize();

    // A launch the driver refuses: its message and the op.
    fake.failLaunch = true;
    REQUIRE_FALSE(cf->run(stepInputs(4), out, err));
    CHECK(err.message.find("cuLaunchKernel: CUDA_ERROR_LAUNCH_FAILED") != std::string::npos);
    CHECK(err.op != nullptr);
    fake.failLaunch = false;

    // Out of device memory: the allocator gives its cache back (cuMemFree) and tries again,
    // then reports it.
    fake.capacity = fake.used + 64;
    const char* big = R"(
func @g(%0: f32[1000]) -> (f32[1000]) {
  %1 = exp(%0) : f32[1000]
  return(%1)
}
)";
    auto cf3 = onFake(big);
    REQUIRE_FALSE(cf3->run({rt::Tensor::zeros(rt::DType::F32, {1000})}, out, err));
    CHECK(err.message.find("out of memory on the device (Fake GPU)") != std::string::npos);
    fake.capacity = size_t{1} << 30;
  }
  for (const char* call : {"cuInit", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetName", "cuDevicePrimaryCtxRetain",
                           "cuCtxSetCurrent", "cuModuleLoadData", "cuModuleGetFunction", "cuMemAlloc", "cuMemFree",
                           "cuMemcpyHtoD", "cuMemcpyDtoH", "cuMemcpyDtoD", "cuLaunchKernel", "cuCtxSynchronize",
                           "cuGetErrorName", "cuGetErrorString", "cublasCreate", "cublasSgemm", "cublasDgemm"}) {
    INFO(call);
    CHECK(fake.calls[call] > 0);
  }
  // A native executable's way (tdl build --device cuda): the kernel list as text, restored
  // onto the function traced again (the same IR text), with the PTX as embedded.
  {
    Fn built = parse(kStep);
    codegen::KernelImage image;
    image.mod = codegen::compilePtx(*built.fn, "sm_90");
    std::string list = codegen::serializeKernels(image.mod.kernels, *built.fn);
    Fn again = parse(kStep);
    codegen::KernelImage restored;
    restored.mod.ptx = image.mod.ptx;
    REQUIRE(codegen::restoreKernels(restored.mod.kernels, list, *again.fn));
    REQUIRE(restored.mod.kernels.size() == image.mod.kernels.size());
    for (size_t i = 0; i < restored.mod.kernels.size(); ++i) {
      CHECK(restored.mod.kernels[i].name == image.mod.kernels[i].name);
      CHECK(restored.mod.kernels[i].kind == image.mod.kernels[i].kind);
      CHECK(restored.mod.kernels[i].op->name() == image.mod.kernels[i].op->name());
    }
    CHECK_FALSE(codegen::restoreKernels(restored.mod.kernels, "k 1 100000 0\n", *again.fn));
    gpu->loading = again.fn;
    ir::Function& fn = *again.fn;
    auto cf = codegen::makeDeviceFn(std::move(again.module), fn, &restored);
    gpu->loading = nullptr;
    std::vector<rt::Tensor> out;
    codegen::ExecError err;
    REQUIRE(cf->run(stepInputs(4), out, err));
    checkClose(out[0], runCpu(kStep, stepInputs(4))[0]);
  }
  // Back to the emulated device: the fake's cached buffers go back to it (cublasDestroy with
  // the CUDA device).
  codegen::setActiveDevice(codegen::makeEmuDevice());
  CHECK(fake.calls["cublasDestroy"] == 1);
  CHECK(fake.calls["cuDevicePrimaryCtxRelease"] == 1);
  CHECK(fake.live.empty());
  gpu = nullptr;
}
