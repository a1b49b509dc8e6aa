#include "runtime/cuda/CudaDriver.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <utility>
#include <vector>

namespace tdl::rt::cuda {

namespace {

template <class F> bool bind(void* lib, const char* name, F& slot, std::string* missing) {
  void* p = dlsym(lib, name);
  if (!p) {
    if (missing) *missing += (missing->empty() ? "" : ", ") + std::string(name);
    return false;
  }
  slot = reinterpret_cast<F>(p);
  return true;
}

// The entry points without which nothing works (the optional ones may be null).
bool complete(const CudaFunctions& f) {
  return f.cuInit && f.cuDeviceGetCount && f.cuDeviceGet && f.cuDeviceGetName && f.cuDevicePrimaryCtxRetain &&
         f.cuCtxSetCurrent && f.cuModuleLoadData && f.cuModuleGetFunction && f.cuMemAlloc && f.cuMemFree &&
         f.cuMemcpyHtoD && f.cuMemcpyDtoH && f.cuLaunchKernel && f.cuCtxSynchronize;
}

}  // namespace

CudaDriver CudaDriver::load(std::string* why) {
  CudaDriver d;
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    d.reason_ = fmt::format("no CUDA driver ({})", e ? e : "libcuda.so.1: cannot be loaded");
    if (why) *why = d.reason_;
    return d;
  }
  d.lib_ = lib;
  CudaFunctions& f = d.f_;
  std::string missing;
  bind(lib, "cuInit", f.cuInit, &missing);
  bind(lib, "cuDeviceGetCount", f.cuDeviceGetCount, &missing);
  bind(lib, "cuDeviceGet", f.cuDeviceGet, &missing);
  bind(lib, "cuDeviceGetName", f.cuDeviceGetName, &missing);
  bind(lib, "cuDevicePrimaryCtxRetain", f.cuDevicePrimaryCtxRetain, &missing);
  bind(lib, "cuDevicePrimaryCtxRelease_v2", f.cuDevicePrimaryCtxRelease, nullptr) ||
      bind(lib, "cuDevicePrimaryCtxRelease", f.cuDevicePrimaryCtxRelease, nullptr);
  bind(lib, "cuCtxSetCurrent", f.cuCtxSetCurrent, &missing);
  bind(lib, "cuModuleLoadData", f.cuModuleLoadData, &missing);
  bind(lib, "cuModuleUnload", f.cuModuleUnload, nullptr);
  bind(lib, "cuModuleGetFunction", f.cuModuleGetFunction, &missing);
  bind(lib, "cuMemAlloc_v2", f.cuMemAlloc, &missing);
  bind(lib, "cuMemFree_v2", f.cuMemFree, &missing);
  bind(lib, "cuMemcpyHtoD_v2", f.cuMemcpyHtoD, &missing);
  bind(lib, "cuMemcpyDtoH_v2", f.cuMemcpyDtoH, &missing);
  bind(lib, "cuMemcpyDtoD_v2", f.cuMemcpyDtoD, nullptr);
  bind(lib, "cuLaunchKernel", f.cuLaunchKernel, &missing);
  bind(lib, "cuCtxSynchronize", f.cuCtxSynchronize, &missing);
  bind(lib, "cuGetErrorName", f.cuGetErrorName, nullptr);
  bind(lib, "cuGetErrorString", f.cuGetErrorString, nullptr);
  if (!missing.empty()) {
    d.reason_ = fmt::format("the CUDA driver (libcuda.so.1) lacks {}", missing);
    if (why) *why = d.reason_;
    return d;
  }
  d.available_ = true;
  return d;
}

CudaDriver CudaDriver::fromTable(const CudaFunctions& fns) {
  CudaDriver d;
  d.f_ = fns;
  d.available_ = complete(fns);
  if (!d.available_) d.reason_ = "the CUDA driver table is incomplete";
  return d;
}

CudaDriver::CudaDriver(CudaDriver&& o) noexcept { *this = std::move(o); }

