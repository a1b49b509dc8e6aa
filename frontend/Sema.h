// Sema: name resolution and the static rules of SPEC §3 and §6.
//   - block scopes; `let`/`var`; shadowing; hoisted top-level fns and imports;
//     top-level names visible everywhere inside function bodies
//   - assignment only to a var; break/continue inside loops; return inside fns
//   - ragged tensor literals; tensor-literal marking
//   - graph fns: no use of a top-level var (directly or through called fns);
//     no recursion among graph fns (skipped with --eager, which allows it)
// Fills Expr::ref, Pattern::slot, FnDecl::numLocals/captures, Module globals.
#pragma once
#include "frontend/Ast.h"
#include "frontend/Diagnostics.h"

namespace tdl {

struct SemaOptions {
  bool eager = false;  // --eager: graph fns run as plain fns (recursion allowed)
  // A REPL or notebook session (its inputs one growing source): a later top-level fn or type
  // alias of a name replaces the earlier one (a cell run again), as Python's def does.
  bool session = false;
};

// Checks every module (imports before importers). Returns false on errors.
bool analyze(std::vector<std::unique_ptr<Module>>& modules, DiagEngine& diags, SemaOptions opts = {});

bool isBuiltinName(const std::string& name);

// A builtin's parameters for the static check of keyword arguments (issue 19: a misspelt
// keyword is found by `tdl check`): the VM provides them (vm::staticBuiltinSignature);
// null for a builtin that binds its own arguments, or without a provider.
struct BuiltinSignature {
  std::vector<std::string> params;
  size_t required = 0;
};
using BuiltinSignatureFn = const BuiltinSignature* (*)(const std::string& name);
void setBuiltinSignatures(BuiltinSignatureFn fn);

}  // namespace tdl
