// compileForDevice (DeviceExec.h): graph fns of `tdl run --device cuda|emu`, their kernels
// made now (PTX through LLVM's NVPTX backend for CUDA; the emulated device builds its own).
#include <chrono>

#include "codegen/Device.h"
#include "codegen/DeviceExec.h"
#include "codegen/Ptx.h"

namespace tdl::codegen {

std::unique_ptr<CompiledFn> compileForDevice(std::unique_ptr<ir::Module> module, ir::Function& fn,
                                             CompileTimes* times) {
  Device* dev = activeDevice();
  if (!dev) throw std::runtime_error("no device is selected");
  auto t0 = std::chrono::steady_clock::now();
  KernelImage image;
  if (dev->kind() == "cuda") image.mod = compilePtx(fn, deviceGpuArch());
  auto cf = makeDeviceFn(std::move(module), fn, dev->kind() == "cuda" ? &image : nullptr);
  if (times) times->llvmMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return cf;
}

}  // namespace tdl::codegen
