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

  // The tensor leaves of argument `v` by structure `s` (from position p).
  void leaves(const Value& v, const std::string& s, size_t& p, std::vector<rt::Tensor>& out, const std::string& what) const {
    char c = s[p++];
    if (c == 't') {
      const model::TensorSpec& spec = sig().inputs[out.size()];
      if (v.tag() == Tag::Scalar && v.weak()) {
        // A number takes the parameter's dtype where it keeps its value, as for the graph fn
        // (vm/Annotations.cpp): 1.5 is no i64, 3000000000 no i32.
        DType d;
        try {
          d = vm::weakTarget(v, spec.dtype);
        } catch (const rt::Error& e) {
          throw rt::Error(fmt::format("{}: '{}': {}", sig().name, spec.name, e.what()));
        }
        if (d != spec.dtype)
          throw rt::Error(fmt::format("{}: '{}' must be {}, got {}", sig().name, spec.name, spec.typeText(), vm::typeText(v)));
        out.push_back(vm::scalarTensor(v, spec.dtype));
        return;
      }
      if (v.tag() != Tag::Scalar && v.tag() != Tag::Tensor)
        throw rt::Error(fmt::format("{}: '{}' must be {}, got {}", sig().name, spec.name, spec.typeText(), vm::typeText(v)));
      // Compiled code the tape cannot see into: a gradient through it would be silently zero.
      if (vm::ad::recording() && v.node() != 0)
        throw rt::Error(fmt::format("{}: '{}' is recorded on a tape, but a loaded model's functions are not "
                                    "differentiable (its gradient would be zero); call it outside the tape, or on "
                                    "a value the tape does not track",
                                    sig().name, spec.name));
      out.push_back(vm::toTensor(v));
      return;
    }
    if (c == '(') {
      if (v.tag() != Tag::Tuple && v.tag() != Tag::List)
        throw rt::Error(fmt::format("{}: '{}' must be a tuple, got {}", sig().name, what, vm::typeText(v)));
      const auto& items = v.as<vm::SeqObj>()->items;
      size_t i = 0;
      while (s[p] != ')') {
        if (i >= items.size()) throw rt::Error(fmt::format("{}: '{}' has too few items", sig().name, what));
        leaves(items[i], s, p, out, fmt::format("{}.{}", what, i));
        ++i;
      }
      ++p;
      if (i != items.size()) throw rt::Error(fmt::format("{}: '{}' has too many items", sig().name, what));
      return;
    }
    // '{' a record
    if (v.tag() != Tag::Record)
      throw rt::Error(fmt::format("{}: '{}' must be a record, got {}", sig().name, what, vm::typeText(v)));
    const auto* r = v.as<vm::RecordObj>();
    size_t fields = 0;
    while (s[p] != '}') {
      size_t colon = s.find(':', p);
      std::string name = s.substr(p, colon - p);
      p = colon + 1;
      int k = r->find(name);
      if (k < 0) throw rt::Error(fmt::format("{}: '{}' has no field '{}'", sig().name, what, name));
      leaves(r->vals[static_cast<size_t>(k)], s, p, out, what + "." + name);
      ++fields;
    }
    ++p;
    if (fields != r->vals.size()) throw rt::Error(fmt::format("{}: '{}' has fields the model does not take", sig().name, what));
  }

  Value rebuild(const std::string& s, size_t& p, std::vector<rt::Tensor>& outs, size_t& k) const {
    char c = s[p++];
    if (c == 't') return vm::fromTensor(std::move(outs[k++]));
    std::vector<Value> items;
    std::vector<std::string> names;
    char close = c == '(' ? ')' : '}';
    while (s[p] != close) {
      if (c == '{') {
        size_t colon = s.find(':', p);
        names.push_back(s.substr(p, colon - p));
        p = colon + 1;
      }
      items.push_back(rebuild(s, p, outs, k));
    }
    ++p;
    if (c == '(') return vm::makeTuple(std::move(items));
    return vm::makeRecord(std::make_shared<const std::vector<std::string>>(std::move(names)), std::move(items));
  }

  Value call(vm::Interpreter&, vm::CallArgs& args) override {
    const model::Signature& s = sig();
    size_t nParams = s.params.size();
    std::vector<const Value*> bound(nParams, nullptr);
    int numPos = args.numPos();
    if (static_cast<size_t>(numPos) > nParams)
      throw rt::Error(fmt::format("{} takes {} argument{}, got {}", s.name, nParams, nParams == 1 ? "" : "s", numPos));
    for (int i = 0; i < numPos; ++i) bound[static_cast<size_t>(i)] = &args.args[i];
    for (int i = 0; i < args.numKw(); ++i) {
      const std::string& kw = (*args.kwNames)[static_cast<size_t>(i)];
      size_t k = 0;
      while (k < nParams && s.params[k] != kw) ++k;
      if (k == nParams) throw rt::Error(fmt::format("{} has no parameter named '{}'", s.name, kw));
      if (bound[k]) throw rt::Error(fmt::format("{} got two values for '{}'", s.name, kw));
      bound[k] = &args.args[numPos + i];
    }
    std::vector<rt::Tensor> inputs;
    size_t p = 0;
    for (size_t i = 0; i < nParams; ++i) {
      if (!bound[i]) throw rt::Error(fmt::format("{} is missing its argument '{}'", s.name, s.params[i]));
      leaves(*bound[i], s.inStructure, p, inputs, s.params[i]);
    }
    std::vector<rt::Tensor> outs = m->call(fn, inputs);
    size_t q = 0, k = 0;
    return rebuild(s.outStructure, q, outs, k);
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
