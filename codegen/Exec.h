// The run-time side of compiled graph fns: the op table and the call context that the
// `extern "C"` entry points of Exec.cpp work on.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "codegen/Codegen.h"

namespace tdl::codegen {

// One op of the table: what `tdl_op(ctx, id)` runs.
struct OpEntry {
  const ir::Op* op = nullptr;
  std::vector<int32_t> in, out;            // slots
  std::vector<std::vector<int>> outSyms;   // per result, per dim: the sym index or -1
  bool moveFirst = false;                  // operand 0 is dead afterwards: take its buffer
};

struct ExecCtx {
  const CompiledFn* fn = nullptr;
  rt::Tensor* slots = nullptr;
  int64_t* syms = nullptr;
  std::string err;
  int32_t errOp = -1;
};

// Addresses of the ABI functions, for the JIT's symbol table.
struct AbiSymbol {
  const char* name;
  void* addr;
};
std::vector<AbiSymbol> abiSymbols();

}  // namespace tdl::codegen
