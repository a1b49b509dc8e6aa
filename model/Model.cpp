#include "model/Model.h"
#include "runtime/Kernels.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "codegen/Sha256.h"
#include "codegen/SharedCode.h"
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "runtime/DType.h"
#include "runtime/Error.h"
#include "runtime/FileIo.h"
#include "runtime/Io.h"
#include "runtime/JsonText.h"

namespace tdl::model {

using json = nlohmann::ordered_json;

namespace {

constexpr unsigned char kMagic[8] = {0x89, 'T', 'D', 'L', 'M', '\r', '\n', 0x1a};
constexpr uint64_t kAlign = 64;
constexpr int kMaxJsonDepth = 64;

void putU32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + static_cast<size_t>(i)] = static_cast<char>(v >> (8 * i));
}
void putU64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + static_cast<size_t>(i)] = static_cast<char>(v >> (8 * i));
}
uint32_t getU32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[at + static_cast<size_t>(i)]);
  return v;
}
uint64_t getU64(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[at + static_cast<size_t>(i)]);
  return v;
}
void padTo(std::string& s, uint64_t align) {
  s.append(static_cast<size_t>((align - s.size() % align) % align), '\0');
}

std::string hexBytes(const std::string& hex) {
  std::string out(32, '\0');
  for (size_t i = 0; i < 32; ++i) out[i] = static_cast<char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

std::string digestBytes(std::string_view data) { return hexBytes(codegen::sha256Hex(data)); }

json specJson(const TensorSpec& t) {
  json dims = json::array();
  for (const Dim& d : t.dims) {
    if (d.sym.empty()) dims.push_back(d.size);
    else dims.push_back(d.sym);
  }
  return json{{"name", t.name}, {"dtype", std::string(rt::dtype_name(t.dtype))}, {"shape", dims}};
}

// The weights section: a safetensors file whose data starts 64-byte aligned within the
// file (the JSON header padded with spaces, as the format allows), entries largest item
// size first so that every tensor sits at its natural alignment — a loader may map it.
std::string weightsSection(const std::vector<WeightInfo>& ws) {
  std::vector<const WeightInfo*> order;
  for (auto& w : ws) order.push_back(&w);
  std::stable_sort(order.begin(), order.end(), [](const WeightInfo* a, const WeightInfo* b) {
    return rt::itemsize(a->value.dtype()) > rt::itemsize(b->value.dtype());
  });
  std::vector<std::pair<std::string, rt::Tensor>> entries;
  for (auto* w : order) entries.emplace_back(w->name, w->value);
  return rt::safetensors_bytes(entries);
}

}  // namespace

std::string TensorSpec::typeText() const {
  std::string s = std::string(rt::dtype_name(dtype)) + "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + (dims[i].sym.empty() ? std::to_string(dims[i].size) : dims[i].sym);
  return s + "]";
}

std::string Signature::batchSym() const {
  std::string sym;
  for (const auto* list : {&inputs, &outputs})
    for (const TensorSpec& t : *list) {
      if (t.dims.empty() || t.dims[0].sym.empty()) return "";
      if (sym.empty()) sym = t.dims[0].sym;
      if (t.dims[0].sym != sym) return "";
    }
  return inputs.empty() ? "" : sym;
}

std::string Signature::text() const {
  std::string s = name + "(";
  for (size_t i = 0; i < inputs.size(); ++i) s += (i ? ", " : "") + inputs[i].name + ": " + inputs[i].typeText();
  s += ") -> ";
  if (outputs.size() != 1) s += "(";
  for (size_t i = 0; i < outputs.size(); ++i)
    s += (i ? ", " : "") + (outputs.size() == 1 ? "" : outputs[i].name + ": ") + outputs[i].typeText();
  if (outputs.size() != 1) s += ")";
  return s;
}

int structureLeaves(const std::string& s, int& items) {
  size_t p = 0;
  int depth = 0;
  std::function<int()> item = [&]() -> int {
    if (p >= s.size() || ++depth > 64) return -1;
    char c = s[p++];
    int n = 0;
    if (c == 't') {
      n = 1;
    } else if (c == '(') {
      while (p < s.size() && s[p] != ')') {
        int k = item();
        if (k < 0) return -1;
        n += k;
      }
      if (p >= s.size()) return -1;
      ++p;
    } else if (c == '{') {
      std::set<std::string> names;
      while (p < s.size() && s[p] != '}') {
        size_t colon = s.find(':', p);
        if (colon == std::string::npos || colon == p || s.find_first_of("(){}", p) < colon) return -1;
        if (!names.insert(s.substr(p, colon - p)).second) return -1;
        p = colon + 1;
        int k = item();
        if (k < 0) return -1;
        n += k;
      }
      if (p >= s.size()) return -1;
      ++p;
    } else {
      return -1;
    }
    --depth;
    return n;
  };
  int n = 0;
  items = 0;
  while (p < s.size()) {
    int k = item();
    if (k < 0) return -1;
    n += k;
    ++items;
  }
  return n;
}

