// The one way TDL makes an LLJIT for the host (compiled graph fns, the PTX kernels' host
// emulator, the kernels' math in tests): the native target, code generation at the
// default level (-O2), position-independent code (the compile cache links the same objects
// into shared libraries) and the process's own symbols (the C library's math) visible.
#pragma once

#include <memory>

#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Target/TargetMachine.h>

namespace tdl::codegen {

struct HostJit {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  std::unique_ptr<llvm::TargetMachine> tm;  // for passes and object emission
};

llvm::Expected<HostJit> makeHostJit();

// A target machine for the host like the JIT's (same CPU, features and relocation model)
// with code generation at `level`: each thread that emits objects makes its own.
llvm::Expected<std::unique_ptr<llvm::TargetMachine>> makeHostTargetMachine(llvm::CodeGenOptLevel level);

}  // namespace tdl::codegen
