// `tdl export FILE --fn NAME... -o M.tdlm` and `tdl inspect M.tdlm [--json]` (SPEC §12;
// docs/commands/export.md). Export runs the script's top level as `tdl run` does (so that
// trained or loaded weights exist), then traces each named graph fn for the signature its
// annotations give (named and `?` dims stay symbolic: one compiled version serves every
// batch size), optimizes it, freezes the top-level values it read as weights, compiles it
// ahead of time for this CPU and writes one file (model/Model.h).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "codegen/Codegen.h"
#include "ir/Pipeline.h"
#include "ir/Printer.h"
#include "ir/Quantize.h"
#include "ir/Verifier.h"
#include "model/Model.h"
#include "runtime/Elementwise.h"
#include "runtime/Error.h"
#include "runtime/Io.h"
#include "tools/Commands.h"
#include "graph/GraphCache.h"
#include "graph/GraphCall.h"
#include "vm/Compiler.h"
#include "vm/Interpreter.h"

#ifndef TDL_VERSION
#define TDL_VERSION "0.0.0"
#endif

namespace tdl {

namespace fs = std::filesystem;

namespace {

int fail(const std::string& msg) {
  std::fflush(stdout);
  fmt::print(stderr, "tdl: error: {}\n", msg);
  return 1;
}

// A command line that cannot mean anything (flags that need each other, one given twice):
// exit status 2, as the option parser's own errors.
int usage(const std::string& msg) {
  fail(msg);
  fmt::print(stderr, "Run 'tdl help' for usage.\n");
  return 2;
}

// The tensor leaves of a parameter's annotation, named by their path (x, p.w, t.0).
void leafNames(const TypeExpr& t, const std::string& name, std::string& structure, std::vector<std::string>& names) {
  switch (t.kind) {
    case TypeExpr::Tensor:
      structure += "t";
      names.push_back(name);
      return;
    case TypeExpr::Tuple:
      structure += "(";
      for (size_t i = 0; i < t.elems.size(); ++i) leafNames(*t.elems[i], fmt::format("{}.{}", name, i), structure, names);
      structure += ")";
      return;
    case TypeExpr::Record:
      structure += "{";
      for (size_t i = 0; i < t.elems.size(); ++i) {
        structure += t.names[i] + ":";
        leafNames(*t.elems[i], name + "." + t.names[i], structure, names);
      }
      structure += "}";
      return;
    case TypeExpr::Alias: throw std::logic_error("internal: a type alias Sema did not resolve");
  }
}

// The result's structure and leaf names; false when a part of it is not a tensor (the leaves
// must come in order: result k is the k-th leaf).
bool resultLeaves(const vm::ResultTemplate& r, const std::string& name, std::string& structure,
                  std::vector<std::string>& names, std::string& why) {
  switch (r.kind) {
    case vm::ResultTemplate::Leaf:
      if (r.leaf != static_cast<int>(names.size())) {
        why = "its results are not in order (an internal limit)";
        return false;
      }
      structure += "t";
      names.push_back(name);
      return true;
    case vm::ResultTemplate::Seq:
      if (r.seqTag != vm::Tag::Tuple) break;
      structure += "(";
      for (size_t i = 0; i < r.items.size(); ++i)
        if (!resultLeaves(r.items[i], fmt::format("{}_{}", name == "output" ? "output" : name, i), structure, names, why))
          return false;
      structure += ")";
      return true;
    case vm::ResultTemplate::Rec:
      structure += "{";
      for (size_t i = 0; i < r.items.size(); ++i) {
        structure += (*r.names)[i] + ":";
        std::string sub = name == "output" ? (*r.names)[i] : name + "." + (*r.names)[i];
        if (!resultLeaves(r.items[i], sub, structure, names, why)) return false;
      }
      structure += "}";
      return true;
    case vm::ResultTemplate::Static:
      if (r.value.isNumeric()) {
        why = "a result does not depend on its inputs (a constant, computed when tracing): return something computed "
              "from a parameter, or load the constant with load() where the model is used";
        return false;
      }
      break;
    default: break;
  }
  why = "it returns a value that is not a tensor (only tensors, and tuples and records of them, can be exported)";
  return false;
}

model::TensorSpec specOf(const std::string& name, const ir::TensorType& t) {
  model::TensorSpec s;
  s.name = name;
  s.dtype = t.dtype;
  for (const ir::Dim& d : t.dims) s.dims.push_back(model::Dim{d.is_symbolic() ? -1 : d.size, d.sym});
  return s;
}

// Where a weight is first used: FILE:LINE:COL of the op that reads it, or "".
std::string useSite(const SourceManager& sm, const Loc& loc) {
  if (!loc.valid() || loc.file >= sm.size()) return "";
  return fmt::format("{}:{}:{}", sm.file(loc.file).path, loc.line, loc.col);
}

bool sameFile(const std::string& a, const std::string& b) {
  std::error_code ec;
  return fs::equivalent(a, b, ec) && !ec;
}

// The calibration inputs of `--calibrate FILE` for a fn with this signature: an .npy file
// for a fn of one tensor input, or a safetensors file with one entry per input, named by its
// path (x, p.w). Float data is cast to the input's dtype; then they are checked as a call's.
std::vector<rt::Tensor> calibrationInputs(const std::string& path, const model::Signature& sig) {
  const std::vector<model::TensorSpec>& inputs = sig.inputs;
  std::vector<rt::Tensor> out;
  auto bad = [&](const std::string& msg) { return rt::Error(fmt::format("--calibrate {}: {}", path, msg)); };
  std::string ext = fs::path(path).extension().string();
  if (ext == ".npy") {
    if (inputs.size() != 1)
      throw bad(fmt::format("an .npy file gives one input, but the fn takes {} (use a .safetensors file with entries {})",
                            inputs.size(), [&] {
                              std::string n;
                              for (auto& i : inputs) n += (n.empty() ? "" : ", ") + i.name;
                              return n;
                            }()));
    out.push_back(rt::load_npy(path));
  } else if (ext == ".safetensors") {
    auto entries = rt::load_safetensors(path);
    for (auto& in : inputs) {
      auto it = std::find_if(entries.begin(), entries.end(), [&](auto& e) { return e.first == in.name; });
      if (it == entries.end()) throw bad(fmt::format("no entry named '{}' (the fn's input)", in.name));
      out.push_back(it->second);
    }
  } else {
    throw bad("expected an .npy or .safetensors file");
  }
  for (size_t i = 0; i < out.size(); ++i) {
    rt::DType want = inputs[i].dtype;
    if (out[i].dtype() != want) {
      if (!rt::is_float(out[i].dtype()) || !rt::is_float(want))
        throw bad(fmt::format("input '{}' must be {}, the file holds {}", inputs[i].name, rt::dtype_name(want),
                              rt::dtype_name(out[i].dtype())));
      out[i] = rt::cast(out[i], want);
    }
    // Scales taken from NaN or infinite data would be meaningless (and the report a pass).
    if (rt::is_float(out[i].dtype())) {
      rt::Tensor x = rt::cast(out[i], rt::DType::F64);
      const double* p = x.data<double>();
      for (int64_t k = 0; k < x.numel(); ++k)
        if (!std::isfinite(p[k]))
          throw bad(fmt::format("input '{}' holds {} (at flat index {}): calibration needs finite data", inputs[i].name,
                                std::isnan(p[k]) ? "NaN" : "an infinity", k));
    }
  }
  try {
    model::checkInputs(sig, out);
  } catch (const rt::Error& e) {
    throw bad(e.what());
  }
  return out;
}

// How the quantized fn's outputs compare with the float fn's on the calibration data.
std::string compareOutputs(const std::vector<rt::Tensor>& f, const std::vector<rt::Tensor>& q,
                           const std::vector<model::TensorSpec>& outputs) {
  std::string s;
  for (size_t i = 0; i < f.size() && i < q.size() && i < outputs.size(); ++i) {
    std::string part;
    if (rt::is_float(f[i].dtype()) && f[i].shape() == q[i].shape()) {
      rt::Tensor a = rt::cast(f[i], rt::DType::F64), b = rt::cast(q[i], rt::DType::F64);
      const double *pa = a.data<double>(), *pb = b.data<double>();
      double maxDiff = 0, maxRef = 0;
      int64_t nonFinite = 0;
      for (int64_t k = 0; k < a.numel(); ++k) {
        if (!std::isfinite(pa[k]) || !std::isfinite(pb[k])) {
          ++nonFinite;
          continue;
        }
        maxDiff = std::max(maxDiff, std::fabs(pa[k] - pb[k]));
        maxRef = std::max(maxRef, std::fabs(pa[k]));
      }
      part = fmt::format("max |int8 - f32| {:.3g} (of max |f32| {:.3g})", maxDiff, maxRef);
      if (nonFinite)
        part += fmt::format(" over the finite values; {} of {} values are NaN or infinite (check the calibration data's "
                            "range)", nonFinite, a.numel());
      if (a.rank() == 2 && a.dim(1) > 1) {
        int64_t agree = 0, rows = a.dim(0), cols = a.dim(1);
        for (int64_t r = 0; r < rows; ++r) {
          int64_t ia = 0, ib = 0;
          for (int64_t c = 1; c < cols; ++c) {
            if (pa[r * cols + c] > pa[r * cols + ia]) ia = c;
            if (pb[r * cols + c] > pb[r * cols + ib]) ib = c;
          }
          agree += ia == ib;
        }
        part += fmt::format(", top-1 agreement {:.1f}% of {} rows", rows ? 100.0 * static_cast<double>(agree) / static_cast<double>(rows) : 100.0, rows);
      }
    } else if (f[i].shape() == q[i].shape()) {
      rt::Tensor a = rt::cast(f[i], rt::DType::I64), b = rt::cast(q[i], rt::DType::I64);
      int64_t same = 0;
      for (int64_t k = 0; k < a.numel(); ++k) same += a.data<int64_t>()[k] == b.data<int64_t>()[k];
      part = fmt::format("{:.1f}% of {} values equal", a.numel() ? 100.0 * static_cast<double>(same) / static_cast<double>(a.numel()) : 100.0, a.numel());
    }
    if (!part.empty()) s += fmt::format("{}{}: {}", s.empty() ? "" : "; ", outputs[i].name, part);
  }
  return s;
}

}  // namespace

int exportModel(const ExportOptions& o) {
  if (!o.quantize.empty() && o.calibrate.empty())
    return usage("--quantize int8 needs --calibrate DATA: inputs of the fn (.npy, or .safetensors by input name) on "
                 "which the activations' ranges are measured");
  if (o.quantize.empty() && !o.calibrate.empty()) return usage("--calibrate is for --quantize int8");
  if (o.fns.empty()) return usage("tdl export needs at least one --fn NAME (the graph fns to export)");
  for (size_t i = 0; i < o.fns.size(); ++i)  // before the script runs (it may train for hours)
    if (std::find(o.fns.begin(), o.fns.begin() + static_cast<long>(i), o.fns[i]) != o.fns.begin() + static_cast<long>(i))
      return usage(fmt::format("--fn {} is given twice", o.fns[i]));
  // --target: code for another machine, linked into shared objects by its cross toolchain
  // (a loader without LLVM maps them: docs/edge.md).
  // A --target that names this machine (x86_64-linux-gnu) links the code into shared objects
  // too, for a loader without LLVM (a minimal runtime of `tdl runtime`); without --target, or
  // with `host`, the file holds relocatable objects that tdl and libtdl_model.so link.
  std::string targetCpu = o.targetCpu, cross, crossCc;
  if (!resolveTarget(o.target, targetCpu, cross)) return 1;
  const bool sharedObjects = !o.target.empty() && o.target != "host";
  if (sharedObjects && !crossCompiler(cross, crossCc)) return 1;
  Compilation c;
  c.diags.setColor(isatty(2) && std::getenv("NO_COLOR") == nullptr);
  if (!c.load(o.file, SemaOptions{false})) return 1;
  {
    std::error_code ec;
    for (size_t i = 0; i < c.sources.size(); ++i)
      if (sameFile(o.out, c.sources.file(static_cast<uint32_t>(i)).path))
        return fail(fmt::format("the output '{}' is the source file '{}': choose another name with -o", o.out,
                                c.sources.file(static_cast<uint32_t>(i)).path));
    if (fs::is_directory(o.out, ec)) return fail(fmt::format("the output '{}' is a directory", o.out));
    fs::path parent = fs::absolute(o.out, ec).parent_path();
    if (!fs::is_directory(parent, ec))
      return fail(fmt::format("cannot write '{}': the folder '{}' does not exist", o.out, parent.string()));
  }
  auto& modules = c.modules();
  vm::Program prog;
  model::ExportData data;
  data.tdlVersion = TDL_VERSION;
  data.target = codegen::targetOf(cross, targetCpu);
  data.codeFormat = sharedObjects ? "shared-object" : "object";
  for (size_t i = 0; i < c.sources.size(); ++i) data.sources.push_back(c.sources.file(static_cast<uint32_t>(i)).path);
  try {
    vm::Compiler compiler(prog, modules);
    compiler.compileAll();
    vm::VmOptions vo;
    vo.scriptArgs = o.scriptArgs;
    vm::Interpreter interp(c.sources, modules, prog, vo);
    std::unique_ptr<vm::GraphFnCache> graphs = vm::makeGraphFnCache(vo);
    interp.setGraphFnCache(graphs.get());
    try {
      interp.runModule(0);
    } catch (const vm::ExitRequest& e) {
      // exit(0) (a script's sys.exit(0) at its end): it succeeded, and what it bound up to
      // there is what its fns read. Another status is a failure, refused below.
      if (e.code != 0) throw;
    }
    std::fflush(stdout);

    const Module& main = *modules[0];
    // A constant (its data, dtype and shape: reshapes share data) → its weight name.
    std::map<std::string, std::string> weightOf;
    auto constKey = [](const rt::Tensor& t) {
      return fmt::format("{}:{}:{}", t.raw(), static_cast<int>(t.dtype()), fmt::join(t.shape(), ","));
    };
    for (const std::string& name : o.fns) {
      int slot = -1;
      for (size_t i = 0; i < main.globalNames.size(); ++i)
        if (main.globalNames[i] == name) slot = static_cast<int>(i);
      if (slot < 0) return fail(fmt::format("'{}' is not defined at the top level of {}", name, o.file));
      vm::Value fv = interp.globalValue(0, slot);
      if (fv.tag() != vm::Tag::Closure || !fv.as<vm::ClosureObj>()->proto->decl)
        return fail(fmt::format("'{}' is a {}, not a graph fn", name, vm::typeText(fv)));
      const vm::FnProto& proto = *fv.as<vm::ClosureObj>()->proto;
      const FnDecl& d = *proto.decl;
      if (!proto.isGraph)
        return fail(fmt::format("'{}' is a fn, not a graph fn: only graph fns are exported (declare it `graph fn {}(...)`)",
                                name, name));
      for (const Param& prm : d.params) {
        std::string why = vm::unshapedParam(prm.type.get(), prm.name);
        if (!why.empty())
          return fail(fmt::format("cannot export '{}': {} (an exported fn's parameters are annotated with their shapes, "
                                  "e.g. `x: f32[B, 784]`, where a named dim such as B varies from call to call)",
                                  name, why));
      }
      std::vector<vm::Value> args;
      int k = 0;
      model::ExportFn ef;
      ef.sig.name = name;
      std::vector<std::string> inNames;
      for (const Param& prm : d.params) {
        args.push_back(vm::placeholderArg(*prm.type, 0, k));
        ef.sig.params.push_back(prm.name);
        leafNames(*prm.type, prm.name, ef.sig.inStructure, inNames);
      }
      std::vector<rt::Tensor> xs;
      std::vector<bool> weak;
      std::string key;
      vm::flattenArgs(args, xs, weak, key);
      std::vector<std::string> syms;
      std::vector<vm::ParamLeaf> leaves = vm::signatureLeaves(proto, args, xs, weak, syms);
      vm::Trace tr = vm::traceOptimized(interp, *fv.as<vm::ClosureObj>(), args, leaves, syms, nullptr, nullptr);
      ir::Function& fn = *tr.fn;
      auto params = fn.params();
      if (params.size() != inNames.size()) return fail(fmt::format("internal: '{}' traced to {} parameters for {} leaves", name, params.size(), inNames.size()));
      for (size_t i = 0; i < params.size(); ++i) ef.sig.inputs.push_back(specOf(inNames[i], params[i]->type));
      std::vector<std::string> outNames;
      std::string why;
      if (!tr.alwaysFails.empty())
        return fail(fmt::format("cannot export '{}': every call of it fails: {}", name, tr.alwaysFails));
      if (!resultLeaves(tr.result, "output", ef.sig.outStructure, outNames, why))
        return fail(fmt::format("cannot export '{}': {}", name, why));
      if (outNames.size() != fn.result_types.size())
        return fail(fmt::format("internal: '{}' has {} results for {} leaves", name, fn.result_types.size(), outNames.size()));
      for (size_t i = 0; i < outNames.size(); ++i) ef.sig.outputs.push_back(specOf(outNames[i], fn.result_types[i]));

      // --quantize int8: measure the activations of the products with constant weights on
      // the calibration inputs (a second trace of the fn, returning their ranges too), then
      // rewrite those products into int8 ones (ir/Quantize.h).
      std::vector<rt::Tensor> calib, floatOut;
      std::string quantNote;
      if (o.quantize == "int8") {
        calib = calibrationInputs(o.calibrate, ef.sig);
        vm::Trace probe = vm::traceOptimized(interp, *fv.as<vm::ClosureObj>(), args, leaves, syms, nullptr, nullptr);
        ir::Function& pf = *probe.fn;
        std::vector<ir::Op*> pc = ir::quant_candidates(pf);
        size_t nres = pf.result_types.size();
        ir::add_range_probes(pf, pc);
        auto perrs = ir::verify(pf);
        if (!perrs.empty()) return fail(fmt::format("internal: the calibration fn of '{}' is invalid: {}", name, perrs[0]));
        std::unique_ptr<codegen::CompiledFn> pcf = codegen::compile(std::move(probe.module), pf, nullptr);
        std::vector<rt::Tensor> pout;
        codegen::ExecError perr;
        if (!pcf->run(calib, pout, perr))
          return fail(fmt::format("--calibrate {}: running '{}' on it: {}", o.calibrate, name, perr.message));
        std::vector<double> absMax;
        for (size_t i = 0; i < pc.size(); ++i) absMax.push_back(pout.at(nres + i).scalar_as_double());
        floatOut.assign(pout.begin(), pout.begin() + static_cast<std::ptrdiff_t>(nres));
        std::vector<ir::Op*> cands = ir::quant_candidates(fn);
        if (cands.size() != pc.size()) return fail(fmt::format("internal: '{}' traced to different products twice", name));
        ir::quantize_int8(fn, cands, absMax);
        ir::Pipeline qp;
        qp.add(ir::create_pass("qgemm"));
        qp.add(ir::create_pass("dce"));
        qp.run(*tr.module, ir::PipelineOptions{});
        auto errs = ir::verify(fn);
        if (!errs.empty()) return fail(fmt::format("internal: the quantized '{}' is invalid: {}", name, errs[0]));
        quantNote = fmt::format("{}: {} of its matrix products with constant weights in int8", name, cands.size());
        if (cands.empty())
          quantNote += fmt::format(" (it has none of at least {} weights: nothing to quantize)", ir::kMinQuantizedWeights);
      }

      // A loaded model's fn runs in the process that loaded it (codegen::registerExternFn): a
      // served or embedded model has none to call.
      std::string calls;
      ir::walk(fn.entry(), [&](ir::Op& op) {
        if (calls.empty() && op.kind() == ir::OpKind::CallRuntime && op.str_attr("callee") == "extern")
          calls = op.str_attr("name");
      });
      if (!calls.empty())
        return fail(fmt::format("'{}' calls a loaded model's fn '{}': a model cannot be exported inside another; "
                                "export the fns that '{}' was exported from, from their source",
                                name, calls, calls));

      // Large constants (the top-level values the fn read) become weights, shared by content.
      ir::walk(fn.entry(), [&](ir::Op& op) {
        for (auto& [attr, v] : op.attrs) {
          if (!std::holds_alternative<rt::Tensor>(v)) continue;
          const rt::Tensor& t = std::get<rt::Tensor>(v);
          if (ir::prints_inline(t) || weightOf.count(constKey(t))) continue;
          std::string wname;
          for (auto& w : data.weights)
            if (ir::tensor_equal(w.value, t)) wname = w.name;
          if (wname.empty()) {
            wname = fmt::format("w{}", data.weights.size());
            data.weights.push_back(model::WeightInfo{wname, useSite(c.sources, op.loc), t});
          }
          weightOf[constKey(t)] = wname;
        }
      });
      ef.ir = ir::to_string(fn, [&](const rt::Tensor& t) -> std::string {
        auto it = weightOf.find(constKey(t));
        return it == weightOf.end() ? "" : it->second;
      });
      codegen::AotOptions ao;
      ao.entry = "tdlm_" + std::to_string(data.fns.size());
      ao.optLevel = o.optLevel;
      ao.triple = cross;
      ao.cpu = targetCpu;
      codegen::AotResult r = codegen::compileAot(fn, ao);
      if (sharedObjects) {
        if (!linkSharedObject(crossCc, r.object, ef.object)) return 1;
      } else {
        ef.object = std::move(r.object);
      }
      ef.table = std::move(r.table);
      ef.entry = ao.entry;
      if (o.quantize == "int8") {
        // The quantized fn against the float one on the calibration data.
        std::unique_ptr<codegen::CompiledFn> qcf = codegen::compile(std::move(tr.module), fn, nullptr);
        std::vector<rt::Tensor> qout;
        codegen::ExecError qerr;
        if (!qcf->run(calib, qout, qerr))
          return fail(fmt::format("internal: the quantized '{}' fails on the calibration data: {}", name, qerr.message));
        std::string cmp = compareOutputs(floatOut, qout, ef.sig.outputs);
        fmt::print(stderr, "tdl export: {}; on the calibration data: {}\n", quantNote, cmp.empty() ? "no outputs to compare" : cmp);
      }
      data.fns.push_back(std::move(ef));
    }
  } catch (const ScriptError& e) {
    std::fflush(stdout);
    c.diags.report(Diagnostic{Severity::Error, e.loc, e.what(), e.trace});
    return 1;
  } catch (const vm::ExitRequest& e) {
    if (e.code != 0) return fail(fmt::format("the script exited with status {} before its fns were exported", e.code));
    return fail("the script called exit() before its fns were exported");
  } catch (const std::exception& e) {
    return fail(fmt::format("exporting: {}", e.what()));
  }
  try {
    rt::write_file_atomic(o.out, model::serialize(data));
  } catch (const rt::Error& e) {
    return fail(e.what());
  }
  int64_t params = 0, bytes = 0;
  for (auto& w : data.weights) params += w.value.numel(), bytes += static_cast<int64_t>(w.value.nbytes());
  fmt::print(stderr, "tdl export: wrote {}: ", o.out);
  for (size_t i = 0; i < data.fns.size(); ++i) fmt::print(stderr, "{}{}", i ? "; " : "", data.fns[i].sig.text());
  fmt::print(stderr, "; {} weight{} ({} values, {:.1f} KiB)\n", data.weights.size(), data.weights.size() == 1 ? "" : "s",
             params, static_cast<double>(bytes) / 1024.0);
  return 0;
}

int inspectModel(const std::string& path, bool asJson) {
  std::unique_ptr<model::Model> m;
  try {
    m = model::Model::load(path, model::Model::Options{false});
  } catch (const rt::Error& e) {
    return fail(e.what());
  }
  nlohmann::ordered_json man = nlohmann::ordered_json::parse(m->manifestText());
  if (asJson) {
    nlohmann::ordered_json out;
    out["path"] = path;
    out["version"] = man["version"];
    out["tdl_version"] = man["tdl_version"];
    out["target"] = man["target"];
    out["functions"] = nlohmann::ordered_json::array();
    for (size_t i = 0; i < m->signatures().size(); ++i) {
      auto f = man["functions"][i];
      nlohmann::ordered_json g;
      g["name"] = f["name"];
      g["signature"] = m->signatures()[i].text();
      g["batch_dim"] = m->signatures()[i].batchSym();
      g["params"] = f["params"];
      g["inputs"] = f["inputs"];
      g["outputs"] = f["outputs"];
      g["code_bytes"] = f["code"]["size"];
      out["functions"].push_back(g);
    }
    out["weights"] = nlohmann::ordered_json::array();
    for (auto& w : m->weights())
      out["weights"].push_back({{"name", w.name}, {"source", w.source}, {"dtype", std::string(rt::dtype_name(w.value.dtype()))},
                                {"shape", w.value.shape()}, {"bytes", w.value.nbytes()}});
    fmt::print("{}\n", out.dump(1));
    return 0;
  }
  fmt::print("{}: tdlm version {}, written by tdl {} for {} ({})\n", path, man["version"].get<uint64_t>(),
             man["tdl_version"].get<std::string>(), man["target"]["triple"].get<std::string>(),
             man["target"]["cpu"].get<std::string>());
  fmt::print("functions:\n");
  for (auto& s : m->signatures()) {
    std::string b = s.batchSym();
    fmt::print("  {}{}\n", s.text(), b.empty() ? "" : fmt::format("   (batch dim {})", b));
  }
  int64_t n = 0, bytes = 0;
  for (auto& w : m->weights()) n += w.value.numel(), bytes += static_cast<int64_t>(w.value.nbytes());
  fmt::print("weights: {} tensor{}, {} values, {:.1f} KiB\n", m->weights().size(), m->weights().size() == 1 ? "" : "s", n,
             static_cast<double>(bytes) / 1024.0);
  for (auto& w : m->weights())
    fmt::print("  {:<6} {:<20} {}\n", w.name, ir::TensorType::of(w.value.dtype(), w.value.shape()).str(), w.source);
  return 0;
}

}  // namespace tdl
