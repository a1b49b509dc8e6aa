// Interpreter: runs compiled bytecode. One dispatch loop (Interpreter.cpp)
// over a fixed register stack; frames are register windows (a callee's
// parameters are the caller's argument registers). Builtins may call back
// into scripts through call().
//
// Errors: builtins and kernels throw rt::Error (a bare message); the loop
// turns every error into a ScriptError at the source position of the
// instruction that failed, with one trace line per active call
// (`in fn get at FILE:LINE:COL`, the position of that call), innermost first.
#pragma once
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "frontend/Diagnostics.h"
#include "vm/Builtins.h"
#include "vm/Annotations.h"
#include "vm/Chunk.h"

namespace tdl::vm {

struct VmOptions {
  bool eager = false;  // --eager: graph fns run as ordinary fns
  bool trace = false;  // print each instruction and its registers to stderr
  std::vector<std::string> scriptArgs;
};

// `exit(code)` unwinds to the driver with this.
struct ExitRequest {
  int code;
};

class Interpreter;

// The hook through which calls of graph fns reach the graph compiler's trace
// cache (issue 5). Without one, calling a graph fn outside --eager is an error.
class GraphFnCache {
 public:
  virtual ~GraphFnCache() = default;
  // Runs graph fn `fn` on `args` (bound to its parameters, in order) into `out`; false
  // when this call is to run as an ordinary fn instead (a native executable's graph fn
  // that was not compiled ahead of time for this signature), with `args` left intact.
  virtual bool call(Interpreter& vm, const ClosureObj& fn, std::vector<Value>& args, Value& out) = 0;
  // A call of graph fn `fn` that runs as an ordinary fn because an eager tape records (for
  // --trace-report).
  virtual void tapedCall(const ClosureObj& fn) { (void)fn; }
};

// Scripts may recurse this deep (frames), then `maximum recursion depth exceeded`.
constexpr size_t kMaxFrames = 10000;
// Registers of all frames together (a fixed stack: pointers into it stay valid).
constexpr size_t kStackValues = size_t(1) << 22;

class Interpreter {
 public:
  Interpreter(const SourceManager& sm, std::vector<std::unique_ptr<Module>>& modules, const Program& program,
              VmOptions opts);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Runs module `id`'s top-level code, after its imports; each module once.
  void runModule(int id);
  // Runs more top-level code of an already-run module (the REPL).
  void runCode(const FnProto* proto);
  // The REPL's modules grow between inputs.
  // The REPL: the modules, code and sources of the newest compilation of the session.
  void resetModules(std::vector<std::unique_ptr<Module>>& modules, const Program& program,
                    const SourceManager* sm = nullptr);

  // Calls a function value from C++ (builtins such as tree_map).
  Value call(const Value& fn, std::vector<Value> args, const std::vector<std::string>* kwNames = nullptr);

  const VmOptions& options() const { return opts_; }
  // Whether the running code is a graph fn's, or a fn it called (run in the VM: --eager, a
  // tape, or a call its compiled code could not serve).
  bool inGraphFn() const { return !frames_.empty() && frames_.back().inGraph; }
  FILE* out() const { return stdout; }
  void setGraphFnCache(GraphFnCache* c) { graphCache_ = c; }
  const SourceManager& sources() const { return *sm_; }
  // REPL: where the values of expression statements go (:type); unset: printed.
  std::function<void(const Value&)> replSink;
  // Every value the program can reach now (registers of the running frames,
  // globals): a tape gives them leaf ids when it starts.
  void forEachRoot(const std::function<void(Value&)>& f);
  // For the graph fn tracer: top-level values, modules, and the running call's position.
  const Value& globalValue(int module, int slot) const { return globals_.at(static_cast<size_t>(module)).at(static_cast<size_t>(slot)); }
  // `tdl build`: top-level fns exist before any code runs (they are hoisted), so the
  // builder creates their closures to trace graph fns ahead of time.
  void setGlobal(int module, int slot, Value v) { globals_.at(static_cast<size_t>(module)).at(static_cast<size_t>(slot)) = std::move(v); }
  const std::vector<std::unique_ptr<Module>>& modules() const { return *modules_; }
  Loc currentLoc() const;
  // The position in the innermost running frame of another module than the current one's:
  // where a script called the standard module fn that is running (dist.allreduce's line).
  Loc callerLoc() const;

 private:
  struct Frame {
    const FnProto* proto;
    Value closure;        // the running closure (none for module code)
    Value* R;             // registers
    const Instr* ip;      // next instruction
    Value* ret;           // where the result goes
    std::shared_ptr<const DimBindings> dims;  // the parameters' named dims, for a return annotation naming dims
    bool inGraph = false;  // a graph fn's frame, or one it called: top-level vars are not assigned here
  };

  void execute(size_t stopDepth);
  // Rethrows the error being handled as a traced one; frames above stopDepth go.
  [[noreturn]] void handleError(size_t stopDepth);
  void loop(size_t stopDepth);
  // Starts a call of `fn` whose arguments are at argv[0..argc); the callee's
  // registers start at argv (the arguments are moved into parameter order).
  // Returns true when a frame was pushed, false when the result is in *ret.
  bool callValue(const Value& fn, Value* argv, int argc, const std::vector<std::string>* kw, Value* ret);
  void bindArguments(const ClosureObj& c, Value* argv, int argc, const std::vector<std::string>* kw);
  void pushFrame(const FnProto* proto, Value closure, Value* R, Value* ret);
  DimBindings checkParams(const FnProto& p, Value* R);  // returns the named dims bound
  Value* stackTop() const;

  // Pieces of the dispatch loop (Interpreter.cpp, ValueOps.cpp).
  // x.f(args): puts the callee in R[A] and the arguments after it; returns their count.
  int prepareMethodCall(const Instr& in, Value* R);
  Value lookupMethod(const std::string& name, int module);
  void makeClosure(const Instr& in, Value* R, const Frame& fr);

  [[noreturn]] void rethrowWithTrace(const std::string& msg, const Loc* loc);
  std::vector<std::string> traceLines() const;
  void traceInstruction(const Frame& fr, const Instr* ip) const;

  const SourceManager* sm_;
  std::vector<std::unique_ptr<Module>>* modules_;
  const Program* program_;
  VmOptions opts_;
  GraphFnCache* graphCache_ = nullptr;

  Value* stack_;  // kStackValues registers (zeroed memory: all none)
  Value* stackHigh_;  // one past the highest register ever used
  void touchStack(Value* end) {
    if (end > stackHigh_) stackHigh_ = end;
  }
  std::vector<Frame> frames_;
  std::vector<std::vector<Value>> globals_;  // per module
  std::vector<std::map<std::string, int>> globalIndex_;  // per module: name → slot
  std::vector<bool> moduleDone_;
};

}  // namespace tdl::vm
