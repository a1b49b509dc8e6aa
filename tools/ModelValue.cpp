// load_model(path) in the `tdl` tool (SPEC §12): a model file (model/Model.h) as a VM value
// whose fields are its exported fns; `m.predict(x)` converts the arguments to the signature's
// tensors (records and tuples by their structure), runs the compiled code and rebuilds the
// result (a tensor, or a tuple or record of them), as calling the graph fn would.
#include "tools/ModelValue.h"

#include <fmt/format.h>

#include <sys/stat.h>

#include <map>
#include <memory>

#include "codegen/Exec.h"
#include "model/Model.h"
#include "runtime/Error.h"
#include "vm/Builtins.h"
#include "vm/NumericOps.h"
#include "vm/OpaqueFn.h"
#include "vm/autodiff/Tape.h"

namespace tdl {

namespace {

using vm::Tag;
using vm::Value;
using rt::DType;

std::map<std::string, std::shared_ptr<model::Model>>& loadedModels() {
  static std::map<std::string, std::shared_ptr<model::Model>> m;
  return m;
}

// The key a model's fn is registered under for graph fns that call it (codegen::registerExternFn).
std::string externKey(const model::Model& m, size_t fn) { return m.digest() + ":" + m.signatures()[fn].name; }

vm::OpaqueLeaf opaqueLeaf(const model::TensorSpec& t) {
  vm::OpaqueLeaf l;
  l.name = t.name;
  l.dtype = t.dtype;
  for (const model::Dim& d : t.dims) {
    l.sizes.push_back(d.sym.empty() ? d.size : -1);
    l.syms.push_back(d.sym);
  }
  return l;
}

struct ModelFnObj : vm::OpaqueFnObj {
  std::shared_ptr<model::Model> m;
  size_t fn;
  vm::OpaqueSig opaque;
  ModelFnObj(std::shared_ptr<model::Model> mm, size_t i) : m(std::move(mm)), fn(i) {
    const model::Signature& s = sig();
    opaque.key = externKey(*m, fn);
    opaque.name = s.name;
    opaque.params = s.params;
    opaque.inStructure = s.inStructure;
    opaque.outStructure = s.outStructure;
    for (const auto& t : s.inputs) opaque.inputs.push_back(opaqueLeaf(t));
    for (const auto& t : s.outputs) opaque.outputs.push_back(opaqueLeaf(t));
  }
  const vm::OpaqueSig& opaqueSig() const override { return opaque; }
  const model::Signature& sig() const { return m->signatures()[fn]; }
  std::string typeName() const override { return "model fn"; }
  std::string repr() const override { return fmt::format("<model fn {}>", sig().text()); }

  // The tensor leaves of the arguments (vm::walkOpaqueArg over VM values).
  struct Leaves {
    const ModelFnObj& f;
    std::vector<rt::Tensor> out;
    Value expand(const Value& v) const { return v; }
    const std::vector<Value>* items(const Value& v) const {
      return v.tag() == Tag::Tuple || v.tag() == Tag::List ? &v.as<vm::SeqObj>()->items : nullptr;
    }
    bool isRecord(const Value& v) const { return v.tag() == Tag::Record; }
    const Value* field(const Value& v, const std::string& name) const {
      const auto* r = v.as<vm::RecordObj>();
      int k = r->find(name);
      return k < 0 ? nullptr : &r->vals[static_cast<size_t>(k)];
    }
    size_t fieldCount(const Value& v) const { return v.as<vm::RecordObj>()->vals.size(); }
    std::string describe(const Value& v) const { return vm::typeText(v); }
    size_t leaves() const { return out.size(); }
    [[noreturn]] void fail(const std::string& msg) const { throw rt::Error(msg); }
    void leaf(const Value& v, const vm::OpaqueLeaf&) {
      const model::Signature& sig = f.sig();
      const model::TensorSpec& spec = sig.inputs[out.size()];
      if (v.tag() == Tag::Scalar && v.weak()) {
        // A number takes the parameter's dtype where it keeps its value, as for the graph fn
        // (vm/Annotations.cpp): 1.5 is no i64, 3000000000 no i32.
        DType d;
        try {
          d = vm::weakTarget(v, spec.dtype);
        } catch (const rt::Error& e) {
          throw rt::Error(fmt::format("{}: '{}': {}", sig.name, spec.name, e.what()));
        }
        if (d != spec.dtype)
          throw rt::Error(fmt::format("{}: '{}' must be {}, got {}", sig.name, spec.name, spec.typeText(), vm::typeText(v)));
        out.push_back(vm::scalarTensor(v, spec.dtype));
        return;
      }
      if (v.tag() != Tag::Scalar && v.tag() != Tag::Tensor)
        throw rt::Error(fmt::format("{}: '{}' must be {}, got {}", sig.name, spec.name, spec.typeText(), vm::typeText(v)));
      // Compiled code the tape cannot see into: a gradient through it would be silently zero.
      if (vm::ad::recording() && v.node() != 0)
        throw rt::Error(fmt::format("{}: '{}' is recorded on a tape, but a loaded model's functions are not "
                                    "differentiable (its gradient would be zero); call it outside the tape, or on "
                                    "a value the tape does not track",
                                    sig.name, spec.name));
      out.push_back(vm::toTensor(v));
    }
  };

