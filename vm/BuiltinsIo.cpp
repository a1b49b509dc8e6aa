// Builtins that reach outside the program: files (.npy, safetensors, CSV;
// paths relative to the current directory) and the random number generator.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "runtime/Error.h"
#include "runtime/Io.h"
#include "runtime/Random.h"
#include "vm/Builtins.h"

namespace tdl::vm {

namespace {

// ------------------------------------------------------------------ files

Value loadNpy(Interpreter&, CallArgs& call) {
  Args a("load_npy", call, {"path"}, 1);
  return fromTensor(rt::load_npy(a.string(0)));
}

Value saveNpy(Interpreter&, CallArgs& call) {
  Args a("save_npy", call, {"path", "x"}, 2);
  rt::save_npy(a.string(0), a.tensor(1));
  return Value();
}

Value loadCsv(Interpreter&, CallArgs& call) {
  Args a("load_csv", call, {"path", "dtype", "header"}, 1);
  return fromTensor(rt::load_csv(a.string(0), a.dtype(1, DType::F32), a.booleanOr(2, false)));
}

// The metadata key of the tree save() wrote.
constexpr const char* kTreeKey = "tdl.tree";

// A tree flattened to dotted names: records by field name, dicts by key, lists and tuples
// by position (`layers.0.w`), which other safetensors tools read; `shape` is the tree with
// each tensor as its name (a JSON string), each container as [kind, items], which save()
// keeps in the file's metadata so that load() gives the same tree back.
void flattenTree(const Value& v, const std::string& prefix, std::vector<std::pair<std::string, rt::Tensor>>& out,
                 nlohmann::json& shape) {
  auto join = [&](const std::string& k) { return prefix.empty() ? k : prefix + "." + k; };
  if (v.tag() == Tag::Record || v.tag() == Tag::Dict || v.isSeq()) {
    const char* kind = v.tag() == Tag::Record ? "record" : v.tag() == Tag::Dict ? "dict" : v.tag() == Tag::Tuple ? "tuple" : "list";
    shape = nlohmann::json::array({kind, nlohmann::json::array()});
  }
  nlohmann::json& items = v.tag() == Tag::Record || v.tag() == Tag::Dict || v.isSeq() ? shape[1] : shape;
  auto named = [&](const std::string& k) -> nlohmann::json& {
    items.push_back(nlohmann::json::array({k, nullptr}));
    return items.back()[1];
  };
  if (v.tag() == Tag::Record) {
    auto* r = v.as<RecordObj>();
    for (size_t i = 0; i < r->vals.size(); ++i)
      flattenTree(r->vals[i], join((*r->names)[i]), out, named((*r->names)[i]));
  } else if (v.tag() == Tag::Dict) {
    auto* d = v.as<DictObj>();
    for (size_t i = 0; i < d->keys.size(); ++i) {
      const std::string& k = d->keys[i];
      if (k.empty() || k.find('.') != std::string::npos)
        throw rt::Error(fmt::format("save(): the dict key \"{}\" cannot name a tensor in the file ({})", k,
                                    k.empty() ? "it is empty" : "a '.' there names nesting"));
      flattenTree(d->vals[i], join(k), out, named(k));
    }
  } else if (v.isSeq()) {
    const auto& xs = v.as<SeqObj>()->items;
    for (size_t i = 0; i < xs.size(); ++i) {
      items.push_back(nullptr);
      flattenTree(xs[i], join(std::to_string(i)), out, items.back());
    }
  } else if (v.isNumeric()) {
    out.emplace_back(prefix.empty() ? "x" : prefix, toTensor(strong(v)));
    shape = out.back().first;
  } else {
    throw rt::Error(prefix.empty() ? fmt::format("save(): the tree is a {}, not a tensor or a container of them", tagName(v.tag()))
                                   : fmt::format("save(): '{}' is a {}, not a tensor", prefix, tagName(v.tag())));
  }
}

Value save(Interpreter&, CallArgs& call) {
  Args a("save", call, {"path", "tree"}, 2);
  std::vector<std::pair<std::string, rt::Tensor>> entries;
  nlohmann::json shape;
  flattenTree(a[1], "", entries, shape);
  rt::SafetensorsMetadata meta{{kTreeKey, shape.dump()}};
  rt::save_safetensors(a.string(0), entries, &meta);
  return Value();
}

// The tree save() wrote (kTreeKey), from the file's tensors by name; nullopt where the
// metadata does not describe exactly these tensors (a file another tool wrote or changed).
std::optional<Value> savedTree(const nlohmann::json& j, std::map<std::string, rt::Tensor>& byName, int depth) {
  if (depth > 256) return std::nullopt;
  if (j.is_string()) {
    auto it = byName.find(j.get<std::string>());
    if (it == byName.end()) return std::nullopt;
    Value t = fromTensor(it->second);
    byName.erase(it);  // each tensor once
    return t;
  }
  if (!j.is_array() || j.size() != 2 || !j[0].is_string() || !j[1].is_array()) return std::nullopt;
  const std::string kind = j[0].get<std::string>();
  std::vector<Value> vals;
  std::vector<std::string> names;
  for (const nlohmann::json& item : j[1]) {
    const nlohmann::json* sub = &item;
    if (kind == "record" || kind == "dict") {
      if (!item.is_array() || item.size() != 2 || !item[0].is_string()) return std::nullopt;
      names.push_back(item[0].get<std::string>());
      sub = &item[1];
    }
    std::optional<Value> v = savedTree(*sub, byName, depth + 1);
    if (!v) return std::nullopt;
    vals.push_back(std::move(*v));
  }
  if (kind == "list") return makeList(std::move(vals));
  if (kind == "tuple") return makeTuple(std::move(vals));
  std::set<std::string> unique(names.begin(), names.end());
  if (unique.size() != names.size()) return std::nullopt;
  if (kind == "dict") return makeDict(std::move(names), std::move(vals));
  if (kind == "record") return makeRecord(std::make_shared<const std::vector<std::string>>(std::move(names)), std::move(vals));
  return std::nullopt;
}

// Rebuilding nested records from dotted names, in the order names first appear.
struct Node {
  std::vector<std::string> order;
  std::map<std::string, Node> kids;
  rt::Tensor leaf;
  bool isLeaf = false;
};

// A name that is both a tensor and the prefix of others (`a` and `a.b`) has no record to
// become: an error naming both, never a silently dropped tensor.
void insertPath(Node& root, const std::string& path, const std::string& name, const rt::Tensor& t) {
  Node* n = &root;
  size_t pos = 0;
  auto clash = [&](const std::string& prefix) {
    return rt::Error(fmt::format("'{}': the tensor names '{}' and '{}' clash: a name cannot be both a tensor and a "
                                 "record of tensors",
                                 path, prefix, name));
  };
  for (;;) {
    size_t dot = name.find('.', pos);
    std::string part = name.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (!n->kids.count(part)) n->order.push_back(part);
    n = &n->kids[part];
    if (dot == std::string::npos) break;
    if (n->isLeaf) throw clash(name.substr(0, dot));
    pos = dot + 1;
  }
  if (!n->kids.empty()) {
    std::string other = name + "." + n->order.front();
    while (!n->kids.at(n->order.front()).kids.empty()) {
      n = &n->kids.at(n->order.front());
      other += "." + n->order.front();
    }
    throw rt::Error(fmt::format("'{}': the tensor names '{}' and '{}' clash: a name cannot be both a tensor and a "
                                "record of tensors",
                                path, name, other));
  }
  n->isLeaf = true;
  n->leaf = t;
}

bool isIndexList(const Node& n) {
  for (size_t i = 0; i < n.order.size(); ++i)
    if (n.order[i] != std::to_string(i)) return false;
  return !n.order.empty();
}

bool isFieldName(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

// A level whose names are all field names is a record; 0, 1, ... a list; any other names
// (`x.0` and `x.2`, `bn 1.w`: no `r.name` could reach them) a dict by those names.
Value build(const Node& n) {
  if (n.isLeaf && n.kids.empty()) return fromTensor(n.leaf);
  std::vector<Value> vals;
  for (auto& k : n.order) vals.push_back(build(n.kids.at(k)));
  if (isIndexList(n)) return makeList(std::move(vals));
  if (!std::all_of(n.order.begin(), n.order.end(), isFieldName)) return makeDict(n.order, std::move(vals));
  return makeRecord(std::make_shared<const std::vector<std::string>>(n.order), std::move(vals));
}

Value load(Interpreter&, CallArgs& call) {
  Args a("load", call, {"path"}, 1);
  rt::SafetensorsMetadata meta;
  auto entries = rt::load_safetensors(a.string(0), &meta);
  if (auto it = meta.find(kTreeKey); it != meta.end()) {
    nlohmann::json shape = nlohmann::json::parse(it->second, nullptr, false);
    std::map<std::string, rt::Tensor> byName(entries.begin(), entries.end());
    if (!shape.is_discarded() && byName.size() == entries.size())
      if (std::optional<Value> tree = savedTree(shape, byName, 0); tree && byName.empty()) return *tree;
  }
  // By the dotted names (a file of another tool): records, and lists where the names are 0, 1, ...
  Node root;
  for (auto& [name, t] : entries) insertPath(root, a.string(0), name, t);
  return build(root);
}

ModelLoader modelLoader = nullptr;

Value loadModel(Interpreter&, CallArgs& call) {
  Args a("load_model", call, {"path"}, 1);
  std::string path = a.string(0);
  if (!modelLoader)
    a.fail("this program cannot load models: libraries made by `tdl build --lib` do not include the model loader "
           "(call the model through the C API, tdl_model.h)");
  return modelLoader(path);
}

// ----------------------------------------------------------------- random

Value seed(Interpreter&, CallArgs& call) {
  Args a("seed", call, {"n"}, 1);
  rt::seed(static_cast<uint64_t>(a.integer(0)));
  return Value();
}

Value rand(Interpreter&, CallArgs& call) {
  Args a("rand", call, {"shape", "dtype"}, 1);
  return fromTensor(rt::rand(a.shape(0), a.dtype(1, DType::F32)));
}

Value randn(Interpreter&, CallArgs& call) {
  Args a("randn", call, {"shape", "dtype"}, 1);
  return fromTensor(rt::randn(a.shape(0), a.dtype(1, DType::F32)));
}

Value randint(Interpreter&, CallArgs& call) {
  Args a("randint", call, {"lo", "hi", "shape"}, 3);
  return fromTensor(rt::randint(a.integer(0), a.integer(1), a.shape(2)));
}

Value permutation(Interpreter&, CallArgs& call) {
  Args a("permutation", call, {"n"}, 1);
  int64_t n = a.integer(0);
  if (n < 0) a.fail("'n' must not be negative");
  return fromTensor(rt::permutation(n));
}

}  // namespace

void setModelLoader(ModelLoader loader) { modelLoader = loader; }

void registerIoBuiltins(BuiltinTable& t) {
  t.add("load_npy", loadNpy);
  t.add("save_npy", saveNpy);
  t.add("load_csv", loadCsv);
  t.add("save", save);
  t.add("load", load);
  t.add("load_model", loadModel);
  t.add("seed", seed);
  t.add("rand", rand);
  t.add("randn", randn);
  t.add("randint", randint);
  t.add("permutation", permutation);
}

}  // namespace tdl::vm
