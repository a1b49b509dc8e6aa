// Calls of graph fns outside --eager (SPEC §6): the trace cache. A call's signature is
// looked up among the function's traces; a miss traces (vm/GraphTracer), optimizes
// (ir/Pipeline) and compiles (codegen/) a new version, generalizing dims that differ from
// an earlier trace of the same structure to symbolic ones. Run-time errors of compiled
// code become ScriptErrors at the failing op's position, with the inline call chain and
// the graph fn's own call line.
#pragma once
#include <memory>
#include <string>

#include "frontend/Frontend.h"
#include "vm/Interpreter.h"

namespace tdl::vm {

std::unique_ptr<GraphFnCache> makeGraphFnCache(const VmOptions& opts);
// --trace-report: the caches made from now on print their traces, times and calls at exit.
void setTraceReport(bool on);

// `tdl emit FILE --stage ir|opt|llvm|asm --fn F --args 'f32[4, 784], f32[784, 10]'`.
// Returns the exit status.
int emitGraphStage(Compilation& c, const std::string& stage, const std::string& fn, const std::string& args);

}  // namespace tdl::vm
