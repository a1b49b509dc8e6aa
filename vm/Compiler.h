// Compiler: the checked AST (names resolved by Sema) → register bytecode.
//
// One FnProto per function, lambda and module top level. Registers of a frame:
// Sema's local slots first (parameters are slots 0..n-1), then temporaries
// allocated like a stack while an expression is compiled. Top-level names are
// module globals (GetGlobal/SetGlobal). Top-level fns are hoisted: their
// closures are created when the module's code starts.
#pragma once
#include <vector>

#include "frontend/Ast.h"
#include "vm/Chunk.h"

namespace tdl::vm {

// The VM opcode of a binary operator (not and/or, which short-circuit).
Op binOpcode(BinOp op);

struct CompileOptions {
  bool replPrint = false;  // print the value of each top-level expression statement
};

class Compiler {
 public:
  Compiler(Program& program, std::vector<std::unique_ptr<Module>>& modules);

  // Compiles every module's top-level code (and the functions in it).
  void compileAll();
  // Compiles module `m`'s top-level statements from index `firstStmt` on
  // (the REPL compiles each new input this way); returns its proto.
  const FnProto* compileModule(Module& m, size_t firstStmt = 0, CompileOptions opts = {});

 private:
  Program& program_;
  std::vector<std::unique_ptr<Module>>& modules_;
};

}  // namespace tdl::vm
