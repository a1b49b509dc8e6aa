// The emulated device (`--device emu`, Device.h): buffers in host memory behind 64-bit
// handles, kernels JIT-compiled for the host from the LLVM IR their PTX comes from and run
// over the launch plans' grids (HostKernelEmulator), the host's products for cuBLAS (the
// eager runtime's rt::gemm_strided: its bits, whatever the BLAS kernels). Copies to and from
// it are real copies, counted like a GPU's.
#include <cstdlib>
#include <cstring>

#include "codegen/Device.h"
#include "codegen/Ptx.h"
#include "runtime/Error.h"
#include "runtime/Matmul.h"

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
    // cuBLAS's column-major C = op(A) op(B) is the row-major C^T = op(B)^T op(A)^T on the same
    // memory: the product the host computes for the graph fn's row-major op, as it does it.
    if (dt == rt::DType::F32)
      rt::gemm_strided(tb, ta, n, m, k, alpha, reinterpret_cast<const float*>(b), ldb, reinterpret_cast<const float*>(a),
                       lda, beta, reinterpret_cast<float*>(c), ldc);
    else if (dt == rt::DType::F64)
      rt::gemm_strided(tb, ta, n, m, k, alpha, reinterpret_cast<const double*>(b), ldb,
                       reinterpret_cast<const double*>(a), lda, beta, reinterpret_cast<double*>(c), ldc);
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
