// codegen/Device: where graph fns run with `tdl run --device cuda|emu` (docs/gpu.md).
//
// One interface, two implementations below the driver calls:
//   - CudaDevice (DeviceCuda.cpp): the CUDA driver API and cuBLAS through the dlopen
//     loader of runtime/cuda/CudaDriver.h; kernels are the PTX of codegen/Ptx.cpp;
//   - EmuDevice (DeviceEmu.cpp): buffers in host memory behind the same 64-bit handles,
//     the same kernels (the LLVM IR the PTX comes from) JIT-compiled for the host and run
//     over the same grid and launch plans (HostKernelEmulator), OpenBLAS standing in for
//     cuBLAS.
// Everything above them is shared: the caching allocator, the residency of tensors
// (rt::Storage::device: a tensor computed on the device stays there until the host reads
// it; a host tensor is uploaded once and its copy kept until the host writes it), the
// transfer and launch counters, and the executor of graph fns (DeviceExec.cpp).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "codegen/Kernels.h"
#include "ir/IR.h"
#include "runtime/Tensor.h"
#include "runtime/cuda/CudaDriver.h"

namespace tdl::codegen {

// What moved and ran, over the process (--trace-report, --profile, tests).
struct DeviceStats {
  int64_t uploads = 0, downloads = 0;          // host <-> device copies
  int64_t bytesUp = 0, bytesDown = 0;
  int64_t launches = 0, gemms = 0;             // kernels and BLAS calls
  int64_t allocs = 0, cacheHits = 0;           // raw allocations, allocator cache reuse
  int64_t peakBytes = 0, liveBytes = 0;        // device memory held by tensors
};

// A graph fn's kernels as a CUDA device loads them: PTX (with the kernel list) and, where
// `ptxas` was there at build time, a cubin for the build's arch.
struct KernelImage {
  PtxModule mod;
  std::string cubin;
};

// The kernels of one graph fn, loaded on a device.
class DeviceKernels {
 public:
  virtual ~DeviceKernels() = default;
  virtual const std::vector<PtxKernel>& kernels() const = 0;
};

// The driver-level operations. Errors throw rt::Error with the driver's message.
class Device {
 public:
  virtual ~Device() = default;
  virtual std::string kind() const = 0;  // "cuda", "emu"
  virtual std::string name() const = 0;  // the device's name
  virtual uint64_t rawAlloc(size_t bytes) = 0;  // 0: no memory left
  virtual void rawFree(uint64_t p) = 0;
  virtual void copyIn(uint64_t dst, const void* src, size_t bytes) = 0;
  virtual void copyOut(void* dst, uint64_t src, size_t bytes) = 0;
  virtual void copyOnDevice(uint64_t dst, uint64_t src, size_t bytes) = 0;
  // The kernels of fn: CUDA loads `image` (its cubin when the driver takes it, else its
  // PTX); the emulated device builds them from fn itself (image may be null).
  virtual std::unique_ptr<DeviceKernels> load(const ir::Function& fn, const KernelImage* image) = 0;
  virtual void launch(DeviceKernels& m, size_t kernel, const KernelLaunch& l) = 0;
  // c := alpha * op(a) @ op(b) + beta * c in column-major order (BLAS's and cuBLAS's), f32
  // or f64; op(x) = x^T when trans.
  virtual void gemm(rt::DType dt, bool transA, bool transB, int64_t m, int64_t n, int64_t k, double alpha,
                    uint64_t a, int64_t lda, uint64_t b, int64_t ldb, double beta, uint64_t c, int64_t ldc) = 0;
  virtual void synchronize() = 0;
  // planLaunch's grid limit on this device.
  virtual unsigned maxGrid() const = 0;
};

// The device graph fns run on in this process (set once by selectDevice), or null.
Device* activeDevice();
// Opens "cuda" (`gpuArch` for PTX) and makes it the active device; returns "" or why it
// cannot ("no CUDA driver (...)", "no CUDA device"). (The emulated device, which needs
// LLVM: setActiveDevice(makeEmuDevice()).)
std::string selectDevice(const std::string& kind, const std::string& gpuArch = "sm_90");
const std::string& deviceGpuArch();
DeviceStats deviceStats();
void resetDeviceStats();  // tests
// One line for --trace-report and --profile: the device, launches, transfers and bytes
// moved, device memory ("" when no device is active).
std::string deviceReport();

// Residency (on the active device).
// The device address of t's data: its device copy, made (uploaded) when it has none.
uint64_t deviceData(const rt::Tensor& t);
// A new tensor whose only copy is on the device (contents uninitialized).
rt::Tensor deviceEmpty(rt::DType dt, const rt::Shape& shape);
// Whether t's current copy is on the device only.
bool onDeviceOnly(const rt::Tensor& t);

// Counted by the executor.
void noteLaunch();
void noteGemm();
void noteTransfer(bool toDevice, int64_t bytes);  // a copy outside tensor residency

std::unique_ptr<Device> makeEmuDevice();  // DeviceEmu.cpp (tdl_codegen: LLVM)
// CUDA on device 0 of `driver` (cuBLAS when `cublas` is available), kernels as PTX for
// gpuArch. Throws rt::Error with the driver's message.
std::unique_ptr<Device> makeCudaDevice(rt::cuda::CudaDriver driver, rt::cuda::Cublas cublas, const std::string& gpuArch);
// Makes `d` the active device, for the rest of the process (tests: CUDA over a fake driver).
void setActiveDevice(std::unique_ptr<Device> d, const std::string& gpuArch = "sm_90");

}  // namespace tdl::codegen
