// Graph fns under `tdl run`: the trace cache with the LLVM JIT as its backend, and
// `tdl emit`'s graph stages.
#include "graph/GraphCall.h"
#include "ir/Rewrite.h"

#include <functional>

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <sstream>

#include "codegen/Codegen.h"
#include "codegen/Device.h"
#include "codegen/DeviceExec.h"
#include "codegen/Ptx.h"
#include "ir/Pipeline.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "vm/Compiler.h"
#include "graph/GraphCache.h"
#include "graph/GraphTracer.h"

namespace tdl::vm {

namespace {

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

namespace {
class JitBackend : public GraphBackend {
 public:
  std::unique_ptr<codegen::CompiledFn> compile(std::unique_ptr<ir::Module> module, ir::Function& fn,
                                               codegen::CompileTimes* times) override {
    if (codegen::activeDevice()) return codegen::compileForDevice(std::move(module), fn, times);  // --device
    return codegen::compile(std::move(module), fn, times);
  }
};
}  // namespace

std::unique_ptr<GraphFnCache> makeGraphFnCache(const VmOptions&) {
  return makeGraphFnCache(std::make_unique<JitBackend>(), traceReportOn);
}

int emitGraphStage(Compilation& c, const std::string& stage, const std::string& fnName, const std::string& argText) {
  if (fnName.empty()) {
    fmt::print(stderr, "tdl: error: --stage {} needs --fn NAME (and --args 'SIGNATURE' unless its parameters are annotated)\n", stage);
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
  if (argText.empty()) {
    // No --args: the signature the parameters' annotations give (as `tdl build` uses).
    const FnDecl* d = fv->as<ClosureObj>()->proto->decl;
    for (const Param& prm : d->params) {
      std::string why = unshapedParam(prm.type.get(), prm.name);
      if (!why.empty()) {
        fmt::print(stderr, "tdl: error: --fn {} needs --args 'SIGNATURE': {}\n", fnName, why);
        return 2;
      }
      int k = 0;
      args.push_back(placeholderArg(*prm.type, 0, k));
    }
    std::vector<rt::Tensor> xs;
    std::vector<bool> weak;
    std::string key;
    flattenArgs(args, xs, weak, key);
    leaves = signatureLeaves(*fv->as<ClosureObj>()->proto, args, xs, weak, syms);
  }
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
    double elements = 1;
    if (br != std::string::npos) {
      if (a.back() != ']') {
        fmt::print(stderr, "tdl: error: bad --args entry '{}' (expected like f32[4, 784])\n", a);
        return 2;
      }
      std::string inner = a.substr(br + 1, a.size() - br - 2);
      for (const std::string& dim : splitTop(inner)) {
        // A size (digits), a name or `?`.
        auto allDigits = [](std::string_view v) {
          return !v.empty() && std::all_of(v.begin(), v.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
        };
        bool digits = allDigits(dim);
        bool name = dim == "?" || (dim[0] == '?' && allDigits(std::string_view(dim).substr(1))) ||  // a report's ?0
                    (!dim.empty() && (std::isalpha(static_cast<unsigned char>(dim[0])) || dim[0] == '_') &&
                                   std::all_of(dim.begin(), dim.end(), [](char ch) {
                                     return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
                                   }));
        int64_t size = 0;
        if (digits) {
          auto [end, ec] = std::from_chars(dim.data(), dim.data() + dim.size(), size);
          if (ec != std::errc() || size > (int64_t{1} << 48)) digits = false, name = false;
        }
        if (!digits && !name) {
          fmt::print(stderr, "tdl: error: bad dim '{}' in --args entry '{}' (a size from 0 to 2^48, a name, ? or ?N)\n", dim, a);
          return 2;
        }
        if (digits) {
          t.dims.push_back(ir::Dim::known(size));
          shape.push_back(size);
          elements *= static_cast<double>(size);
        } else {
          std::string sym = dim == "?" ? fmt::format("?{}", syms.size()) : dim;
          if (std::find(syms.begin(), syms.end(), sym) == syms.end()) syms.push_back(sym);
          t.dims.push_back(ir::Dim::symbolic(sym));
          shape.push_back(2);
        }
      }
    }
    leaves.push_back(ParamLeaf{t, false});
    // The traced parameter has the type above; the value only stands in for it, so a huge
    // one (emitting code for sizes this machine could not hold) is a small one.
    if (elements > double(int64_t{1} << 24))
      for (auto& n : shape) n = std::min<int64_t>(n, 2);
    args.push_back(fromTensor(rt::Tensor::zeros(d, shape)));
  }
  try {
    Trace tr = traceGraphFn(vm, *fv->as<ClosureObj>(), args, leaves, syms);
    // A check that fails whatever the values (--args against the parameters' annotations,
    // f32[4, 783] for f32[N, 784]): the signature is the error, not code that always fails.
    ir::Block& entry = tr.fn->entry();
    for (size_t i = 0; i < entry.size(); ++i) {
      const ir::Op& op = entry.op(i);
      if (op.kind() != ir::OpKind::Assert || op.num_operands() != 1) continue;
      const rt::Tensor* c = ir::constant_value(op.operand(0));
      if (c && c->numel() == 1 && !c->item_bool(0)) throw ScriptError(op.loc, op.str_attr("message"));
    }
    if (stage != "ir") {
      ir::PipelineOptions po;
      po.max_rounds = ir::kDefaultMaxRounds;
      ir::default_pipeline()->run(*tr.module, po);
    }
    std::string text;
    if (stage.rfind("ptx", 0) == 0)  // "ptx" or "ptx:ARCH" (tdl emit --gpu-arch)
      text = codegen::emitPtx(*tr.fn, stage.size() > 4 ? stage.substr(4) : "sm_90");
    else
      text = stage == "ir" || stage == "opt" ? ir::to_string(*tr.fn) : codegen::emitStage(*tr.fn, stage);
    std::fwrite(text.data(), 1, text.size(), stdout);
  } catch (const ScriptError& e) {
    c.diags.report(Diagnostic{Severity::Error, e.loc, e.what(), e.trace});
    return 1;
  }
  return 0;
}

}  // namespace tdl::vm
