// The trace cache of graph fns (see GraphCache.h).
#include "graph/GraphCache.h"
#include "vm/Format.h"

#include "runtime/Profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>

#include "ir/Pipeline.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "vm/Compiler.h"

namespace tdl::vm {

namespace {

double msSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

struct Version {
  std::string key;
  std::vector<ParamLeaf> leaves;
  std::unique_ptr<codegen::CompiledFn> code;  // null: runs in the VM
  ResultTemplate result;
  std::map<LocKey, CallChain> chains;
  int64_t calls = 0;
  int64_t failed = 0;  // calls whose compiled code stopped with an error (not served)
  std::vector<Value> pinned;  // the function values of the key (keyed by address: kept alive)
  double traceMs = 0, optMs = 0, lowerMs = 0, llvmMs = 0;
  double optimizedMs = 0;   // the background compile of the optimized version
  int64_t optimizedAt = 0;  // the call from which it served (0: not yet)
  bool cached = false;  // the code came from the compile cache on disk
  std::string skeleton;  // the parameters by name and structure, '\x01' for each leaf (report())
  std::vector<std::tuple<int, int, Value>> globals;  // the top-level values its trace read
  bool retired = false;  // one of them was bound anew: kept (its pinned values, the report), never matched
};

// An argument's structure for --trace-report: records with their field names, tuples,
// lists, and '\x01' where a tensor leaf's type goes (filled from the version's leaves, whose
// dims may widen later).
std::string skeletonOf(const Value& v) {
  switch (v.tag()) {
    case Tag::Scalar:
    case Tag::Tensor: return "\x01";
    case Tag::Tuple:
    case Tag::List: {
      const auto& items = v.as<SeqObj>()->items;
      std::string s = v.tag() == Tag::List ? "[" : "(";
      for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + skeletonOf(items[i]);
      if (v.tag() == Tag::Tuple && items.size() == 1) s += ",";
      return s + (v.tag() == Tag::List ? "]" : ")");
    }
    case Tag::Record: {
      auto* r = v.as<RecordObj>();
      std::string s = "{";
      for (size_t i = 0; i < r->vals.size(); ++i) s += (i ? ", " : "") + (*r->names)[i] + ": " + skeletonOf(r->vals[i]);
      return s + "}";
    }
    case Tag::Dict: {
      auto* d = v.as<DictObj>();
      std::string s = "{";
      for (size_t i = 0; i < d->vals.size(); ++i) s += (i ? ", \"" : "\"") + d->keys[i] + "\": " + skeletonOf(d->vals[i]);
      return s + "}";
    }
    default: return str(v);  // a value the trace specializes on (a string, fn, dtype, none)
  }
}

std::string signatureText(const Version& v) {
  std::string s;
  size_t k = 0;
  for (char c : v.skeleton) {
    if (c != '\x01') {
      s += c;
      continue;
    }
    if (k < v.leaves.size()) s += v.leaves[k].type.str() + (v.leaves[k].weak ? " (weak)" : "");
    ++k;
  }
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

// Walks an argument value and its annotation together, in flattening order.
void applyAnnotation(const TypeExpr* t, const Value& a, std::vector<ParamLeaf>& leaves, size_t& k,
                     std::vector<std::string>& syms) {
  auto skip = [&](const Value& v) {
    std::vector<rt::Tensor> xs;
    std::vector<bool> w;
    std::string key;
    flattenArgs({v}, xs, w, key);
    k += xs.size();
  };
  if (!t) return skip(a);
  if (a.isNumeric()) {
    if (t->kind != TypeExpr::Tensor || t->anyShape) return skip(a);
    ParamLeaf& leaf = leaves.at(k++);
    for (size_t d = 0; d < t->dims.size() && d < leaf.type.dims.size(); ++d) {
      if (t->dims[d].kind == tdl::Dim::Named) {
        leaf.type.dims[d] = ir::Dim::symbolic(t->dims[d].name);
        if (std::find(syms.begin(), syms.end(), t->dims[d].name) == syms.end()) syms.push_back(t->dims[d].name);
      } else if (t->dims[d].kind == tdl::Dim::Any) {
        std::string s = fmt::format("?{}", syms.size());
        syms.push_back(s);
        leaf.type.dims[d] = ir::Dim::symbolic(s);
      }
    }
    return;
  }
  if (t->kind == TypeExpr::Tuple && a.isSeq()) {
    auto& items = a.as<SeqObj>()->items;
    for (size_t i = 0; i < items.size(); ++i) applyAnnotation(i < t->elems.size() ? t->elems[i].get() : nullptr, items[i], leaves, k, syms);
    return;
  }
  if (t->kind == TypeExpr::Record && a.tag() == Tag::Record) {
    auto* r = a.as<RecordObj>();
    for (size_t i = 0; i < r->vals.size(); ++i) {
      const TypeExpr* ft = nullptr;
      for (size_t j = 0; j < t->names.size(); ++j)
        if (t->names[j] == (*r->names)[i]) ft = t->elems[j].get();
      applyAnnotation(ft, r->vals[i], leaves, k, syms);
    }
    return;
  }
  skip(a);
}

class GraphCache : public GraphFnCache {
 public:
  GraphCache(std::unique_ptr<GraphBackend> backend, bool report) : backend_(std::move(backend)), report_(report) {}
  ~GraphCache() override {
    if (report_) report();
  }

  bool call(Interpreter& vm, const ClosureObj& fn, std::vector<Value>& args, Value& out) override {
    std::vector<rt::Tensor> xs;
    std::vector<bool> weak;
    std::string key;
    flattenArgs(args, xs, weak, key);
    auto& versions = fns_[fn.proto];
    names_[fn.proto] = fn.proto->name;
    Version* v = nullptr;
    for (auto& c : versions)
      if (!c->retired && c->key == key && matches(*c, xs, weak)) v = c.get();
    if (v) {  // a top-level `let` it read bound anew since: traced again (its value is captured)
      for (auto& [m, s, g] : v->globals) v->retired = v->retired || !sameGlobal(vm.globalValue(m, s), g);
      if (v->retired) v = nullptr;
    }
    if (!v) {
      try {
        v = addVersion(vm, fn, args, xs, weak, key, versions);
      } catch (TraceError& e) {  // the graph fn's own frame, as a run-time error shows it
        e.trace.push_back(fmt::format("in fn {} at {}", fn.proto->name, where(vm, vm.currentLoc())));
        throw;
      }
    }
    ++v->calls;
    if (!v->code) return false;
    if (codegen::tierUp(v->code)) {  // the optimized version is ready
      v->optimizedMs = v->code->llvmMs;
      v->optimizedAt = v->calls;
    }
    std::vector<rt::Tensor> outs;
    codegen::ExecError err;
    if (!v->code->run(xs, outs, err)) {
      ++v->failed;
      Loc loc = err.op ? err.op->loc : Loc();
      ScriptError e(loc, err.message);
      auto it = v->chains.find(locKey(loc));
      if (it != v->chains.end())
        for (auto& [name, at] : it->second) e.trace.push_back(fmt::format("in fn {} at {}", name, where(vm, at)));
      e.trace.push_back(fmt::format("in fn {} at {}", fn.proto->name, where(vm, vm.currentLoc())));
      throw e;
    }
    out = v->result.build(outs);
    return true;
  }

 private:
  static std::string where(Interpreter& vm, const Loc& l) {
    if (l.file >= vm.sources().size()) return "?";
    return fmt::format("{}:{}:{}", vm.sources().file(l.file).path, l.line, l.col);
  }

  Version* addVersion(Interpreter& vm, const ClosureObj& fn, std::vector<Value>& args, const std::vector<rt::Tensor>& xs,
                      const std::vector<bool>& weak, const std::string& key,
                      std::vector<std::unique_ptr<Version>>& versions) {
    auto v = std::make_unique<Version>();
    v->key = key;
    std::function<void(const Value&)> pin = [&](const Value& a) {
      if (a.tag() == Tag::Closure || a.tag() == Tag::Native) v->pinned.push_back(a);
      else if (a.isSeq())
        for (auto& i : a.as<SeqObj>()->items) pin(i);
      else if (a.tag() == Tag::Record)
        for (auto& i : a.as<RecordObj>()->vals) pin(i);
      else if (a.tag() == Tag::Dict)
        for (auto& i : a.as<DictObj>()->vals) pin(i);
    };
    for (auto& a : args) pin(a);
    for (size_t i = 0; i < args.size(); ++i) {
      const auto& names = fn.proto->paramNames;
      v->skeleton += (i ? ", " : "") + (i < names.size() ? names[i] + ": " : std::string()) + skeletonOf(args[i]);
    }
    std::vector<std::string> syms;
    v->leaves = signatureLeaves(*fn.proto, args, xs, weak, syms);
    auto fresh = [&] {
      std::string s = fmt::format("?{}", syms.size());
      syms.push_back(s);
      return s;
    };
    // This call's sizes as they are, also where annotations name dims (f32[N, M]): the trace
    // to fall back on when one with symbolic dims fails.
    std::vector<ParamLeaf> concrete = v->leaves;
    bool annotatedSymbols = false;
    for (size_t i = 0; i < concrete.size() && i < xs.size(); ++i)
      for (size_t d = 0; d < concrete[i].type.dims.size() && d < xs[i].shape().size(); ++d)
        if (!concrete[i].type.dims[d].is_known()) {
          concrete[i].type.dims[d] = ir::Dim::known(xs[i].shape()[d]);
          annotatedSymbols = true;
        }
    const std::vector<std::string> concreteSyms = syms;
    bool generalized = false;
    // Generalize dims that differ from an earlier trace of the same structure (any of them: a
    // first trace at size 1, which never generalizes, must not stop a second and third).
    for (auto& old : versions) {
      if (old->retired || old->key != key || old->leaves.size() != v->leaves.size()) continue;
      bool same = true;
      for (size_t i = 0; i < xs.size() && same; ++i)
        same = old->leaves[i].type.dtype == v->leaves[i].type.dtype && old->leaves[i].type.rank() == v->leaves[i].type.rank();
      if (!same) continue;
      for (size_t i = 0; i < xs.size(); ++i)
        for (size_t d = 0; d < v->leaves[i].type.dims.size(); ++d) {
          ir::Dim& nd = v->leaves[i].type.dims[d];
          const ir::Dim& od = old->leaves[i].type.dims[d];
          if (!nd.is_known()) continue;
          if ((od.is_symbolic() && nd.size != 1) || (od.is_known() && od.size != nd.size && od.size != 1 && nd.size != 1)) {
            nd = ir::Dim::symbolic(fresh());
            generalized = true;
          }
        }
    }
    // A trace error names a symbolic dim (`?0`) by this call's size, as eager mode would.
    auto withSizes = [&](const TraceError& e) {
      std::map<std::string, int64_t> sizes;
      for (size_t i = 0; i < v->leaves.size() && i < xs.size(); ++i)
        for (size_t d = 0; d < v->leaves[i].type.dims.size() && d < xs[i].shape().size(); ++d)
          if (v->leaves[i].type.dims[d].is_symbolic()) sizes.emplace(v->leaves[i].type.dims[d].sym, xs[i].shape()[d]);
      std::string in = e.what(), out;
      for (size_t k = 0; k < in.size(); ++k) {
        size_t j = k + 1;
        while (in[k] == '?' && j < in.size() && std::isdigit(static_cast<unsigned char>(in[j]))) ++j;
        auto it = j > k + 1 ? sizes.find(in.substr(k, j - k)) : sizes.end();
        if (it == sizes.end()) {
          out += in[k];
          continue;
        }
        out += std::to_string(it->second);
        k = j - 1;
      }
      TraceError r(e.loc, out);
      r.trace = e.trace;
      return r;
    };
    Trace tr;
    try {
      try {
        tr = traceOptimized(vm, fn, args, v->leaves, syms, &v->traceMs, &v->optMs);
      } catch (const TraceError&) {
        if (!generalized && !annotatedSymbols) throw;
        // The fn needs some dim that differs between calls, or that an annotation names, known
        // when tracing (a filter's size, which axes squeeze() drops): this call's sizes as
        // they are, one more trace (eager mode runs it too).
        v->leaves = concrete;
        syms = concreteSyms;
        tr = traceOptimized(vm, fn, args, v->leaves, syms, &v->traceMs, &v->optMs);
      }
    } catch (const TraceError& e) {
      throw withSizes(e);
    }
    codegen::CompileTimes ct;
    try {
      v->code = backend_->compile(std::move(tr.module), *tr.fn, &ct);
    } catch (const std::runtime_error& e) {
      throw InternalError(e.what());
    }
    v->lowerMs = ct.lowerMs;
    v->llvmMs = ct.llvmMs;
    v->cached = ct.cached;
    if (rt::prof::enabled())
      rt::prof::record(rt::prof::Section::Compile, fn.proto->name,
                       (v->traceMs + v->optMs + v->lowerMs + v->llvmMs) / 1e3);
    v->result = std::move(tr.result);
    v->chains = std::move(tr.chains);
    v->globals = std::move(tr.globals);
    versions.push_back(std::move(v));
    return versions.back().get();
  }

  void tapedCall(const ClosureObj& fn) override {
    names_[fn.proto] = fn.proto->name;
    fns_[fn.proto];  // listed in the report even without a trace
    ++taped_[fn.proto];
  }

  void report() {
    std::fflush(stdout);
    for (auto& [proto, versions] : fns_) {
      int64_t taped = taped_.count(proto) ? taped_[proto] : 0;
      fmt::print(stderr, "graph fn {}: {} trace{}{}\n", names_[proto], versions.size(), versions.size() == 1 ? "" : "s",
                 taped ? fmt::format("; {} call{} run in the VM under an eager tape (its ops recorded)", taped,
                                     taped == 1 ? "" : "s")
                       : "");
      for (size_t i = 0; i < versions.size(); ++i) {
        const Version& v = *versions[i];
        std::string codeMs = v.cached ? fmt::format("loaded from the compile cache {:.2f} ms", v.lowerMs)
                                      : fmt::format("lower {:.2f} ms, llvm {:.2f} ms", v.lowerMs, v.llvmMs);
        if (v.optimizedAt > 0)
          codeMs += fmt::format(" (optimized in the background in {:.2f} ms, serving from call {})", v.optimizedMs,
                                v.optimizedAt);
        const int64_t served = v.calls - v.failed;
        fmt::print(stderr, "  #{} ({}): {} call{} served{}{}; trace {:.2f} ms, optimize {:.2f} ms, {}{}\n",
                   i + 1, signatureText(v), served, served == 1 ? "" : "s", v.code ? "" : " in the VM",
                   v.failed ? fmt::format(", {} failed with an error", v.failed) : "", v.traceMs, v.optMs, codeMs,
                   v.code && v.code->reusedBuffers > 0 ? fmt::format("; {} buffers reused", v.code->reusedBuffers.load()) : "");
      }
    }
  }

  std::unique_ptr<GraphBackend> backend_;
  bool report_;
  std::map<const FnProto*, std::vector<std::unique_ptr<Version>>> fns_;
  std::map<const FnProto*, std::string> names_;
  std::map<const FnProto*, int64_t> taped_;
};

}  // namespace

// Why a parameter annotation does not fix a signature (empty when it does).
std::string unshapedParam(const TypeExpr* t, const std::string& name) {
  if (!t) return fmt::format("parameter '{}' is not annotated", name);
  switch (t->kind) {
    case TypeExpr::Alias: throw std::logic_error("internal: a type alias Sema did not resolve");
    case TypeExpr::Tensor:
      if (t->anyShape) return fmt::format("parameter '{}' has no shape ({})", name, t->str());
      return "";
    case TypeExpr::Record:
    case TypeExpr::Tuple:
      for (auto& e : t->elems) {
        std::string why = unshapedParam(e.get(), name);
        if (!why.empty()) return why;
      }
      return "";
  }
  return "";
}

// Whether a rank-0 tensor of dtype `d` can also arrive as a weak scalar (a literal):
// weak floats are f32, weak ints i64, weak bools bool.
static bool weakable(const std::string& d) { return d == "f32" || d == "i64" || d == "bool"; }

int weakableLeaves(const TypeExpr& t) {
  if (t.kind == TypeExpr::Tensor) return t.dims.empty() && weakable(t.dtype) ? 1 : 0;
  int n = 0;
  for (auto& e : t.elems) n += weakableLeaves(*e);
  return n;
}

// A value of annotated type `t` (symbolic dims get size 2: the trace does not look at
// sizes). Rank-0 leaves that can be weak take bit `k` of `weakMask`, in order.
Value placeholderArg(const TypeExpr& t, unsigned weakMask, int& k) {
  switch (t.kind) {
    case TypeExpr::Alias: throw std::logic_error("internal: a type alias Sema did not resolve");
    case TypeExpr::Tensor: {
      rt::DType dt = *rt::dtype_from_name(t.dtype);
      if (t.dims.empty() && weakable(t.dtype)) {
        bool weak = (weakMask >> k++) & 1u;
        if (weak) return dt == rt::DType::F32 ? Value::weakFloat(0.0) : Value::intLike(dt, 0, true);
      }
      rt::Shape shape;
      for (const Dim& d : t.dims) shape.push_back(d.kind == Dim::Fixed ? d.size : 2);
      return fromTensor(rt::Tensor::zeros(dt, shape));
    }
    case TypeExpr::Tuple: {
      std::vector<Value> items;
      for (auto& e : t.elems) items.push_back(placeholderArg(*e, weakMask, k));
      return makeTuple(std::move(items));
    }
    case TypeExpr::Record: {
      std::vector<Value> vals;
      for (auto& e : t.elems) vals.push_back(placeholderArg(*e, weakMask, k));
      return makeRecord(std::make_shared<const std::vector<std::string>>(t.names), std::move(vals));
    }
  }
  return Value();
}

std::vector<ParamLeaf> signatureLeaves(const FnProto& p, const std::vector<Value>& args,
                                       const std::vector<rt::Tensor>& xs, const std::vector<bool>& weak,
                                       std::vector<std::string>& syms) {
  std::vector<ParamLeaf> leaves;
  for (size_t i = 0; i < xs.size(); ++i) leaves.push_back(ParamLeaf{ir::TensorType::of(xs[i].dtype(), xs[i].shape()), weak[i]});
  size_t k = 0;
  for (size_t a = 0; a < args.size(); ++a)
    applyAnnotation(a < p.paramTypes.size() ? p.paramTypes[a] : nullptr, args[a], leaves, k, syms);
  return leaves;
}

Trace traceOptimized(Interpreter& vm, const ClosureObj& fn, const std::vector<Value>& args,
                     const std::vector<ParamLeaf>& leaves, const std::vector<std::string>& syms, double* traceMs,
                     double* optMs) {
  auto t0 = std::chrono::steady_clock::now();
  Trace tr = traceGraphFn(vm, fn, args, leaves, syms);
  auto errs = ir::verify(*tr.fn);
  if (!errs.empty())
    throw InternalError(fmt::format("the trace of graph fn '{}' is invalid: {}\n{}", fn.proto->name, errs[0], ir::to_string(*tr.fn)));
  if (traceMs) *traceMs = msSince(t0);
  auto t1 = std::chrono::steady_clock::now();
  ir::PipelineOptions po;
  po.max_rounds = ir::kDefaultMaxRounds;
  ir::default_pipeline()->run(*tr.module, po);
  if (optMs) *optMs = msSince(t1);
  return tr;
}

uint64_t irHash(const std::string& text) { return ir::fnv1a(text) ^ text.size(); }

std::unique_ptr<GraphFnCache> makeGraphFnCache(std::unique_ptr<GraphBackend> backend, bool report) {
  return std::make_unique<GraphCache>(std::move(backend), report);
}

}  // namespace tdl::vm
