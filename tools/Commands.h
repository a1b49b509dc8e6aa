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
int buildExecutable(const std::string& file, const std::string& out, bool jsonDiagnostics);
int runRepl();
int runLanguageServer();

}  // namespace tdl