CudaDriver& CudaDriver::operator=(CudaDriver&& o) noexcept {
  if (this != &o) {
    f_ = o.f_;
    lib_ = std::exchange(o.lib_, nullptr);
    available_ = std::exchange(o.available_, false);
    initialized_ = std::exchange(o.initialized_, false);
    device_ = std::exchange(o.device_, -1);
    ctx_ = std::exchange(o.ctx_, nullptr);
    reason_ = std::move(o.reason_);
  }
  return *this;
}

CudaDriver::~CudaDriver() {
  if (ctx_ && f_.cuDevicePrimaryCtxRelease) f_.cuDevicePrimaryCtxRelease(device_);
  // The library stays loaded: the driver keeps threads and handlers of its own, and
  // unloading it while they run is not safe.
}

std::string CudaDriver::describe(CUresult r) const {
  const char* name = nullptr;
  const char* text = nullptr;
  if (f_.cuGetErrorName) f_.cuGetErrorName(r, &name);
  if (f_.cuGetErrorString) f_.cuGetErrorString(r, &text);
  std::string s = name ? name : fmt::format("CUDA error {}", r);
  if (text) s += fmt::format(" ({})", text);
  return s;
}

bool CudaDriver::check(CUresult r, const char* call) {
  if (r == CUDA_SUCCESS) return true;
  reason_ = fmt::format("{}: {}", call, describe(r));
  return false;
}

bool CudaDriver::ready(const char* call) {
  if (!available_) {
    if (reason_.empty()) reason_ = "no CUDA driver";
    return false;
  }
  if (!ctx_) {
    reason_ = fmt::format("{}: no device is open", call);
    return false;
  }
  return true;
}

int CudaDriver::deviceCount() {
  if (!available_) return 0;
  if (!initialized_) {
    CUresult r = f_.cuInit(0);
    if (r == CUDA_ERROR_NO_DEVICE) {
      reason_ = "no CUDA device";
      return 0;
    }
    if (!check(r, "cuInit")) return 0;
    initialized_ = true;
  }
  int n = 0;
  CUresult r = f_.cuDeviceGetCount(&n);
  if (r == CUDA_ERROR_NO_DEVICE || (r == CUDA_SUCCESS && n <= 0)) {
    reason_ = "no CUDA device";
    return 0;
  }
  if (!check(r, "cuDeviceGetCount")) return 0;
  return n;
}

