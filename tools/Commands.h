// The commands of the `tdl` tool that live outside the driver's argument
// handling. Each returns the process exit status.
#pragma once
#include <string>
#include <vector>

#include "frontend/Frontend.h"

namespace tdl {

struct RunOptions {
  std::string file;
  std::vector<std::string> scriptArgs;
  bool eager = false;
  bool traceReport = false;
  bool profile = false;
  bool trace = false;  // print each VM instruction and its registers
  bool jsonDiagnostics = false;
  std::string device = "cpu";
  std::string gpuArch = "sm_90";
  int np = 0;  // --np N: run as N processes through mpirun (SPEC §12)
  std::vector<std::string> forwarded;  // the options to pass on to each process
};

struct EmitOptions {
  std::string fn;
  std::string args;
};

int runScript(const RunOptions& opts);
int emitStage(Compilation& c, const std::string& stage, const EmitOptions& opts);
struct BuildOptions {
  std::string file, out;
  int optLevel = 2;             // -O0..-O3
  std::string targetCpu = "host";  // --target-cpu: host, generic, or an LLVM CPU name
  std::string target;           // --target: a cross triple (aarch64-linux-gnu); empty: this machine
  bool emitObj = false;         // --emit-obj: OUT is one relocatable object (image, table, code)
  bool emitLlvm = false;        // --emit-llvm: OUT is the LLVM IR of the compiled graph fns
  bool lib = false;             // --lib: OUT is a shared library, with a C header beside it
  std::string device = "cpu";   // --device cuda: embed each graph fn's kernels (docs/gpu.md)
  std::string gpuArch = "sm_90";
  bool jsonDiagnostics = false;
};
int buildExecutable(const BuildOptions& opts);
// --target and --target-cpu of tdl build and tdl export: `cross` is the cross target they
// name ("aarch64-linux-gnu"), or empty for this machine; `targetCpu` "host" becomes
// "generic" for a cross target. False after printing the error.
bool resolveTarget(const std::string& target, std::string& targetCpu, std::string& cross);
// The C compiler of the runner cross-built for `cross` (its runner.cfg). False after printing the error.
bool crossCompiler(const std::string& cross, std::string& cc);
// Links a relocatable object of compileAot into a shared object with the C compiler `cc`.
// False after printing the error.
bool linkSharedObject(const std::string& cc, const std::string& object, std::string& so);
// `tdl export FILE --fn NAME... -o OUT` and `tdl inspect M.tdlm` (tools/Export.cpp).
struct ExportOptions {
  std::string file, out;
  std::vector<std::string> fns;
  std::vector<std::string> scriptArgs;
  int optLevel = 2;
  std::string quantize;   // --quantize int8 (docs/quantization.md); empty: f32 as traced
  std::string calibrate;  // --calibrate DATA: the fn's inputs (.npy, or .safetensors by input name)
  std::string target;     // --target: a cross triple (the code linked as shared objects); empty: this machine
  std::string targetCpu = "host";  // --target-cpu
};
int exportModel(const ExportOptions& opts);
int inspectModel(const std::string& path, bool json);
// `tdl runtime M.tdlm... -o libtdl_model.so` (tools/Build.cpp): a minimal libtdl_model.so for
// the models' target that holds only the kernels they use (docs/edge.md).
int buildRuntime(const std::vector<std::string>& models, const std::string& out);
// `tdl serve M.tdlm` (tools/Serve.cpp).
struct ServeOptions {
  std::string model, name, host = "127.0.0.1";
  int port = 8501;
  int maxBatch = 64;
  int batchTimeoutUs = 1000;
  int threads = 0;  // 0: the number of cores, at most 4
  size_t maxBodyBytes = 16u << 20;
  int64_t maxResponseValues = int64_t{1} << 25;  // numbers in one answer (its JSON is built in memory)
  int requestTimeoutS = 30;
};
int serveModel(const ServeOptions& opts);
int runRepl();
// A line of the REPL that starts with ':' (:help, :type, :time, :quit), its output on
// stdout/stderr; keepGoing false when it ends the session. Shared with the notebook kernel.
namespace vm { class ReplSession; }
bool replCommand(vm::ReplSession& session, const std::string& line, bool& keepGoing);
// tdl jupyter (tools/jupyter/Kernel.cpp)
int runJupyterKernel(const std::string& connectionFile);
struct JupyterInstallOptions {
  bool user = false;
  std::string prefix;
  std::string name = "tdl";
};
int installJupyterKernel(const JupyterInstallOptions& opts);
int runLanguageServer();

}  // namespace tdl
