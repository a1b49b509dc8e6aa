// The CUDA device (`--device cuda`, Device.h): the driver API and cuBLAS through the dlopen
// loader (runtime/cuda/CudaDriver.h); kernels are the PTX of codegen/Ptx.cpp, loaded with
// cuModuleLoadData (the driver JIT-compiles it for the GPU it has).
#include <fmt/format.h>

#include "codegen/Device.h"
#include "runtime/Error.h"

namespace tdl::codegen {

namespace {

using namespace rt::cuda;

class CudaKernels : public DeviceKernels {
 public:
  const std::vector<PtxKernel>& kernels() const override { return mod.kernels; }
  PtxModule mod;
  CUmodule module = nullptr;
  std::vector<CUfunction> fns;
};

constexpr int kCublasOpN = 0, kCublasOpT = 1;

class CudaDevice : public Device {
 public:
  CudaDevice(CudaDriver d, Cublas c, std::string arch) : drv_(std::move(d)), blas_(std::move(c)), arch_(std::move(arch)) {
    if (!drv_.open(0)) throw rt::Error(drv_.error());
    name_ = drv_.deviceName();
  }
  ~CudaDevice() override {
    if (handle_ && blas_.fns().cublasDestroy) blas_.fns().cublasDestroy(handle_);
  }
  std::string kind() const override { return "cuda"; }
  std::string name() const override { return name_; }
  // Every entry binds the context to the calling thread first: a tensor may be brought back
  // to the host from any thread of the runtime's pool.
  uint64_t rawAlloc(size_t bytes) override { return drv_.bindThread() ? drv_.alloc(bytes) : 0; }
  void rawFree(uint64_t p) override {
    if (drv_.bindThread()) drv_.free(p);  // at exit the driver may be gone: errors are moot
  }
  void copyIn(uint64_t dst, const void* src, size_t bytes) override {
    ok(drv_.bindThread() && drv_.copyToDevice(dst, src, bytes));
  }
  void copyOut(void* dst, uint64_t src, size_t bytes) override {
    ok(drv_.bindThread() && drv_.copyToHost(dst, src, bytes));
  }
  void copyOnDevice(uint64_t dst, uint64_t src, size_t bytes) override {
    ok(drv_.bindThread() && drv_.copyOnDevice(dst, src, bytes));
  }
  std::unique_ptr<DeviceKernels> load(const ir::Function&, const KernelImage* image) override {
    if (!image) throw rt::InternalError("--device cuda: a graph fn without its PTX");
    ok(drv_.bindThread());
    auto k = std::make_unique<CudaKernels>();
    k->mod = image->mod;
    if (k->mod.kernels.empty()) return k;
    if (!image->cubin.empty()) k->module = drv_.loadModule(image->cubin);  // for another GPU: the PTX
    if (!k->module) k->module = drv_.loadModule(k->mod.ptx);
    ok(k->module != nullptr);
    for (const PtxKernel& pk : k->mod.kernels) {
      k->fns.push_back(drv_.function(k->module, pk.name));
      ok(k->fns.back() != nullptr);
    }
    return k;
  }
  void launch(DeviceKernels& m, size_t kernel, const KernelLaunch& l) override {
    auto& k = static_cast<CudaKernels&>(m);
    ok(drv_.bindThread());
    std::vector<KernelArg> args;
    args.reserve(l.args.size());
    for (const auto& a : l.args) args.push_back(KernelArg{a});
    ok(drv_.launch(k.fns.at(kernel), Dim3{l.grid, 1, 1}, Dim3{l.block, 1, 1}, args));
  }
  void gemm(rt::DType dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, uint64_t a, int64_t lda,
            uint64_t b, int64_t ldb, double beta, uint64_t c, int64_t ldc) override {
    if (!blas_.available()) throw rt::Error("--device cuda: matmul needs cuBLAS (libcublas.so), which was not found");
    const CublasFunctions& f = blas_.fns();
    ok(drv_.bindThread());
    if (!handle_) {
      int st = f.cublasCreate(&handle_);
      if (st != 0) throw rt::Error(fmt::format("cublasCreate: status {}", st));
    }
    int TA = ta ? kCublasOpT : kCublasOpN, TB = tb ? kCublasOpT : kCublasOpN;
    auto I = [](int64_t v) { return static_cast<int>(v); };
    int st = 0;
    if (dt == rt::DType::F32) {
      float al = static_cast<float>(alpha), be = static_cast<float>(beta);
      st = f.cublasSgemm(handle_, TA, TB, I(m), I(n), I(k), &al, reinterpret_cast<const float*>(a), I(lda),
                         reinterpret_cast<const float*>(b), I(ldb), &be, reinterpret_cast<float*>(c), I(ldc));
    } else {
      st = f.cublasDgemm(handle_, TA, TB, I(m), I(n), I(k), &alpha, reinterpret_cast<const double*>(a), I(lda),
                         reinterpret_cast<const double*>(b), I(ldb), &beta, reinterpret_cast<double*>(c), I(ldc));
    }
    if (st != 0) throw rt::Error(fmt::format("cublas{}gemm: status {}", dt == rt::DType::F32 ? 'S' : 'D', st));
  }
  void synchronize() override { ok(drv_.bindThread() && drv_.synchronize()); }
  unsigned maxGrid() const override { return 65535; }

 private:
  void ok(bool good) {
    if (!good) throw rt::Error("--device cuda: " + drv_.error());
  }
  CudaDriver drv_;
  Cublas blas_;
  std::string arch_, name_;
  void* handle_ = nullptr;
};

}  // namespace

std::unique_ptr<Device> makeCudaDevice(CudaDriver driver, Cublas cublas, const std::string& gpuArch) {
  return std::make_unique<CudaDevice>(std::move(driver), std::move(cublas), gpuArch);
}

}  // namespace tdl::codegen
