// The runner of a native executable (`tdl build`): the embedded program image runs in the
// VM — without the parser, so without ANTLR, and without LLVM — and each graph fn call
// whose optimized trace is one that the build compiled ahead of time runs that native code;
// any other runs as an ordinary fn (eager mode is the reference semantics, SPEC §6).
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "codegen/Device.h"
#include "frontend/Diagnostics.h"
#include "tools/runner/Image.h"
#include "vm/Compiler.h"
#include "graph/GraphCache.h"
#include "tools/ModelValue.h"
#include "vm/Interpreter.h"

namespace tdl {
namespace {

int runImage(int argc, char** argv) {
  SourceManager sources;
  DiagEngine diags(sources);
  diags.setColor(isatty(2) && std::getenv("NO_COLOR") == nullptr);
  std::vector<std::unique_ptr<Module>> modules;
  std::string why;
  if (!runner::loadImage(sources, modules, why)) {
    fmt::print(stderr, "{}: error: {}\n", argc > 0 ? argv[0] : "program", why);
    return 3;
  }
  std::string device = runner::selectDevice();
  if (!device.empty()) {
    fmt::print(stderr, "{}: error: {}\n", argc > 0 ? argv[0] : "program", device);
    return 1;
  }
  vm::VmOptions opts;
  for (int i = 1; i < argc; ++i) opts.scriptArgs.emplace_back(argv[i]);
  installModelLoader();  // load_model: models whose code is shared objects (tdl export --target)
  vm::Program prog;
  try {
    vm::Compiler compiler(prog, modules);
    compiler.compileAll();
    vm::Interpreter interp(sources, modules, prog, opts);
    auto graphs = vm::makeGraphFnCache(runner::makeAotBackend(), std::getenv("TDL_TRACE_REPORT") != nullptr);
    interp.setGraphFnCache(graphs.get());
    interp.runModule(0);
    interp.setGraphFnCache(nullptr);
    graphs.reset();  // its report first
    if (std::getenv("TDL_TRACE_REPORT")) {
      std::string dev = codegen::deviceReport();
      std::fwrite(dev.data(), 1, dev.size(), stderr);
    }
  } catch (const ScriptError& e) {
    std::fflush(stdout);
    diags.report(Diagnostic{Severity::Error, e.loc, e.what(), e.trace});
    return 1;
  } catch (const vm::ExitRequest& e) {
    std::fflush(stdout);
    return e.code;
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace tdl

int main(int argc, char** argv) {
  return tdl::runMainGuarded([&] { return tdl::runImage(argc, argv); });
}
