// codegen/: the optimized IR of a graph fn → LLVM IR → native code through ORC LLJIT.
//
// The generated function is `i32 NAME(ptr ctx)`: control flow (cond/while) becomes basic
// blocks; values live in the call's slots (one rt::Tensor per IR value); each op is a
// call into the runtime ABI of Exec.cpp (`tdl_op`, `tdl_truth`, `tdl_move`, `tdl_copy`).
// A failing op returns a non-zero status that the generated code passes straight up (no
// C++ exception ever unwinds through JIT frames); the context keeps the message and the
// failing op, whose `loc` the caller turns into a diagnostic.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir/IR.h"

namespace tdl::codegen {

// What a failed call reports.
struct ExecError {
  std::string message;
  const ir::Op* op = nullptr;  // the failing op (its loc), or null
};

struct OpEntry;  // Exec.h

// One compiled graph fn for one signature. Keeps the IR alive (the op table points into it).
class CompiledFn {
 public:
  CompiledFn();
  ~CompiledFn();
  CompiledFn(const CompiledFn&) = delete;
  CompiledFn& operator=(const CompiledFn&) = delete;

  // Runs the function; false (with err filled) when an op failed.
  bool run(const std::vector<rt::Tensor>& inputs, std::vector<rt::Tensor>& outputs, ExecError& err) const;

  std::unique_ptr<ir::Module> module;  // owns the IR
  ir::Function* fn = nullptr;
  int (*entry)(void*) = nullptr;
  std::vector<OpEntry> ops;
  int numSlots = 0;
  std::vector<int> paramSlots, resultSlots;
  std::vector<std::string> syms;  // symbolic dims, indexed like ExecCtx::syms
};

struct CompileTimes {
  double lowerMs = 0, llvmMs = 0;
};

// Compiles `fn` (owned by `module`) into native code.
std::unique_ptr<CompiledFn> compile(std::unique_ptr<ir::Module> module, ir::Function& fn, CompileTimes* times = nullptr);

// Text of the later stages for `tdl emit`: "llvm" (optimized LLVM IR) or "asm".
std::string emitStage(ir::Function& fn, const std::string& stage);

}  // namespace tdl::codegen