std::string serialize(const ExportData& d) {
  std::string code;
  json fns = json::array();
  for (const ExportFn& f : d.fns) {
    padTo(code, kAlign);
    uint64_t off = code.size();
    code += f.object;
    json in = json::array(), out = json::array();
    for (auto& t : f.sig.inputs) in.push_back(specJson(t));
    for (auto& t : f.sig.outputs) out.push_back(specJson(t));
    fns.push_back(json{{"name", f.sig.name},
                       {"params", f.sig.params},
                       {"in_structure", f.sig.inStructure},
                       {"inputs", in},
                       {"out_structure", f.sig.outStructure},
                       {"outputs", out},
                       {"ir", f.ir},
                       {"code", json{{"offset", off}, {"size", f.object.size()}, {"entry", f.entry}, {"table", f.table}}}});
  }
  json weights = json::array();
  for (const WeightInfo& w : d.weights)
    weights.push_back(json{{"name", w.name}, {"source", w.source}, {"dtype", std::string(rt::dtype_name(w.value.dtype()))},
                           {"shape", w.value.shape()}});
  json manifest{{"format", "tdlm"},
                {"version", kFormatVersion},
                {"tdl_version", d.tdlVersion},
                {"sources", d.sources},
                {"target", json{{"triple", d.target.triple},
                                {"cpu", d.target.cpu},
                                {"features", d.target.features},
                                {"code_format", d.codeFormat}}},
                {"functions", fns},
                {"weights", weights}};
  std::string man = manifest.dump(1);

  std::string file(kHeaderSize, '\0');
  std::memcpy(file.data(), kMagic, 8);
  uint64_t manOff = file.size();
  file += man;
  padTo(file, kAlign);
  // The weights' safetensors header is padded so that the data starts 64-byte aligned.
  std::string w = weightsSection(d.weights);
  uint64_t wOff = file.size();
  file += w;
  padTo(file, kAlign);
  uint64_t codeOff = file.size();
  file += code;
  putU32(file, 8, kFormatVersion);
  putU32(file, 12, static_cast<uint32_t>(kHeaderSize));
  putU64(file, 16, file.size());
  putU64(file, 24, manOff);
  putU64(file, 32, man.size());
  putU64(file, 40, wOff);
  putU64(file, 48, w.size());
  putU64(file, 56, codeOff);
  putU64(file, 64, code.size());
  Model::sealDigest(file);
  return file;
}

// ---- reading

namespace {

struct Reader {
  std::string path;
  [[noreturn]] void fail(const std::string& msg) const {
    throw rt::Error(fmt::format("invalid model file '{}': {}", path, msg));
  }
  const json& field(const json& obj, const char* key, const std::string& where) const {
    if (!obj.is_object() || !obj.contains(key)) fail(fmt::format("{} has no '{}'", where, key));
    return obj[key];
  }
  std::string str(const json& obj, const char* key, const std::string& where) const {
    const json& v = field(obj, key, where);
    if (!v.is_string()) fail(fmt::format("{}.{} is not a string", where, key));
    return v.get<std::string>();
  }
  uint64_t u64(const json& obj, const char* key, const std::string& where) const {
    const json& v = field(obj, key, where);
    if (!v.is_number_unsigned()) fail(fmt::format("{}.{} is not a non-negative integer", where, key));
    return v.get<uint64_t>();
  }
  TensorSpec spec(const json& j, const std::string& where) const {
    TensorSpec t;
    t.name = str(j, "name", where);
    std::string dt = str(j, "dtype", where);
    auto d = rt::dtype_from_name(dt);
    if (!d) fail(fmt::format("{} has an unknown dtype '{}'", where, dt));
    t.dtype = *d;
    const json& shape = field(j, "shape", where);
    if (!shape.is_array() || shape.size() > static_cast<size_t>(rt::kMaxRank)) fail(where + ".shape is not a list of dims");
    for (const json& x : shape) {
      Dim dim;
      if (x.is_number_unsigned() && x.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)) dim.size = x.get<int64_t>();
      else if (x.is_string() && !x.get<std::string>().empty()) dim.sym = x.get<std::string>();
      else fail(where + ".shape has a dim that is neither a size nor a name");
      t.dims.push_back(dim);
    }
    return t;
  }
};

