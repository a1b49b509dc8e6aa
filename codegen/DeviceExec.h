// Graph fns on the active device (codegen/Device.h): the optimized IR run op by op, the
// data-parallel ops as kernels on the device, the rest on the host (DeviceExec.cpp).
#pragma once
#include <memory>

#include "codegen/Codegen.h"

namespace tdl::codegen {

// A CompiledFn whose run() executes `fn` on the active device (its kernels loaded now).
// Throws std::runtime_error when no device is selected or the kernels do not load.
std::unique_ptr<CompiledFn> compileForDevice(std::unique_ptr<ir::Module> module, ir::Function& fn,
                                             CompileTimes* times = nullptr);

}  // namespace tdl::codegen
