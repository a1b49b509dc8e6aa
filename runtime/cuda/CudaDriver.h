// The CUDA driver API (and optionally cuBLAS), loaded at run time with dlopen, so that the
// same `tdl` binary builds and runs on machines without CUDA or a GPU. No CUDA header is
// needed: the few types and signatures used are declared here as the driver exports
// them (cuda.h, CUDA 12/13, the _v2 entry points).
//
// Errors are messages, never exceptions: every call returns false (or an empty handle)
// and fills error() with "cuXxx: CUDA_ERROR_... (text)".
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace tdl::rt::cuda {

using CUresult = int;
using CUdevice = int;
using CUcontext = struct CUctx_st*;
using CUmodule = struct CUmod_st*;
using CUfunction = struct CUfunc_st*;
using CUstream = struct CUstream_st*;
using CUdeviceptr = unsigned long long;

inline constexpr CUresult CUDA_SUCCESS = 0;
inline constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;

// The driver entry points we use, as the table a real driver (dlsym) or a test fills.
struct CudaFunctions {
  CUresult (*cuInit)(unsigned flags) = nullptr;
  CUresult (*cuDeviceGetCount)(int* count) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice* dev, int ordinal) = nullptr;
  CUresult (*cuDeviceGetName)(char* name, int len, CUdevice dev) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext* ctx, CUdevice dev) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice dev) = nullptr;  // optional
  CUresult (*cuCtxSetCurrent)(CUcontext ctx) = nullptr;
  CUresult (*cuModuleLoadData)(CUmodule* mod, const void* image) = nullptr;
  CUresult (*cuModuleUnload)(CUmodule mod) = nullptr;  // optional
  CUresult (*cuModuleGetFunction)(CUfunction* fn, CUmodule mod, const char* name) = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr* p, size_t bytes) = nullptr;  // cuMemAlloc_v2
  CUresult (*cuMemFree)(CUdeviceptr p) = nullptr;                  // cuMemFree_v2
  CUresult (*cuMemcpyHtoD)(CUdeviceptr dst, const void* src, size_t bytes) = nullptr;  // _v2
  CUresult (*cuMemcpyDtoH)(void* dst, CUdeviceptr src, size_t bytes) = nullptr;        // _v2
  CUresult (*cuMemcpyDtoD)(CUdeviceptr dst, CUdeviceptr src, size_t bytes) = nullptr;  // _v2, optional
  CUresult (*cuLaunchKernel)(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                             unsigned bz, unsigned sharedBytes, CUstream stream, void** params,
                             void** extra) = nullptr;
  CUresult (*cuCtxSynchronize)() = nullptr;
  CUresult (*cuGetErrorName)(CUresult e, const char** s) = nullptr;    // optional
  CUresult (*cuGetErrorString)(CUresult e, const char** s) = nullptr;  // optional
};

// cuBLAS's single-precision GEMM (column-major, as cuBLAS defines it).
struct CublasFunctions {
  int (*cublasCreate)(void** handle) = nullptr;    // cublasCreate_v2
  int (*cublasDestroy)(void* handle) = nullptr;    // cublasDestroy_v2
  int (*cublasSgemm)(void* handle, int transa, int transb, int m, int n, int k, const float* alpha,
                     const float* a, int lda, const float* b, int ldb, const float* beta, float* c,
                     int ldc) = nullptr;           // cublasSgemm_v2
  int (*cublasDgemm)(void* handle, int transa, int transb, int m, int n, int k, const double* alpha,
                     const double* a, int lda, const double* b, int ldb, const double* beta, double* c,
                     int ldc) = nullptr;           // cublasDgemm_v2
};

// One kernel argument: its bytes, as cuLaunchKernel reads them through a pointer.
struct KernelArg {
  std::vector<unsigned char> bytes;
  template <class T> static KernelArg of(T v) {
    KernelArg a;
    a.bytes.resize(sizeof(T));
    std::memcpy(a.bytes.data(), &v, sizeof(T));
    return a;
  }
};

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

class CudaDriver {
 public:
  // dlopen("libcuda.so.1") and resolve the table; when that fails, the driver is not
  // available() and `why` (and reason()) say why.
  static CudaDriver load(std::string* why = nullptr);
  // A table filled by the caller (tests: a fake driver).
  static CudaDriver fromTable(const CudaFunctions& fns);

  CudaDriver() = default;
  CudaDriver(CudaDriver&& o) noexcept;
  CudaDriver& operator=(CudaDriver&& o) noexcept;
  CudaDriver(const CudaDriver&) = delete;
  CudaDriver& operator=(const CudaDriver&) = delete;
  ~CudaDriver();

  // The library and every required entry point are there (nothing is called yet).
  bool available() const { return available_; }
  // Why not available(), or the last error.
  const std::string& reason() const { return reason_; }
  const std::string& error() const { return reason_; }

  // cuInit + cuDeviceGetCount; 0 (with error() set) when either fails. A driver that
  // reports CUDA_ERROR_NO_DEVICE gives 0 with error() "no CUDA device".
  int deviceCount();
  // Makes device `ordinal` current (its primary context); false with error() set.
  bool open(int ordinal = 0);
  std::string deviceName();  // of the open device
  // Makes the open device's context current on the calling thread (a driver call from a
  // thread without one fails); once per thread. False with error() set.
  bool bindThread();

  CUmodule loadModule(const std::string& ptx);  // null on error
  CUfunction function(CUmodule m, const std::string& name);
  bool launch(CUfunction f, Dim3 grid, Dim3 block, const std::vector<KernelArg>& args, unsigned sharedBytes = 0);
  bool synchronize();

  CUdeviceptr alloc(size_t bytes);  // 0 on error
  bool free(CUdeviceptr p);
  bool copyToDevice(CUdeviceptr dst, const void* src, size_t bytes);
  bool copyToHost(void* dst, CUdeviceptr src, size_t bytes);
  // Through cuMemcpyDtoD, or through the host when the driver lacks it.
  bool copyOnDevice(CUdeviceptr dst, CUdeviceptr src, size_t bytes);

  // "CUDA_ERROR_X (text)" for a result code, through cuGetErrorName/String when present.
  std::string describe(CUresult r) const;

 private:
  bool check(CUresult r, const char* call);
  bool ready(const char* call);
  CudaFunctions f_;
  void* lib_ = nullptr;
  bool available_ = false;
  bool initialized_ = false;
  CUdevice device_ = -1;
  CUcontext ctx_ = nullptr;
  std::string reason_;
};

// cuBLAS by dlopen (libcublas.so.13, .12, .11, libcublas.so); optional.
class Cublas {
 public:
  static Cublas load(std::string* why = nullptr);
  // A table filled by the caller (tests); available when every entry is set.
  static Cublas fromTable(const CublasFunctions& fns);
  Cublas() = default;
  Cublas(Cublas&& o) noexcept;
  Cublas& operator=(Cublas&& o) noexcept;
  Cublas(const Cublas&) = delete;
  Cublas& operator=(const Cublas&) = delete;
  ~Cublas();
  bool available() const { return available_; }
  const CublasFunctions& fns() const { return f_; }

 private:
  CublasFunctions f_;
  void* lib_ = nullptr;
  bool available_ = false;
};

}  // namespace tdl::rt::cuda