// Whether IR type `t` is what the signature leaf says.
bool sameType(const ir::TensorType& t, const TensorSpec& s) {
  if (t.dtype != s.dtype || t.dims.size() != s.dims.size()) return false;
  for (size_t i = 0; i < t.dims.size(); ++i) {
    const ir::Dim& d = t.dims[i];
    if (s.dims[i].sym.empty() ? (d.is_symbolic() || d.size != s.dims[i].size) : (!d.is_symbolic() || d.sym != s.dims[i].sym))
      return false;
  }
  return true;
}

}  // namespace

Model::~Model() = default;

int Model::find(const std::string& name) const {
  for (size_t i = 0; i < sigs_.size(); ++i)
    if (sigs_[i].name == name) return static_cast<int>(i);
  return -1;
}

void Model::sealDigest(std::string& bytes) {
  if (bytes.size() < kHeaderSize) return;
  std::string dg = digestBytes(std::string_view(bytes).substr(kHeaderSize));
  std::memcpy(bytes.data() + 72, dg.data(), 32);
}

std::unique_ptr<Model> Model::load(const std::string& path, const Options& opts) {
  std::string bytes;
  {
    rt::detail::InFile in(path);
    if (in.size() < kHeaderSize)
      Reader{path}.fail(fmt::format("the file has {} bytes, fewer than its {}-byte header", in.size(), kHeaderSize));
    bytes.resize(static_cast<size_t>(in.size()));
    in.read_at(0, bytes.data(), bytes.size(), "cannot read the model");
  }
  return fromBytes(std::move(bytes), path, opts);
}