bool CudaDriver::open(int ordinal) {
  int n = deviceCount();
  if (n == 0) return false;
  if (ordinal < 0 || ordinal >= n) {
    reason_ = fmt::format("no CUDA device {} (there are {})", ordinal, n);
    return false;
  }
  CUdevice dev = 0;
  if (!check(f_.cuDeviceGet(&dev, ordinal), "cuDeviceGet")) return false;
  CUcontext ctx = nullptr;
  if (!check(f_.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain")) return false;
  if (!check(f_.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")) {
    if (f_.cuDevicePrimaryCtxRelease) f_.cuDevicePrimaryCtxRelease(dev);
    return false;
  }
  device_ = dev;
  ctx_ = ctx;
  return true;
}

bool CudaDriver::bindThread() {
  thread_local CUcontext bound = nullptr;
  if (!ctx_ || bound == ctx_) return ctx_ != nullptr;
  if (!check(f_.cuCtxSetCurrent(ctx_), "cuCtxSetCurrent")) return false;
  bound = ctx_;
  return true;
}

std::string CudaDriver::deviceName() {
  if (!ready("cuDeviceGetName")) return "";
  char buf[256] = {0};
  if (!check(f_.cuDeviceGetName(buf, sizeof buf - 1, device_), "cuDeviceGetName")) return "";
  return buf;
}

CUmodule CudaDriver::loadModule(const std::string& ptx) {
  if (!ready("cuModuleLoadData")) return nullptr;
  CUmodule m = nullptr;
  if (!check(f_.cuModuleLoadData(&m, ptx.c_str()), "cuModuleLoadData")) return nullptr;
  return m;
}

CUfunction CudaDriver::function(CUmodule m, const std::string& name) {
  if (!ready("cuModuleGetFunction")) return nullptr;
  CUfunction fn = nullptr;
  if (!check(f_.cuModuleGetFunction(&fn, m, name.c_str()), ("cuModuleGetFunction(" + name + ")").c_str())) return nullptr;
  return fn;
}

bool CudaDriver::launch(CUfunction f, Dim3 grid, Dim3 block, const std::vector<KernelArg>& args, unsigned sharedBytes) {
  if (!ready("cuLaunchKernel")) return false;
  // cuLaunchKernel reads each argument through a pointer to its bytes.
  std::vector<void*> ptrs;
  ptrs.reserve(args.size());
  for (const KernelArg& a : args) ptrs.push_back(const_cast<unsigned char*>(a.bytes.data()));
  return check(f_.cuLaunchKernel(f, grid.x, grid.y, grid.z, block.x, block.y, block.z, sharedBytes, nullptr,
                                 ptrs.empty() ? nullptr : ptrs.data(), nullptr),
               "cuLaunchKernel");
}

bool CudaDriver::synchronize() {
  if (!ready("cuCtxSynchronize")) return false;
  return check(f_.cuCtxSynchronize(), "cuCtxSynchronize");
}

CUdeviceptr CudaDriver::alloc(size_t bytes) {
  if (!ready("cuMemAlloc")) return 0;
  CUdeviceptr p = 0;
  if (!check(f_.cuMemAlloc(&p, bytes == 0 ? 1 : bytes), "cuMemAlloc")) return 0;
  return p;
}

bool CudaDriver::free(CUdeviceptr p) {
  if (!ready("cuMemFree")) return false;
  return p == 0 || check(f_.cuMemFree(p), "cuMemFree");
}

bool CudaDriver::copyToDevice(CUdeviceptr dst, const void* src, size_t bytes) {
  if (!ready("cuMemcpyHtoD")) return false;
  return bytes == 0 || check(f_.cuMemcpyHtoD(dst, src, bytes), "cuMemcpyHtoD");
}

bool CudaDriver::copyToHost(void* dst, CUdeviceptr src, size_t bytes) {
  if (!ready("cuMemcpyDtoH")) return false;
  return bytes == 0 || check(f_.cuMemcpyDtoH(dst, src, bytes), "cuMemcpyDtoH");
}

bool CudaDriver::copyOnDevice(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
  if (!ready("cuMemcpyDtoD")) return false;
  if (bytes == 0) return true;
  if (f_.cuMemcpyDtoD) return check(f_.cuMemcpyDtoD(dst, src, bytes), "cuMemcpyDtoD");
  std::vector<unsigned char> tmp(bytes);
  return copyToHost(tmp.data(), src, bytes) && copyToDevice(dst, tmp.data(), bytes);
}

// ---- cuBLAS

Cublas Cublas::load(std::string* why) {
  Cublas c;
  std::string tried;
  for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}) {
    void* lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = dlerror();
      tried += fmt::format("{}{}", tried.empty() ? "" : "; ", e ? e : name);
      continue;
    }
    std::string missing;
    bind(lib, "cublasCreate_v2", c.f_.cublasCreate, &missing);
    bind(lib, "cublasDestroy_v2", c.f_.cublasDestroy, &missing);
    bind(lib, "cublasSgemm_v2", c.f_.cublasSgemm, &missing);
    bind(lib, "cublasDgemm_v2", c.f_.cublasDgemm, &missing);
    if (!missing.empty()) {
      tried += fmt::format("{}{} lacks {}", tried.empty() ? "" : "; ", name, missing);
      c.f_ = CublasFunctions{};
      dlclose(lib);
      continue;
    }
    c.lib_ = lib;
    c.available_ = true;
    return c;
  }
  if (why) *why = "no cuBLAS (" + tried + ")";
  return c;
}

Cublas Cublas::fromTable(const CublasFunctions& fns) {
  Cublas c;
  c.f_ = fns;
  c.available_ = fns.cublasCreate && fns.cublasDestroy && fns.cublasSgemm && fns.cublasDgemm;
  return c;
}

Cublas::Cublas(Cublas&& o) noexcept { *this = std::move(o); }
Cublas& Cublas::operator=(Cublas&& o) noexcept {
  if (this != &o) {
    f_ = o.f_;
    lib_ = std::exchange(o.lib_, nullptr);
    available_ = std::exchange(o.available_, false);
  }
  return *this;
}
Cublas::~Cublas() = default;

}  // namespace tdl::rt::cuda
