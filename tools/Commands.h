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
  bool emitObj = false;         // --emit-obj: OUT is one relocatable object (image, table, code)
  bool emitLlvm = false;        // --emit-llvm: OUT is the LLVM IR of the compiled graph fns
  bool lib = false;             // --lib: OUT is a shared library, with a C header beside it
  bool jsonDiagnostics = false;
};
int buildExecutable(const BuildOptions& opts);
int runRepl();
int runLanguageServer();

}  // namespace tdl
