// The runner of a shared library (`tdl build --lib`): the C functions of the generated
// header call graph fns of the embedded program through these entry points. The program's
// top level runs once, at tdl_lib_init or before the first call (as an import would), so
// that the graph fns see their top-level fns and lets; each call then goes through the
// same trace cache as the executable, with the code compiled ahead of time.
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "frontend/Diagnostics.h"
#include "runtime/Tensor.h"
#include "tools/capi/CTensor.h"  // the C view of a tensor (the generated header declares the same struct)
#include "tools/runner/Image.h"
#include "vm/Compiler.h"
#include "graph/GraphTracer.h"
#include "vm/Interpreter.h"


namespace tdl::runner {
namespace {

struct LibState {
  SourceManager sources;
  std::unique_ptr<DiagEngine> diags;
  std::vector<std::unique_ptr<Module>> modules;
  vm::Program prog;
  std::unique_ptr<vm::Interpreter> interp;
  std::unique_ptr<vm::GraphFnCache> graphs;
  int status = -1;  // -1: not started, 0: ready, 1: failed
  std::string error;
};

LibState& state() {
  static LibState s;
  return s;
}
std::mutex libMutex;
thread_local std::string lastError;

std::string describe(LibState& s, const ScriptError& e) {
  std::string where;
  if (e.loc.valid() && e.loc.file < s.sources.size())
    where = fmt::format("{}:{}:{}: ", s.sources.file(e.loc.file).path, e.loc.line, e.loc.col);
  return where + "error: " + e.what();
}

int init(int argc, char** argv) {
  LibState& s = state();
  if (s.status >= 0) return s.status;
  s.status = 1;
  s.diags = std::make_unique<DiagEngine>(s.sources);
  if (!loadImage(s.sources, s.modules, s.error)) return 1;
  vm::VmOptions opts;
  for (int i = 1; i < argc; ++i) opts.scriptArgs.emplace_back(argv[i]);
  try {
    vm::Compiler compiler(s.prog, s.modules);
    compiler.compileAll();
    s.interp = std::make_unique<vm::Interpreter>(s.sources, s.modules, s.prog, opts);
    s.graphs = vm::makeGraphFnCache(makeAotBackend(), std::getenv("TDL_TRACE_REPORT") != nullptr);
    s.interp->setGraphFnCache(s.graphs.get());
    s.interp->runModule(0);
  } catch (const ScriptError& e) {
    std::fflush(stdout);
    s.diags->report(Diagnostic{Severity::Error, e.loc, e.what(), e.trace});
    s.error = describe(s, e);
    return 1;
  } catch (const vm::ExitRequest& e) {
    s.error = fmt::format("the program called exit({}) while loading", e.code);
    return 1;
  } catch (const std::exception& e) {
    s.error = std::string("internal error: ") + e.what();
    return 1;
  }
  std::fflush(stdout);
  s.status = 0;
  return 0;
}

}  // namespace
}  // namespace tdl::runner

using namespace tdl;

extern "C" {

int tdl_lib_init(int argc, char** argv) {
  std::lock_guard<std::mutex> lock(runner::libMutex);
  int rc = runner::init(argc, argv);
  if (rc != 0) runner::lastError = runner::state().error;
  return rc;
}

const char* tdl_lib_last_error(void) { return runner::lastError.c_str(); }

void tdl_lib_free(tdl_tensor* t) { ctensor::freeC(t); }

// Calls the graph fn in global slot `slot` of module `module`. `structure` describes each
// parameter in flattening order: "t" a tensor leaf, "(" ... ")" a tuple, "{name:" ... "}"
// a record — as the header's parameter list flattens them; `outs` receives `nouts` leaves.
int tdl_lib_call(int32_t module, int32_t slot, const char* structure, const tdl_tensor* const* args, int32_t nargs,
                 tdl_tensor* outs, int32_t nouts) {
  std::lock_guard<std::mutex> lock(runner::libMutex);
  runner::LibState& s = runner::state();
  if (runner::init(0, nullptr) != 0) {
    runner::lastError = s.error;
    return 1;
  }
  try {
    if (nouts > 0 && !outs) throw rt::Error("the out pointer is NULL");
    // Tensor leaves from the C structs (copied: the caller keeps its memory).
    int32_t next = 0;
    std::function<vm::Value(const char*&)> build = [&](const char*& p) -> vm::Value {
      if (*p == 't') {
        ++p;
        if (next >= nargs) throw rt::Error("too few tensors for the parameters");
        if (!args[next]) throw rt::Error(fmt::format("tensor argument {} is NULL", next));
        const tdl_tensor& t = *args[next++];
        return vm::fromTensor(ctensor::fromC(t, fmt::format("tensor argument {}", next - 1)));
      }
      if (*p == '(') {
        ++p;
        std::vector<vm::Value> items;
        while (*p && *p != ')') items.push_back(build(p));
        if (*p == ')') ++p;
        return vm::makeTuple(std::move(items));
      }
      if (*p == '{') {
        ++p;
        std::vector<std::string> names;
        std::vector<vm::Value> vals;
        while (*p && *p != '}') {
          const char* colon = std::strchr(p, ':');
          if (!colon) throw rt::Error("bad parameter structure");
          names.emplace_back(p, colon);
          p = colon + 1;
          vals.push_back(build(p));
        }
        if (*p == '}') ++p;
        return vm::makeRecord(std::make_shared<const std::vector<std::string>>(std::move(names)), std::move(vals));
      }
      throw rt::Error("bad parameter structure");
    };
    std::vector<vm::Value> params;
    for (const char* p = structure; *p;) params.push_back(build(p));
    if (next != nargs) throw rt::Error("too many tensors for the parameters");
    const vm::Value& fn = s.interp->globalValue(module, slot);
    vm::Value result = s.interp->call(fn, std::move(params));
    std::vector<rt::Tensor> leaves;
    std::vector<bool> weak;
    std::string key;
    vm::flattenArgs({result}, leaves, weak, key);
    if (static_cast<int32_t>(leaves.size()) != nouts)
      throw rt::Error(fmt::format("the graph fn returned {} tensors, the header declares {}", leaves.size(), nouts));
    ctensor::toC(leaves, outs);
  } catch (const ScriptError& e) {
    runner::lastError = runner::describe(s, e);
    return 1;
  } catch (const rt::Error& e) {
    runner::lastError = std::string("error: ") + e.what();
    return 1;
  } catch (const vm::ExitRequest& e) {
    runner::lastError = fmt::format("error: the graph fn called exit({})", e.code);
    return 1;
  } catch (const std::exception& e) {
    runner::lastError = std::string("internal error: ") + e.what();
    return 1;
  }
  return 0;
}

}  // extern "C"
