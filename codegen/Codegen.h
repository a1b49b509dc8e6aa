// codegen/: the optimized IR of a graph fn → LLVM IR → native code through ORC LLJIT.
//
// The generated function is `i32 NAME(ptr ctx)`: control flow (cond/while) becomes basic
// blocks; values live in the call's slots (one rt::Tensor per IR value); each op is a
// call into the runtime ABI of Exec.cpp (`tdl_op`, `tdl_truth`, `tdl_move`, `tdl_copy`).
// A failing op returns a non-zero status that the generated code passes straight up (no
// C++ exception ever unwinds through JIT frames); the context keeps the message and the
// failing op, whose `loc` the caller turns into a diagnostic.
#pragma once
#include <atomic>
#include <future>
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

  // What runs the function instead of `entry` (graph fns on a device: DeviceExec.cpp).
  struct Runner {
    virtual ~Runner() = default;
    virtual bool run(const std::vector<rt::Tensor>& inputs, std::vector<rt::Tensor>& outputs, ExecError& err) = 0;
  };
  std::unique_ptr<Runner> runner;

  std::unique_ptr<ir::Module> module;  // owns the IR
  ir::Function* fn = nullptr;
  int (*entry)(void*) = nullptr;
  std::vector<OpEntry> ops;
  int numSlots = 0;
  std::vector<int> paramSlots, resultSlots;
  std::vector<std::string> syms;  // symbolic dims, indexed like ExecCtx::syms
  mutable std::atomic<int64_t> reusedBuffers{0};  // over all calls (--trace-report)
  // A first version (machine code generated without optimization, fast to make) has its
  // optimized version compiled on a background thread: tierUp swaps it in when ready.
  std::future<std::unique_ptr<CompiledFn>> optimized;
  double llvmMs = 0;  // the time this version's LLVM compile took (the background one's)
};

// Replaces a first version by its optimized one once that is compiled (a cheap check;
// nothing changes while it is not ready, or when it failed). Returns whether it swapped.
bool tierUp(std::unique_ptr<CompiledFn>& cf);

struct CompileTimes {
  double lowerMs = 0, llvmMs = 0;
  bool cached = false;  // loaded from the compile cache on disk (codegen/DiskCache.h)
};

// Compiles `fn` (owned by `module`) into native code.
std::unique_ptr<CompiledFn> compile(std::unique_ptr<ir::Module> module, ir::Function& fn, CompileTimes* times = nullptr);

// The op table and slots of a compiled function as text, and back onto a function whose
// text form is the same (ops are named by their position in program order). A native
// executable rebuilds its ahead-of-time compiled functions' tables this way.
std::string serializeTable(const CompiledFn& cf);
bool restoreTable(CompiledFn& cf, const std::string& text, ir::Function& fn);

// Ahead-of-time compilation (`tdl build`): `fn` → a relocatable object file whose one
// external function `entry` is the compiled body (`int entry(void* ctx)`, calling the
// tdl_* runtime ABI by name), its LLVM IR text, and its op table (serializeTable).
struct AotOptions {
  std::string entry;          // the symbol of the function
  std::string triple;         // --target: an LLVM target triple; empty: this machine's
  std::string cpu = "host";  // --target-cpu: "host", "generic" or an LLVM CPU name
  int optLevel = 2;           // -O0..-O3
};
struct AotResult {
  std::string object, llvm, table;
};
AotResult compileAot(ir::Function& fn, const AotOptions& opts);
// Whether --target-cpu names a CPU of `triple` (empty: the host's target; "host" is valid
// only there, "generic" everywhere).
bool validTargetCpu(const std::string& cpu, const std::string& triple = "");
// The CPU names LLVM knows for `triple`, space-separated (for error messages).
std::string knownTargetCpus(const std::string& triple);
// Whether LLVM (as linked) can generate code for `triple`; otherwise `why`.
bool knownTriple(const std::string& triple, std::string& why);

// The host CPU as compileAot's "host" sees it: LLVM triple, CPU name and feature list
// ("+avx2,-avx512f,..."), recorded in exported models (docs/formats/tdlm.md).
struct HostTarget {
  std::string triple, cpu, features;
};
HostTarget hostTarget();
// The same for code compiled for `triple` (empty: this machine's) and a --target-cpu:
// the normalized triple, the CPU and the features LLVM enables for it ("+neon,+crc,...").
HostTarget targetOf(const std::string& triple, const std::string& cpu);
// Whether code compiled for `triple` with `features` runs on this host: the same triple and
// every "+f" feature present here; otherwise `why` names what differs.
bool hostRuns(const std::string& triple, const std::string& features, std::string& why);

// Links a relocatable object of compileAot (whose function is `entry`) into the JIT, in a
// JITDylib of its own (so that entry names of different loads never clash), and restores
// its op table onto `fn`, which must print as the function the object was compiled from.
// Throws std::runtime_error when the object does not link or the table does not fit.
std::unique_ptr<CompiledFn> loadObject(std::unique_ptr<ir::Module> module, ir::Function& fn, const std::string& object,
                                       const std::string& entry, const std::string& table);

// Text of the later stages for `tdl emit`: "llvm" (optimized LLVM IR) or "asm".
std::string emitStage(ir::Function& fn, const std::string& stage);

}  // namespace tdl::codegen
