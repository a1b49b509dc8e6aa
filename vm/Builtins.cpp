#include "vm/Builtins.h"

#include <fmt/format.h>

#include <map>
#include <optional>
#include <set>
#include <string_view>

#include "frontend/BuiltinAliases.h"
#include "frontend/Diagnostics.h"
#include "runtime/Error.h"
#include "vm/Format.h"
#include "vm/ValueOps.h"

namespace tdl::vm {

namespace {

const char* const kNames[] = {
#define BUILTIN(n) #n,
#include "frontend/builtins.def"
#undef BUILTIN
};

Value notAvailable(Interpreter&, CallArgs&) { throw rt::Error("this builtin is not available yet"); }

const BuiltinTable& table() {
  static const BuiltinTable t = [] {
    BuiltinTable b;
    b.fns.assign(kNumBuiltins, &notAvailable);
    registerCoreBuiltins(b);
    registerTensorBuiltins(b);
    registerIoBuiltins(b);
    registerUiBuiltins(b);
    registerAutodiffBuiltins(b);
    registerCompositeBuiltins(b);
    registerDistBuiltins(b);
    registerStringBuiltins(b);
    return b;
  }();
  return t;
}

}  // namespace

int builtinId(const std::string& name) {
  static const std::map<std::string, int> ids = [] {
    std::map<std::string, int> m;
    for (int i = 0; i < kNumBuiltins; ++i) m[kNames[i]] = i;
    return m;
  }();
  auto it = ids.find(name);
  return it == ids.end() ? -1 : it->second;
}

const char* builtinName(int id) { return id >= 0 && id < kNumBuiltins ? kNames[id] : "?"; }

bool builtinIsDType(int id, DType& out) {
  switch (id) {
    case kBuiltin_bool: out = DType::Bool; return true;
    case kBuiltin_i32: out = DType::I32; return true;
    case kBuiltin_i64: out = DType::I64; return true;
    case kBuiltin_f32: out = DType::F32; return true;
    case kBuiltin_f64: out = DType::F64; return true;
    default: return false;
  }
}

BuiltinFn builtinFn(int id) { return table().fns.at(static_cast<size_t>(id)); }

void BuiltinTable::add(const char* name, BuiltinFn fn) {
  int id = builtinId(name);
  if (id < 0) throw std::logic_error(fmt::format("builtin '{}' is not listed in builtins.def", name));
  fns[static_cast<size_t>(id)] = fn;
}

// ------------------------------------------------------------------ Args

std::vector<int> bindBuiltinArgs(const char* fn, const std::vector<const char*>& params, size_t required, int numPos,
                                 const std::vector<std::string>* kwNames) {
  if (static_cast<size_t>(numPos) > params.size())
    throw rt::Error(fmt::format("{}() takes at most {} arguments, got {}", fn, params.size(), numPos));
  std::vector<int> at;
  std::vector<bool> bound(params.size(), false);
  for (int i = 0; i < numPos; ++i) at.push_back(i), bound[static_cast<size_t>(i)] = true;
  for (size_t k = 0; kwNames && k < kwNames->size(); ++k) {
    const std::string& kw = (*kwNames)[k];
    const char* alias = builtinKeywordAlias(fn, kw);
    size_t j = 0;
    while (j < params.size() && kw != params[j] && !(alias && std::string_view(alias) == params[j])) ++j;
    if (j == params.size())
      throw rt::Error(fmt::format("{}() has no parameter named '{}'{}", fn, kw,
                                  didYouMean(kw, std::vector<std::string>(params.begin(), params.end()))));
    if (bound[j]) throw rt::Error(fmt::format("{}() got two values for '{}'", fn, kw));
    bound[j] = true;
    at.push_back(static_cast<int>(j));
  }
  for (size_t i = 0; i < required; ++i)
    if (!bound[i]) throw rt::Error(fmt::format("{}() is missing its argument '{}'", fn, params[i]));
  return at;
}

Args::Args(const char* fn, const CallArgs& call, std::initializer_list<const char*> params, size_t required)
    : fn_(fn), params_(params), bound_(params.size(), nullptr) {
  if (call.describe) throw BuiltinParams{fn, params_, required};
  std::vector<int> at = bindBuiltinArgs(fn, params_, required, call.numPos(), call.kwNames);
  for (size_t i = 0; i < at.size(); ++i) bound_[static_cast<size_t>(at[i])] = &call.args[i];
}

const BuiltinParams* builtinParams(Interpreter& vm, int id) {
  static std::map<int, std::optional<BuiltinParams>> cache;
  auto it = cache.find(id);
  if (it == cache.end()) {
    // Only builtins whose body starts by binding with Args can be asked; these do other
    // work first (print would print a line), and bind their variadic arguments themselves.
    static const std::set<std::string_view> unbound = {"print", "plot", "tree_map", "tape", "einsum", "zip"};
    std::optional<BuiltinParams> p;
    CallArgs call;
    call.describe = true;
    if (!unbound.count(builtinName(id))) {
      try {
        (void)builtinFn(id)(vm, call);
      } catch (const BuiltinParams& got) {
        p = got;
      } catch (...) {
      }
    }
    it = cache.emplace(id, std::move(p)).first;
  }
  return it->second ? &*it->second : nullptr;
}

const Value& Args::operator[](size_t i) const {
  static const Value none;
  return has(i) ? *bound_[i] : none;
}

void Args::fail(size_t i, const std::string& expected) const {
  const Value& v = (*this)[i];
  if (expected == "a tensor")
    throw rt::Error(tensorParamError(fn_, params_[i], typeText(v), v.tag() == Tag::List || v.tag() == Tag::Tuple));
  throw rt::Error(fmt::format("{}(): '{}' must be {}, got {}", fn_, params_[i], expected, typeText(v)));
}

void Args::fail(const std::string& msg) const { throw rt::Error(fmt::format("{}(): {}", fn_, msg)); }

rt::Tensor Args::tensor(size_t i) const {
  const Value& v = (*this)[i];
  if (!v.isNumeric()) fail(i, "a tensor");
  return toTensor(strong(v));
}

int64_t Args::integer(size_t i) const {
  const Value& v = (*this)[i];
  if (v.isScalar() && !v.isFloatScalar()) return v.rawInt();
  if (v.isTensor() && v.as<TensorObj>()->t.numel() == 1 && !rt::is_float(v.as<TensorObj>()->t.dtype()))
    return v.as<TensorObj>()->t.scalar_as_int64();
  fail(i, "an integer");
}

double Args::number(size_t i) const {
  const Value& v = (*this)[i];
  if (v.isScalar()) return strong(v).asDouble();
  if (v.isTensor() && v.as<TensorObj>()->t.numel() == 1) return v.as<TensorObj>()->t.scalar_as_double();
  fail(i, "a number");
}

bool Args::boolean(size_t i) const {
  const Value& v = (*this)[i];
  if (v.isScalar() && v.dtype() == DType::Bool) return v.rawInt() != 0;
  fail(i, "a bool");
}

DType Args::dtype(size_t i, DType dflt) const {
  if (!has(i) || (*this)[i].isNone()) return dflt;
  const Value& v = (*this)[i];
  if (v.tag() == Tag::DType) return v.dtype();
  fail(i, "a dtype (bool, i32, i64, f32, f64)");
}

std::vector<int64_t> Args::ints(size_t i) const {
  const Value& v = (*this)[i];
  std::vector<int64_t> out;
  if (v.isSeq()) {
    for (auto& x : v.as<SeqObj>()->items) {
      if (!(x.isScalar() && !x.isFloatScalar())) fail(i, "a list of integers");
      out.push_back(x.rawInt());
    }
    return out;
  }
  if (v.isTensor()) {
    const rt::Tensor& t = v.as<TensorObj>()->t;
    if (t.rank() != 1 || rt::is_float(t.dtype())) fail(i, "an integer vector");
    for (int64_t k = 0; k < t.numel(); ++k) out.push_back(t.item_int64(k));
    return out;
  }
  if (v.isScalar() && !v.isFloatScalar()) return {v.rawInt()};
  fail(i, "a list of integers");
}

rt::Shape Args::shape(size_t i) const {
  rt::Shape s = ints(i);
  for (int64_t d : s)
    if (d < 0) fail(fmt::format("'{}' has a negative size in {}", params_[i], rt::shape_str(s)));
  return s;
}

rt::Axes Args::axes(size_t i) const {
  if (!has(i) || (*this)[i].isNone()) return std::nullopt;
  return ints(i);
}

std::string Args::string(size_t i) const {
  const Value& v = (*this)[i];
  if (!v.isStr()) fail(i, "a string");
  return v.as<StrObj>()->s;
}

}  // namespace tdl::vm
