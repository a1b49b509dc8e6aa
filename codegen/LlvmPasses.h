// The LLVM steps every code generator of codegen/ shares: the new pass manager's default
// pipeline at a level, and a module written as an object file or assembly (PTX for the
// NVPTX target). Private to codegen/ (it includes LLVM headers).
#pragma once

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/Passes/OptimizationLevel.h>
#include <llvm/Support/CodeGen.h>
#include <llvm/Target/TargetMachine.h>

#include <string>

namespace tdl::codegen {

// exp of an f32 in CPU code: a call of the module's tdl_expf (emitExpF32's steps), which
// optimizeModule vectorizes (vscalefps with AVX-512) and inlines.
llvm::Value* callExpF32(llvm::IRBuilder<>& b, llvm::Module& m, llvm::Value* x);
// The per-module default pipeline at `level` (O0's own pipeline at O0).
void optimizeModule(llvm::Module& m, llvm::TargetMachine* tm, llvm::OptimizationLevel level = llvm::OptimizationLevel::O2);
// The module's code through `tm`; std::runtime_error(`cannot`) when the target cannot emit it.
std::string emitFile(llvm::Module& m, llvm::TargetMachine& tm, llvm::CodeGenFileType type, const char* cannot);

}  // namespace tdl::codegen
