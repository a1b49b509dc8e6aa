// Graph fns on the active device (codegen/Device.h): the optimized IR run op by op, the
// data-parallel ops as kernels on the device, the rest on the host (DeviceExec.cpp).
#pragma once
#include <memory>

#include "codegen/Codegen.h"

namespace tdl::codegen {

struct KernelImage;

// A CompiledFn whose run() executes `fn` on the active device, its kernels loaded now from
// `image` (CUDA; null on the emulated device). Throws when no device is selected or the
// kernels do not load. (No LLVM: native executables built with --device cuda use it.)
std::unique_ptr<CompiledFn> makeDeviceFn(std::unique_ptr<ir::Module> module, ir::Function& fn,
                                         const KernelImage* image);

// The same from the JIT (DeviceJit.cpp): the PTX compiled now for the active device's arch.
std::unique_ptr<CompiledFn> compileForDevice(std::unique_ptr<ir::Module> module, ir::Function& fn,
                                             CompileTimes* times = nullptr);

}  // namespace tdl::codegen