  Value call(vm::Interpreter&, vm::CallArgs& args) override {
    static const std::vector<std::string> noKw;
    auto fail = [](const std::string& msg) { throw rt::Error(msg); };
    std::vector<size_t> at = vm::bindOpaqueArgs(opaque, static_cast<size_t>(args.numPos()),
                                                args.kwNames ? *args.kwNames : noKw, fail);
    Leaves w{*this, {}};
    size_t p = 0;
    for (size_t i = 0; i < at.size(); ++i) vm::walkOpaqueArg(opaque, w, args.args[at[i]], p, opaque.params[i]);
    std::vector<rt::Tensor>& inputs = w.out;
    std::vector<rt::Tensor> outs = m->call(fn, inputs);
    size_t q = 0, k = 0;
    auto leaf = [&] { return vm::fromTensor(std::move(outs[k++])); };
    auto tuple = [](std::vector<Value> items) { return vm::makeTuple(std::move(items)); };
    auto record = [](std::vector<std::string> names, std::vector<Value> items) {
      return vm::makeRecord(std::make_shared<const std::vector<std::string>>(std::move(names)), std::move(items));
    };
    return vm::rebuildOpaque<Value>(opaque.outStructure, q, leaf, tuple, record);
  }
};

struct ModelObj : vm::NativeObj {
  std::shared_ptr<model::Model> m;
  explicit ModelObj(std::shared_ptr<model::Model> mm) : m(std::move(mm)) {}
  std::string typeName() const override { return "model"; }
  std::string repr() const override {
    std::string s = fmt::format("<model '{}':", m->path());
    for (auto& sig : m->signatures()) {
      s += ' ';
      s += sig.text();
      s += ';';
    }
    s.back() = '>';
    return s;
  }
  Value member(const Value&, const std::string& name) const override {
    int i = m->find(name);
    if (i < 0) return Value::undef();
    return Value::object(Tag::Native, new ModelFnObj(m, static_cast<size_t>(i)));
  }
};

Value loadModelValue(const std::string& path) {
  // One load per file (as it is on disk) and process: compiled code stays linked for the
  // process's life.
  auto& cache = loadedModels();
  std::shared_ptr<model::Model> m;
  struct stat st {};
  std::string key = path;
  if (::stat(path.c_str(), &st) == 0)
    key += fmt::format(":{}:{}:{}:{}", st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
  auto it = cache.find(key);
  if (it != cache.end()) {
    m = it->second;
  } else {
    m = model::Model::load(path);
    cache[key] = m;
    // Graph fns call its fns as one op each (graph/Calls.cpp, Tracer::opaqueCall).
    for (size_t i = 0; i < m->signatures().size(); ++i)
      codegen::registerExternFn(externKey(*m, i), [m, i](const std::vector<rt::Tensor>& in) { return m->call(i, in); });
  }
  return Value::object(Tag::Native, new ModelObj(std::move(m)));
}

}  // namespace

void installModelLoader() { vm::setModelLoader(&loadModelValue); }

}  // namespace tdl