std::unique_ptr<Model> Model::fromBytes(std::string bytes, const std::string& path, const Options& opts) {
  Reader r{path};
  if (bytes.size() < kHeaderSize)
    r.fail(fmt::format("the file has {} bytes, fewer than its {}-byte header", bytes.size(), kHeaderSize));
  if (std::memcmp(bytes.data(), kMagic, 8) != 0) r.fail("it does not start with the .tdlm magic bytes (is it a model written by tdl export?)");
  uint32_t version = getU32(bytes, 8);
  if (version != kFormatVersion)
    r.fail(fmt::format("it has format version {}; this tdl reads version {} (export it again with this tdl)", version, kFormatVersion));
  if (getU32(bytes, 12) != kHeaderSize) r.fail(fmt::format("its header size is {}, not {}", getU32(bytes, 12), kHeaderSize));
  uint64_t size = getU64(bytes, 16);
  if (size != bytes.size())
    r.fail(fmt::format("the header says {} bytes but the file has {} (truncated or appended to)", size, bytes.size()));
  struct Section {
    const char* name;
    uint64_t off, size;
  };
  Section secs[3] = {{"manifest", getU64(bytes, 24), getU64(bytes, 32)},
                     {"weights", getU64(bytes, 40), getU64(bytes, 48)},
                     {"code", getU64(bytes, 56), getU64(bytes, 64)}};
  uint64_t prevEnd = kHeaderSize;
  for (const Section& s : secs) {
    if (s.off < prevEnd || s.off > size || s.size > size - s.off)
      r.fail(fmt::format("its {} section [{}, +{}) lies outside the file or overlaps another", s.name, s.off, s.size));
    prevEnd = s.off + s.size;
  }
  std::string digest = codegen::sha256Hex(std::string_view(bytes).substr(kHeaderSize));
  if (hexBytes(digest) != bytes.substr(72, 32))
    r.fail("its checksum does not match its content (the file is damaged)");
  for (size_t i = 104; i < kHeaderSize; ++i)
    if (bytes[i] != 0) r.fail("its header's reserved bytes are not zero");

  auto m = std::unique_ptr<Model>(new Model());
  m->path_ = path;
  m->digest_ = digest;
  m->manifest_ = bytes.substr(secs[0].off, secs[0].size);
  json man;
  try {
    man = json::parse(m->manifest_, [&](int depth, json::parse_event_t, json&) {
      if (depth > kMaxJsonDepth) r.fail("its manifest is nested too deeply");
      return true;
    });
  } catch (const json::exception& e) {
    r.fail(fmt::format("its manifest is not valid JSON ({})", rt::json_error_text(e.what())));
  }
  if (!man.is_object()) r.fail("its manifest is not a JSON object");
  if (r.str(man, "format", "the manifest") != "tdlm") r.fail("its manifest's format is not \"tdlm\"");
  if (r.u64(man, "version", "the manifest") != kFormatVersion) r.fail("its manifest's version differs from its header's");
  const json& sources = r.field(man, "sources", "the manifest");
  if (!sources.is_array()) r.fail("the manifest's sources is not a list");
  for (const json& s : sources) {
    if (!s.is_string()) r.fail("the manifest's sources has an entry that is not a string");
    m->sources_.push_back(s.get<std::string>());
  }
  const json& target = r.field(man, "target", "the manifest");
  (void)r.str(man, "tdl_version", "the manifest");
  std::string triple = r.str(target, "triple", "target"), features = r.str(target, "features", "target"),
              cpu = r.str(target, "cpu", "target");
  // Files written before code formats existed hold relocatable objects.
  std::string codeFormat = target.is_object() && target.contains("code_format") ? r.str(target, "code_format", "target")
                                                                                 : std::string("object");
  if (codeFormat != "object" && codeFormat != "shared-object")
    r.fail(fmt::format("its code format '{}' is not one this tdl knows (object, shared-object)", codeFormat));
  m->triple_ = triple;
  m->codeFormat_ = codeFormat;

  // Weights.
  std::vector<std::pair<std::string, rt::Tensor>> loaded = rt::load_safetensors_bytes(
      std::string_view(bytes).substr(secs[1].off, secs[1].size), fmt::format("invalid model file '{}': its weights", path),
      /*keep_i8=*/true);
  std::map<std::string, rt::Tensor> byName(loaded.begin(), loaded.end());
  const json& wlist = r.field(man, "weights", "the manifest");
  if (!wlist.is_array()) r.fail("the manifest's weights is not a list");
  std::set<std::string> listed;
  for (size_t i = 0; i < wlist.size(); ++i) {
    std::string where = fmt::format("weights[{}]", i);
    WeightInfo w;
    w.name = r.str(wlist[i], "name", where);
    w.source = r.str(wlist[i], "source", where);
    auto it = byName.find(w.name);
    if (it == byName.end()) r.fail(fmt::format("the weight '{}' is listed but not stored", w.name));
    if (!listed.insert(w.name).second) r.fail(fmt::format("the weight '{}' is listed twice", w.name));
    w.value = it->second;
    m->weights_.push_back(std::move(w));
  }
  if (m->weights_.size() != byName.size()) r.fail("the weights section stores tensors the manifest does not list");

  // Functions.
  const json& fns = r.field(man, "functions", "the manifest");
  if (!fns.is_array() || fns.empty()) r.fail("the manifest lists no functions");
  std::string whyNot;
#if TDL_MODEL_JIT
  bool native = opts.code && !std::getenv("TDL_MODEL_RECOMPILE") && codegen::hostRuns(triple, features, whyNot);
  if (opts.code && std::getenv("TDL_MODEL_RECOMPILE")) whyNot = "TDL_MODEL_RECOMPILE is set";
#else
  // This loader has no compiler (a deployment build without LLVM, docs/edge.md): it runs
  // code linked for this machine, or nothing.
  bool native = opts.code && codegen::cpuRunsCode(triple, features, whyNot);
  // (The file is sound: these say why this loader cannot run it, and how to export one it can.)
  if (opts.code && !native)
    throw rt::Error(fmt::format("cannot load '{}': its code cannot run here ({}), and this loader (an executable "
                                "of tdl build, or a runtime of tdl runtime), built without LLVM, cannot recompile it "
                                "from its IR: export the model with --target for this machine, or load it with tdl",
                                path, whyNot));
  if (opts.code && codeFormat != "shared-object")
    throw rt::Error(fmt::format("cannot load '{}': its code is relocatable objects, which only tdl links (with "
                                "LLVM); this loader (an executable of tdl build, or a runtime of tdl runtime) runs "
                                "models exported with --target {}",
                                path, triple));
#endif
  std::set<std::string> names;
  for (size_t i = 0; i < fns.size(); ++i) {
    const json& f = fns[i];
    std::string where = fmt::format("functions[{}]", i);
    Signature sig;
    sig.name = r.str(f, "name", where);
    if (!names.insert(sig.name).second) r.fail(fmt::format("the function '{}' is listed twice", sig.name));
    const json& params = r.field(f, "params", where);
    if (!params.is_array()) r.fail(where + ".params is not a list");
    for (const json& p : params) {
      if (!p.is_string()) r.fail(where + ".params has an entry that is not a string");
      sig.params.push_back(p.get<std::string>());
    }
    sig.inStructure = r.str(f, "in_structure", where);
    sig.outStructure = r.str(f, "out_structure", where);
    for (const char* k : {"inputs", "outputs"}) {
      const json& list = r.field(f, k, where);
      if (!list.is_array()) r.fail(fmt::format("{}.{} is not a list", where, k));
      for (size_t j = 0; j < list.size(); ++j)
        (k[0] == 'i' ? sig.inputs : sig.outputs).push_back(r.spec(list[j], fmt::format("{}.{}[{}]", where, k, j)));
    }
    int items = 0;
    if (structureLeaves(sig.inStructure, items) != static_cast<int>(sig.inputs.size()) ||
        items != static_cast<int>(sig.params.size()))
      r.fail(fmt::format("{}.in_structure does not describe its {} parameters and {} inputs", where, sig.params.size(),
                         sig.inputs.size()));
    if (structureLeaves(sig.outStructure, items) != static_cast<int>(sig.outputs.size()) || items != 1)
      r.fail(fmt::format("{}.out_structure does not describe one result of {} outputs", where, sig.outputs.size()));
    // The IR, its weights resolved, checked against the signature.
    std::string irText = r.str(f, "ir", where);
    std::unique_ptr<ir::Module> mod;
    try {
      mod = ir::parse_module(irText, [&](const std::string& name) -> rt::Tensor {
        auto it = byName.find(name);
        if (it == byName.end()) throw rt::Error(fmt::format("no weight named '{}' is stored", name));
        return it->second;
      });
    } catch (const ir::ParseError& e) {
      r.fail(fmt::format("the IR of '{}': {}", sig.name, e.what()));
    }
    if (mod->functions.size() != 1) r.fail(fmt::format("the IR of '{}' is not one function", sig.name));
    ir::Function& fn = *mod->functions[0];
    std::vector<std::string> errs = ir::verify(fn);
    if (!errs.empty()) r.fail(fmt::format("the IR of '{}' does not verify: {}", sig.name, errs[0]));
    auto params_ = fn.params();
    if (params_.size() != sig.inputs.size() || fn.result_types.size() != sig.outputs.size())
      r.fail(fmt::format("the IR of '{}' has {} parameters and {} results, its signature {} and {}", sig.name,
                         params_.size(), fn.result_types.size(), sig.inputs.size(), sig.outputs.size()));
    for (size_t j = 0; j < params_.size(); ++j)
      if (!sameType(params_[j]->type, sig.inputs[j]))
        r.fail(fmt::format("the IR of '{}' takes {} where its signature says {}", sig.name, params_[j]->type.str(),
                           sig.inputs[j].typeText()));
    for (size_t j = 0; j < fn.result_types.size(); ++j)
      if (!sameType(fn.result_types[j], sig.outputs[j]))
        r.fail(fmt::format("the IR of '{}' returns {} where its signature says {}", sig.name, fn.result_types[j].str(),
                           sig.outputs[j].typeText()));
    codegen::KernelSet kernels;
    codegen::collectKernels(fn, kernels);
    // A minimal runtime (`tdl runtime`) refuses a model that needs a kernel it left out
    // now, not at the call that would reach it.
    if (opts.code) {
      std::string missing = codegen::missingKernel(kernels);
      if (!missing.empty())
        throw rt::Error(fmt::format("cannot load '{}': fn '{}' uses {}, which this runtime left out (it is a "
                                    "minimal runtime made by `tdl runtime` for {}); make one for this model too",
                                    path, sig.name, missing, tdlk_kernels_for));
    }
    m->kernels_.merge(kernels);
    const json& code = r.field(f, "code", where);
    uint64_t off = r.u64(code, "offset", where + ".code"), n = r.u64(code, "size", where + ".code");
    std::string entry = r.str(code, "entry", where + ".code"), table = r.str(code, "table", where + ".code");
    if (off > secs[2].size || n > secs[2].size - off) r.fail(fmt::format("{}.code lies outside the code section", where));
    Fn loadedFn;
    if (opts.code) {
      try {
        if (native && codeFormat == "shared-object") {
          loadedFn.code = codegen::loadSharedObject(std::move(mod), fn, bytes.substr(secs[2].off + off, n), entry, table);
          loadedFn.how = "shared object for " + cpu;
        } else if (native) {
#if TDL_MODEL_JIT
          loadedFn.code = codegen::loadObject(std::move(mod), fn, bytes.substr(secs[2].off + off, n), entry, table);
          loadedFn.how = "object code for " + cpu;
#endif
        } else {
#if TDL_MODEL_JIT
          loadedFn.code = codegen::compile(std::move(mod), fn, nullptr);
          if (loadedFn.code->optimized.valid()) {
            loadedFn.code->optimized.wait();
            codegen::tierUp(loadedFn.code);
          }
          loadedFn.how = "recompiled from its IR (" + whyNot + ")";
#endif
        }
      } catch (const std::runtime_error& e) {
        r.fail(fmt::format("the code of '{}': {}", sig.name, e.what()));
      }
    }
    m->sigs_.push_back(std::move(sig));
    m->fns_.push_back(std::move(loadedFn));
  }
  return m;
}

