// Builtins that reach outside the program: files (.npy, safetensors, CSV;
// paths relative to the current directory) and the random number generator.
#include <fmt/format.h>

#include <map>

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

// A tree flattened to dotted names: records by field name, dicts by key, lists and tuples
// by position (`layers.0.w`). load() gives records back.
void flattenTree(const Value& v, const std::string& prefix, std::vector<std::pair<std::string, rt::Tensor>>& out) {
  auto join = [&](const std::string& k) { return prefix.empty() ? k : prefix + "." + k; };
  if (v.tag() == Tag::Record) {
    auto* r = v.as<RecordObj>();
    for (size_t i = 0; i < r->vals.size(); ++i) flattenTree(r->vals[i], join((*r->names)[i]), out);
  } else if (v.tag() == Tag::Dict) {
    auto* d = v.as<DictObj>();
    for (size_t i = 0; i < d->keys.size(); ++i) {
      const std::string& k = d->keys[i];
      if (k.empty() || k.find('.') != std::string::npos)
        throw rt::Error(fmt::format("save(): the dict key \"{}\" cannot name a tensor in the file ({})", k,
                                    k.empty() ? "it is empty" : "a '.' there names nesting"));
      flattenTree(d->vals[i], join(k), out);
    }
  } else if (v.isSeq()) {
    const auto& items = v.as<SeqObj>()->items;
    for (size_t i = 0; i < items.size(); ++i) flattenTree(items[i], join(std::to_string(i)), out);
  } else if (v.isNumeric()) {
    out.emplace_back(prefix.empty() ? "x" : prefix, toTensor(strong(v)));
  } else {
    throw rt::Error(prefix.empty() ? fmt::format("save(): the tree is a {}, not a tensor or a container of them", tagName(v.tag()))
                                   : fmt::format("save(): '{}' is a {}, not a tensor", prefix, tagName(v.tag())));
  }
}

Value save(Interpreter&, CallArgs& call) {
  Args a("save", call, {"path", "tree"}, 2);
  std::vector<std::pair<std::string, rt::Tensor>> entries;
  flattenTree(a[1], "", entries);
  rt::save_safetensors(a.string(0), entries);
  return Value();
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

Value build(const Node& n) {
  if (n.isLeaf && n.kids.empty()) return fromTensor(n.leaf);
  std::vector<Value> vals;
  for (auto& k : n.order) vals.push_back(build(n.kids.at(k)));
  if (isIndexList(n)) return makeList(std::move(vals));
  return makeRecord(std::make_shared<const std::vector<std::string>>(n.order), std::move(vals));
}

Value load(Interpreter&, CallArgs& call) {
  Args a("load", call, {"path"}, 1);
  Node root;
  for (auto& [name, t] : rt::load_safetensors(a.string(0))) insertPath(root, a.string(0), name, t);
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
