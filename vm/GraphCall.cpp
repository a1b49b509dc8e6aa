// The trace cache of graph fns (see GraphCall.h).
#include "vm/GraphCall.h"

#include <functional>

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <sstream>

#include "codegen/Codegen.h"
#include "ir/Pipeline.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "vm/Compiler.h"
#include "vm/GraphTracer.h"

namespace tdl::vm {

namespace {

double msSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

struct Version {
  std::string key;
  std::vector<ParamLeaf> leaves;
  std::unique_ptr<codegen::CompiledFn> code;
  ResultTemplate result;
  std::map<uint64_t, CallChain> chains;
  int64_t calls = 0;
  std::vector<Value> pinned;  // the function values of the key (keyed by address: kept alive)
  double traceMs = 0, optMs = 0, lowerMs = 0, llvmMs = 0;
};

std::string signatureText(const std::vector<ParamLeaf>& leaves) {
  std::string s;
  for (size_t i = 0; i < leaves.size(); ++i) s += (i ? ", " : "") + leaves[i].type.str() + (leaves[i].weak ? " (weak)" : "");
  return s;
}

// Whether the tensors fit the version's parameter types (symbols bound consistently).
bool matches(const Version& v, const std::vector<rt::Tensor>& xs, const std::vector<bool>& weak) {
  if (v.leaves.size() != xs.size()) return false;
  std::map<std::string, int64_t> bound;
  for (size_t i = 0; i < xs.size(); ++i) {
    const ir::TensorType& t = v.leaves[i].type;
    if (t.dtype != xs[i].dtype() || v.leaves[i].weak != weak[i] || t.rank() != xs[i].rank()) return false;
    for (size_t d = 0; d < t.dims.size(); ++d) {
      int64_t n = xs[i].dim(static_cast<int64_t>(d));
      if (t.dims[d].is_known()) {
        if (t.dims[d].size != n) return false;
      } else {
        auto [it, fresh] = bound.emplace(t.dims[d].sym, n);
        if (!fresh && it->second != n) return false;
      }
    }
  }
  return true;
}

class GraphCache : public GraphFnCache {
 public:
  GraphCache(const VmOptions& o, bool report) : opts_(o), report_(report) {}
  ~GraphCache() override {
    if (report_) report();
  }

  Value call(Interpreter& vm, const ClosureObj& fn, std::vector<Value>& args) override {
    std::vector<rt::Tensor> xs;
    std::vector<bool> weak;
    std::string key;
    std::vector<size_t> firstLeaf;
    for (auto& a : args) {
      firstLeaf.push_back(xs.size());
      flattenArgs({a}, xs, weak, key);
    }
    auto& versions = fns_[fn.proto];
    names_[fn.proto] = fn.proto->name;
    Version* v = nullptr;
    for (auto& c : versions)
      if (c->key == key && matches(*c, xs, weak)) v = c.get();
    if (!v) v = addVersion(vm, fn, args, xs, weak, key, firstLeaf, versions);
    ++v->calls;
    std::vector<rt::Tensor> outs;
    codegen::ExecError err;
    if (!v->code->run(xs, outs, err)) {
      Loc loc = err.op ? err.op->loc : Loc();
      ScriptError e(loc, err.message);
      auto it = v->chains.find(locKey(loc));
      if (it != v->chains.end())
        for (auto& [name, at] : it->second) e.trace.push_back(fmt::format("in fn {} at {}", name, where(vm, at)));
      e.trace.push_back(fmt::format("in fn {} at {}", fn.proto->name, where(vm, vm.currentLoc())));
      throw e;
    }
    return v->result.build(outs);
  }

 private:
  static std::string where(Interpreter& vm, const Loc& l) {
    if (l.file >= vm.sources().size()) return "?";
    return fmt::format("{}:{}:{}", vm.sources().file(l.file).path, l.line, l.col);
  }