void Model::check(size_t i, const std::vector<rt::Tensor>& inputs) const { checkInputs(sigs_.at(i), inputs); }

void checkInputs(const Signature& sig, const std::vector<rt::Tensor>& inputs) {
  if (inputs.size() != sig.inputs.size())
    throw rt::Error(fmt::format("{} takes {} tensor{}, got {}", sig.name, sig.inputs.size(), sig.inputs.size() == 1 ? "" : "s",
                                inputs.size()));
  std::map<std::string, int64_t> syms;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const TensorSpec& s = sig.inputs[k];
    const rt::Tensor& x = inputs[k];
    auto bad = [&](const std::string& why) {
      return rt::Error(fmt::format("{}: '{}' must be {}, got {}[{}]{}", sig.name, s.name, s.typeText(),
                                   rt::dtype_name(x.dtype()), fmt::join(x.shape(), ", "), why));
    };
    if (x.dtype() != s.dtype || static_cast<size_t>(x.rank()) != s.dims.size()) throw bad("");
    for (size_t d = 0; d < s.dims.size(); ++d) {
      int64_t n = x.dim(static_cast<int64_t>(d));
      if (s.dims[d].sym.empty()) {
        if (n != s.dims[d].size) throw bad("");
      } else {
        auto [it, fresh] = syms.emplace(s.dims[d].sym, n);
        if (!fresh && it->second != n)
          throw bad(fmt::format(" ({} is {} in an earlier argument)", s.dims[d].sym, it->second));
      }
    }
  }
}

