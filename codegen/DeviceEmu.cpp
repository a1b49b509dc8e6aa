// The emulated device (`--device emu`, Device.h): buffers in host memory behind 64-bit
// handles, kernels JIT-compiled for the host from the LLVM IR their PTX comes from and run
// over the launch plans' grids (HostKernelEmulator), OpenBLAS for cuBLAS. Copies to and
// from it are real copies, counted like a GPU's.
#include <cblas.h>

#include <cstdlib>
#include <cstring>

#include "codegen/Device.h"
#include "codegen/Ptx.h"
#include "runtime/Error.h"

namespace tdl::codegen {

namespace {

class EmuKernels : public DeviceKernels {
 public:
  explicit EmuKernels(const ir::Function& fn) : emu(fn) {}
  const std::vector<PtxKernel>& kernels() const override { return emu.kernels(); }
  HostKernelEmulator emu;
};

class EmuDevice : public Device {
 public:
  std::string kind() const override { return "emu"; }
  std::string name() const override { return "emulated GPU (host CPU)"; }
  uint64_t rawAlloc(size_t bytes) override {
    size_t n = (bytes + 255) / 256 * 256;
    return reinterpret_cast<uint64_t>(std::aligned_alloc(256, n == 0 ? 256 : n));
  }
  void rawFree(uint64_t p) override { std::free(reinterpret_cast<void*>(p)); }
  void copyIn(uint64_t dst, const void* src, size_t bytes) override {
    std::memcpy(reinterpret_cast<void*>(dst), src, bytes);
  }
  void copyOut(void* dst, uint64_t src, size_t bytes) override {
    std::memcpy(dst, reinterpret_cast<const void*>(src), bytes);
  }
  void copyOnDevice(uint64_t dst, uint64_t src, size_t bytes) override {
    std::memcpy(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), bytes);
  }
  std::unique_ptr<DeviceKernels> load(const ir::Function& fn, const KernelImage*) override {
    return std::make_unique<EmuKernels>(fn);
  }
  void launch(DeviceKernels& m, size_t kernel, const KernelLaunch& l) override {
    // KernelLaunch carries buffers as 64-bit addresses: on this device, host pointers.
    static_cast<EmuKernels&>(m).emu.launch(kernel, l);
  }
  void gemm(rt::DType dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, uint64_t a, int64_t lda,
            uint64_t b, int64_t ldb, double beta, uint64_t c, int64_t ldc) override {
    auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    auto I = [](int64_t v) { return static_cast<blasint>(v); };
    if (dt == rt::DType::F32)
      cblas_sgemm(CblasColMajor, TA, TB, I(m), I(n), I(k), static_cast<float>(alpha), reinterpret_cast<const float*>(a),
                  I(lda), reinterpret_cast<const float*>(b), I(ldb), static_cast<float>(beta), reinterpret_cast<float*>(c),
                  I(ldc));
    else if (dt == rt::DType::F64)
      cblas_dgemm(CblasColMajor, TA, TB, I(m), I(n), I(k), alpha, reinterpret_cast<const double*>(a), I(lda),
                  reinterpret_cast<const double*>(b), I(ldb), beta, reinterpret_cast<double*>(c), I(ldc));
    else
      throw rt::InternalError("device gemm of " + std::string(rt::dtype_name(dt)));
  }
  void synchronize() override {}
  // Small grids: an emulated block costs its threads run one by one.
  unsigned maxGrid() const override { return 16; }
};

}  // namespace

std::unique_ptr<Device> makeEmuDevice() { return std::make_unique<EmuDevice>(); }

}  // namespace tdl::codegen