  Version* addVersion(Interpreter& vm, const ClosureObj& fn, std::vector<Value>& args, const std::vector<rt::Tensor>& xs,
                      const std::vector<bool>& weak, const std::string& key, const std::vector<size_t>& firstLeaf,
                      std::vector<std::unique_ptr<Version>>& versions) {
    auto v = std::make_unique<Version>();
    v->key = key;
    std::function<void(const Value&)> pin = [&](const Value& a) {
      if (a.tag() == Tag::Closure || a.tag() == Tag::Native) v->pinned.push_back(a);
      else if (a.isSeq())
        for (auto& i : a.as<SeqObj>()->items) pin(i);
      else if (a.tag() == Tag::Record)
        for (auto& i : a.as<RecordObj>()->vals) pin(i);
    };
    for (auto& a : args) pin(a);
    std::vector<std::string> syms;
    auto fresh = [&] {
      std::string s = fmt::format("?{}", syms.size());
      syms.push_back(s);
      return s;
    };
    for (size_t i = 0; i < xs.size(); ++i) v->leaves.push_back(ParamLeaf{ir::TensorType::of(xs[i].dtype(), xs[i].shape()), weak[i]});
    // Annotated parameters: `?` and named dims are symbolic.
    const FnProto& p = *fn.proto;
    for (size_t a = 0; a < args.size() && a < p.paramTypes.size(); ++a) {
      const TypeExpr* t = p.paramTypes[a];
      if (!t || t->kind != TypeExpr::Tensor || t->anyShape || !args[a].isNumeric()) continue;
      ParamLeaf& leaf = v->leaves[firstLeaf[a]];
      for (size_t d = 0; d < t->dims.size() && d < leaf.type.dims.size(); ++d) {
        if (t->dims[d].kind == tdl::Dim::Named) {
          leaf.type.dims[d] = ir::Dim::symbolic(t->dims[d].name);
          if (std::find(syms.begin(), syms.end(), t->dims[d].name) == syms.end()) syms.push_back(t->dims[d].name);
        } else if (t->dims[d].kind == tdl::Dim::Any) {
          leaf.type.dims[d] = ir::Dim::symbolic(fresh());
        }
      }
    }
    // Generalize dims that differ from an earlier trace of the same structure.
    for (auto& old : versions) {
      if (old->key != key || old->leaves.size() != v->leaves.size()) continue;
      bool same = true;
      for (size_t i = 0; i < xs.size() && same; ++i)
        same = old->leaves[i].type.dtype == v->leaves[i].type.dtype && old->leaves[i].type.rank() == v->leaves[i].type.rank();
      if (!same) continue;
      for (size_t i = 0; i < xs.size(); ++i)
        for (size_t d = 0; d < v->leaves[i].type.dims.size(); ++d) {
          ir::Dim& nd = v->leaves[i].type.dims[d];
          const ir::Dim& od = old->leaves[i].type.dims[d];
          if (!nd.is_known()) continue;
          if (od.is_symbolic() && nd.size != 1) nd = ir::Dim::symbolic(fresh());
          else if (od.is_known() && od.size != nd.size && od.size != 1 && nd.size != 1) nd = ir::Dim::symbolic(fresh());
        }
      break;
    }
    auto t0 = std::chrono::steady_clock::now();
    Trace tr = traceGraphFn(vm, fn, args, v->leaves, syms);
    auto errs = ir::verify(*tr.fn);
    if (!errs.empty())
      throw InternalError(fmt::format("the trace of graph fn '{}' is invalid: {}\n{}", p.name, errs[0], ir::to_string(*tr.fn)));
    v->traceMs = msSince(t0);
    auto t1 = std::chrono::steady_clock::now();
    ir::PipelineOptions po;
    po.max_rounds = ir::kDefaultMaxRounds;
    ir::default_pipeline()->run(*tr.module, po);
    v->optMs = msSince(t1);
    codegen::CompileTimes ct;
    try {
      v->code = codegen::compile(std::move(tr.module), *tr.fn, &ct);
    } catch (const std::runtime_error& e) {
      throw InternalError(e.what());
    }
    v->lowerMs = ct.lowerMs;
    v->llvmMs = ct.llvmMs;
    v->result = std::move(tr.result);
    v->chains = std::move(tr.chains);
    versions.push_back(std::move(v));
    return versions.back().get();
  }

  void report() {
    std::fflush(stdout);
    for (auto& [proto, versions] : fns_) {
      fmt::print(stderr, "graph fn {}: {} trace{}\n", names_[proto], versions.size(), versions.size() == 1 ? "" : "s");
      for (size_t i = 0; i < versions.size(); ++i) {
        const Version& v = *versions[i];
        fmt::print(stderr, "  #{} ({}): {} call{} served; trace {:.2f} ms, optimize {:.2f} ms, lower {:.2f} ms, llvm {:.2f} ms\n",
                   i + 1, signatureText(v.leaves), v.calls, v.calls == 1 ? "" : "s", v.traceMs, v.optMs, v.lowerMs,
                   v.llvmMs);
      }
    }
  }