std::vector<rt::Tensor> Model::call(size_t i, const std::vector<rt::Tensor>& inputs) const {
  const Signature& sig = sigs_.at(i);
  const Fn& f = fns_.at(i);
  if (!f.code) throw rt::Error(fmt::format("{}: the model was opened for inspection only", sig.name));
  check(i, inputs);
  std::vector<rt::Tensor> out;
  codegen::ExecError err;
  if (!f.code->run(inputs, out, err)) {
    std::string where;
    if (err.op && err.op->loc.valid()) {
      std::string file = err.op->loc.file < sources_.size() ? sources_[err.op->loc.file] : "?";
      where = fmt::format(" (at {}:{}:{})", file, err.op->loc.line, err.op->loc.col);
    }
    throw rt::Error(fmt::format("{}: {}{}", sig.name, err.message, where));
  }
  // The compiled code's results are the signature's (a file whose table and IR disagree
  // with it never returns other tensors than it declares).
  if (out.size() != sig.outputs.size())
    throw rt::Error(fmt::format("{}: the model's code returned {} tensors for {} outputs", sig.name, out.size(),
                                sig.outputs.size()));
  for (size_t k = 0; k < out.size(); ++k)
    if (out[k].dtype() != sig.outputs[k].dtype || static_cast<size_t>(out[k].rank()) != sig.outputs[k].dims.size())
      throw rt::Error(fmt::format("{}: the model's code returned {}[{}] for {} '{}'", sig.name,
                                  rt::dtype_name(out[k].dtype()), fmt::join(out[k].shape(), ", "),
                                  sig.outputs[k].typeText(), sig.outputs[k].name));
  return out;
}

}  // namespace tdl::model
