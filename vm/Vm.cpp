#include "vm/Vm.h"

#include <algorithm>

#include <fmt/format.h>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <map>
#include <set>

#include "runtime/Elementwise.h"

#include "vm/Builtins.h"
#include "vm/Compiler.h"
#include "vm/Disassembler.h"
#include "graph/GraphCall.h"

namespace tdl::vm {

namespace {

void report(Compilation& c, const ScriptError& e) {
  std::fflush(stdout);
  c.diags.report(Diagnostic{Severity::Error, e.loc, e.what(), e.trace});
}

}  // namespace

int runProgram(Compilation& c, const VmOptions& opts) {
  Program prog;
  try {
    Compiler compiler(prog, c.modules());
    compiler.compileAll();
    Interpreter vm(c.sources, c.modules(), prog, opts);
    std::unique_ptr<GraphFnCache> graphs = opts.eager ? nullptr : makeGraphFnCache(opts);
    vm.setGraphFnCache(graphs.get());
    vm.runModule(0);
  } catch (const ScriptError& e) {
    report(c, e);
    return 1;
  } catch (const ExitRequest& e) {
    std::fflush(stdout);
    return e.code;
  }
  std::fflush(stdout);
  return 0;
}

std::string bytecodeText(Compilation& c) {
  Program prog;
  Compiler compiler(prog, c.modules());
  compiler.compileAll();
  return disassemble(prog, c.sources);
}

std::string builtinSignatures(bool json) {
  SourceManager sm;
  std::vector<std::unique_ptr<Module>> modules;
  Program prog;
  Interpreter vm(sm, modules, prog, VmOptions{});
  nlohmann::json all = nlohmann::json::array();
  std::string text;
  for (int id = 0; id < kNumBuiltins; ++id) {
    DType dt;
    if (builtinIsDType(id, dt)) continue;  // bool, i32, ...: values, not functions
    if (builtinName(id)[0] == '_') continue;  // internal: under a standard module (dist)
    const BuiltinParams* p = builtinParams(vm, id);
    static const std::set<std::string> withGrad = [] {
      std::set<std::string> g;
#define BUILTIN(n)
#define BUILTIN_GRAD(n) g.insert(#n);
#include "frontend/builtins.def"
#undef BUILTIN
#define TDL_UNARY_BUILTIN(e, n, ...) \
  if (rt::props(rt::UnaryOp::e) & rt::kDiff) g.insert(#n);
#define TDL_BINARY_BUILTIN(e, n, ...) \
  if (rt::props(rt::BinaryOp::e) & rt::kDiff) g.insert(#n);
#include "runtime/ops.def"
      return g;
    }();
    nlohmann::json one = {{"name", builtinName(id)}, {"differentiable", withGrad.count(builtinName(id)) > 0}};
    std::string sig = std::string(builtinName(id)) + "(";
    if (p) {
      one["params"] = p->params;
      one["required"] = p->required;
      for (size_t i = 0; i < p->params.size(); ++i)
        sig += (i ? ", " : "") + std::string(p->params[i]) + (i < p->required ? "" : "=…");
    } else {
      one["params"] = nullptr;
      sig += "...";
    }
    all.push_back(one);
    text += sig + ")\n";
  }
  return json ? all.dump(1) + "\n" : text;
}

const BuiltinSignature* staticBuiltinSignature(const std::string& name) {
  static const std::map<std::string, BuiltinSignature> table = [] {
    std::map<std::string, BuiltinSignature> t;
    SourceManager sm;
    std::vector<std::unique_ptr<Module>> modules;
    Program prog;
    Interpreter vm(sm, modules, prog, VmOptions{});
    for (int id = 0; id < kNumBuiltins; ++id) {
      DType dt;
      if (builtinIsDType(id, dt)) continue;
      if (const BuiltinParams* p = builtinParams(vm, id))
        t[builtinName(id)] = BuiltinSignature{std::vector<std::string>(p->params.begin(), p->params.end()), p->required};
    }
    return t;
  }();
  auto it = table.find(name);
  return it == table.end() ? nullptr : &it->second;
}

// ------------------------------------------------------------------ REPL

ReplSession::ReplSession(VmOptions opts) : opts_(std::move(opts)) { opts_.eager = true; }

ReplSession::~ReplSession() { vm_.reset(); }

// Brackets still open at the end of text; 0 when a line ends inside a string (strings do not
// span lines: the input is complete, and its error is shown now, as Python's REPL does,
// rather than waiting for brackets the string swallowed).
int ReplSession::openBrackets(const std::string& text) {
  int depth = 0;
  bool inString = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\') ++i;
      else if (c == '"') inString = false;
      else if (c == '\n') return 0;
      continue;
    }
    if (c == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    if (c == '"') inString = true;
    else if (c == '(' || c == '[' || c == '{') ++depth;
    else if (c == ')' || c == ']' || c == '}') --depth;
  }
  return inString ? 0 : depth;
}

size_t ReplSession::linesSoFar() const { return static_cast<size_t>(std::count(source_.begin(), source_.end(), '\n')); }

bool ReplSession::lookup(const std::string& name, Value& out) const {
  if (!vm_ || comps_.empty() || !comps_.back()->loader || comps_.back()->modules().empty()) return false;
  const auto& names = comps_.back()->modules()[0]->globalNames;
  auto it = std::find(names.rbegin(), names.rend(), name);  // the latest binding of the name
  if (it == names.rend()) return false;
  int slot = static_cast<int>(names.rend() - it) - 1;
  try {
    out = vm_->globalValue(0, slot);
  } catch (const std::out_of_range&) {
    return false;
  }
  return !out.isUndef();
}

void ReplSession::collect(Compilation& c) {
  for (const Diagnostic& d : c.diags.all()) {
    if (d.severity == Severity::Error) {
      if (lastErrors_.empty()) lastMessage_ = d.message;
      lastErrors_.push_back(c.diags.render(d));
    } else {
      lastWarnings_.push_back(c.diags.render(d));
    }
  }
}

bool ReplSession::eval(const std::string& input) {
  lastErrors_.clear();
  lastWarnings_.clear();
  lastMessage_.clear();
  std::string candidate = source_ + input + "\n";
  auto comp = std::make_unique<Compilation>();
  comp->diags.setPrint(!quiet_);
  if (!comp->load("<repl>", SemaOptions{true, true}, &candidate)) {
    // The input is not kept, but its lines are counted: later errors name the line as the
    // session numbers it.
    source_ += std::string(static_cast<size_t>(std::count(input.begin(), input.end(), '\n')) + 1, '\n');
    collect(*comp);
    return true;
  }
  Module& main = *comp->modules()[0];
  size_t first = statements_;
  auto prog = std::make_unique<Program>();
  // The compilation and the program stay alive whatever happens: the VM's closures and
  // globals may refer to their code.
  struct Keep {
    ReplSession& s;
    std::unique_ptr<Compilation>& c;
    std::unique_ptr<Program>& p;
    ~Keep() {
      s.comps_.push_back(std::move(c));
      s.programs_.push_back(std::move(p));
    }
  };
  Compilation& c = *comp;
  Keep keep{*this, comp, prog};
  try {
    Compiler compiler(*prog, c.modules());
    prog->moduleCode.assign(c.modules().size(), nullptr);
    for (auto& m : c.modules()) {
      CompileOptions co;
      co.replPrint = m->id == 0;
      prog->moduleCode[static_cast<size_t>(m->id)] = compiler.compileModule(*m, m->id == 0 ? first : 0, co);
    }
    if (!vm_) vm_ = std::make_unique<Interpreter>(c.sources, c.modules(), *prog, opts_);
    else vm_->resetModules(c.modules(), *prog, &c.sources);
    vm_->replSink = sink_ ? sink_ : valueSink_;
    for (int dep : main.importedModules)
      if (dep >= 0) vm_->runModule(dep);
    source_ = candidate;
    statements_ = main.stmts.size();
    vm_->runCode(prog->moduleCode[0]);
  } catch (const ScriptError& e) {
    report(c, e);
  } catch (const ExitRequest& e) {
    exitCode_ = e.code;
    return false;
  } catch (const std::exception& e) {
    // A bug in TDL: the session goes on (its names are as the failed input left them).
    std::string msg = fmt::format("internal error: {}", e.what());
    if (!quiet_) {
      std::fflush(stdout);
      fmt::print(stderr, "{}\n", msg);
    }
    lastErrors_.push_back(msg);
    lastMessage_ = msg;
  }
  std::fflush(stdout);
  collect(c);
  return true;
}

bool ReplSession::evalType(const std::string& input, std::string& type) {
  type.clear();
  sink_ = [&](const Value& v) { type = v.isNone() ? "none" : typeText(v); };
  bool r = eval(input);
  sink_ = nullptr;
  if (vm_) vm_->replSink = valueSink_;
  return r;
}

}  // namespace tdl::vm