  VmOptions opts_;
  bool report_;
  std::map<const FnProto*, std::vector<std::unique_ptr<Version>>> fns_;
  std::map<const FnProto*, std::string> names_;
};

// ------------------------------------------------------------------ emit

std::vector<std::string> splitTop(const std::string& s) {
  std::vector<std::string> out;
  int depth = 0;
  std::string cur;
  for (char c : s) {
    if (c == '[' || c == '(') ++depth;
    if (c == ']' || c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace

namespace {
bool traceReportOn = false;
}  // namespace

void setTraceReport(bool on) { traceReportOn = on; }

std::unique_ptr<GraphFnCache> makeGraphFnCache(const VmOptions& opts) {
  return std::make_unique<GraphCache>(opts, traceReportOn);
}

int emitGraphStage(Compilation& c, const std::string& stage, const std::string& fnName, const std::string& argText) {
  if (fnName.empty()) {
    fmt::print(stderr, "tdl: error: --stage {} needs --fn NAME (and --args 'SIGNATURE')\n", stage);
    return 2;
  }
  Program prog;
  Compiler compiler(prog, c.modules());
  compiler.compileAll();
  VmOptions vo;
  vo.eager = true;
  Interpreter vm(c.sources, c.modules(), prog, vo);
  // Run the top level (output discarded) so that captured lets and fns exist.
  std::fflush(stdout);
  int saved = dup(1);
  FILE* devnull = std::fopen("/dev/null", "w");
  if (devnull) dup2(fileno(devnull), 1);
  try {
    vm.runModule(0);
  } catch (...) {
  }
  std::fflush(stdout);
  if (saved >= 0) dup2(saved, 1), close(saved);
  if (devnull) std::fclose(devnull);
  const Module& m = *c.modules()[0];
  const Value* fv = nullptr;
  for (size_t i = 0; i < m.globalNames.size(); ++i)
    if (m.globalNames[i] == fnName) fv = &vm.globalValue(0, static_cast<int>(i));
  if (!fv || fv->tag() != Tag::Closure) {
    fmt::print(stderr, "tdl: error: no fn named '{}' in {}\n", fnName, m.path);
    return 2;
  }
  std::vector<ParamLeaf> leaves;
  std::vector<Value> args;
  std::vector<std::string> syms;
  for (const std::string& a : splitTop(argText)) {
    size_t br = a.find('[');
    std::string dt = a.substr(0, br);
    auto od = rt::dtype_from_name(dt);
    if (!od) {
      fmt::print(stderr, "tdl: error: bad --args entry '{}' (expected like f32[4, 784])\n", a);
      return 2;
    }
    DType d = *od;
    ir::TensorType t(d, {});
    rt::Shape shape;
    if (br != std::string::npos) {
      std::string inner = a.substr(br + 1, a.size() - br - 2);
      for (const std::string& dim : splitTop(inner)) {
        if (!dim.empty() && std::isdigit(static_cast<unsigned char>(dim[0]))) {
          t.dims.push_back(ir::Dim::known(std::stoll(dim)));
          shape.push_back(std::stoll(dim));
        } else {
          std::string name = dim == "?" ? fmt::format("?{}", syms.size()) : dim;
          if (std::find(syms.begin(), syms.end(), name) == syms.end()) syms.push_back(name);
          t.dims.push_back(ir::Dim::symbolic(name));
          shape.push_back(2);
        }
      }
    }
    leaves.push_back(ParamLeaf{t, false});
    args.push_back(fromTensor(rt::Tensor::zeros(d, shape)));
  }
  try {
    Trace tr = traceGraphFn(vm, *fv->as<ClosureObj>(), args, leaves, syms);
    if (stage != "ir") {
      ir::PipelineOptions po;
      po.max_rounds = ir::kDefaultMaxRounds;
      ir::default_pipeline()->run(*tr.module, po);
    }
    std::string text = stage == "ir" || stage == "opt" ? ir::to_string(*tr.fn) : codegen::emitStage(*tr.fn, stage);
    std::fwrite(text.data(), 1, text.size(), stdout);
  } catch (const ScriptError& e) {
    c.diags.report(Diagnostic{Severity::Error, e.loc, e.what(), e.trace});
    return 1;
  }
  return 0;
}

}  // namespace tdl::vm
