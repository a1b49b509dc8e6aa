// The trace cache of graph fns, independent of how a trace becomes native code: the JIT
// of `tdl run` (vm/GraphCall.cpp, through LLVM) or the code compiled ahead of time into a
// native executable by `tdl build` (tools/runner). A call's signature is looked up among
// the function's versions; a miss traces (vm/GraphTracer), optimizes (ir/Pipeline) and
// hands the optimized IR to the backend, generalizing dims that differ from an earlier
// trace of the same structure to symbolic ones.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "codegen/Codegen.h"
#include "graph/GraphTracer.h"
#include "vm/Interpreter.h"

namespace tdl::vm {

class GraphBackend {
 public:
  virtual ~GraphBackend() = default;
  // Native code for the optimized function `fn` (owned by `module`); null when this
  // version is to run as an ordinary fn in the VM.
  virtual std::unique_ptr<codegen::CompiledFn> compile(std::unique_ptr<ir::Module> module, ir::Function& fn,
                                                       codegen::CompileTimes* times) = 0;
};

// `report`: print the traces, their times and calls served at exit (--trace-report).
std::unique_ptr<GraphFnCache> makeGraphFnCache(std::unique_ptr<GraphBackend> backend, bool report);

// The parameter types of a call's tensor leaves `xs` (flattened from `args`): their
// dtypes and shapes, with the dims that the parameters' annotations name `?` or N
// symbolic (their names appended to `syms`), also inside annotated records and tuples.
std::vector<ParamLeaf> signatureLeaves(const FnProto& fn, const std::vector<Value>& args,
                                       const std::vector<rt::Tensor>& xs, const std::vector<bool>& weak,
                                       std::vector<std::string>& syms);

// Traces `fn` for `args` with the parameter types `leaves`, verifies and optimizes.
Trace traceOptimized(Interpreter& vm, const ClosureObj& fn, const std::vector<Value>& args,
                     const std::vector<ParamLeaf>& leaves, const std::vector<std::string>& syms, double* traceMs,
                     double* optMs);

// Signatures from annotations (`tdl build`, `tdl emit` without --args): why a parameter's
// annotation does not fix its type ("" when it does); how many rank-0 leaves of it could
// also arrive as weak scalars (f32, i64, bool); and a value of its type (symbolic dims
// sized 2), those leaves weak where bit k of `weakMask` is set (k counts them in order).
std::string unshapedParam(const TypeExpr* t, const std::string& name);
int weakableLeaves(const TypeExpr& t);
Value placeholderArg(const TypeExpr& t, unsigned weakMask, int& k);

// What identifies an optimized function for the code compiled ahead of time: a 64-bit
// FNV-1a hash of its text form (which prints every op, type and attribute).
uint64_t irHash(const std::string& text);

}  // namespace tdl::vm
