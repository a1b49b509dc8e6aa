// A native function that graph fns call as one opaque run-time op: a loaded model's fns
// (tools/ModelValue.cpp). The tracer (graph/Calls.cpp, Tracer::opaqueCall) binds the
// arguments, flattens them to the signature's tensor leaves and emits call_runtime "extern"
// with the function's key; the compiled code finds the function by that key in codegen's
// registry (codegen::registerExternFn, codegen/Exec.h), where the model registered it when
// it loaded, and runs it as eager mode does (the same checks, the same messages).
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/DType.h"
#include "vm/Value.h"

namespace tdl::vm {

struct OpaqueLeaf {
  std::string name;                // the parameter, its path inside records and tuples (`p.w`), or the output's
  rt::DType dtype = rt::DType::F32;
  std::vector<int64_t> sizes;      // per dim; -1: symbolic, named in syms
  std::vector<std::string> syms;   // per dim; "" where the size is known
};

struct OpaqueSig {
  std::string key;                   // codegen::registerExternFn's key
  std::string name;                  // the fn, for messages
  std::vector<std::string> params;   // declared parameter names
  std::string inStructure, outStructure;  // "t" a tensor, "(...)" a tuple, "{name:...}" a record (model::Signature's)
  std::vector<OpaqueLeaf> inputs, outputs;
};

struct OpaqueFnObj : NativeObj {
  virtual const OpaqueSig& opaqueSig() const = 0;
};

// What eager calls (tools/ModelValue.cpp, over VM values) and the tracer (graph/Calls.cpp, over
// trace values) share: one binding of arguments to parameters, one walk of the signature's
// structure notation, one rebuild of the results, with one set of messages. `fail(msg)` throws.

// The argument each parameter gets: an index into the call's arguments (the npos positional
// ones first, then one per keyword name in `kw`).
template <class Fail>
std::vector<size_t> bindOpaqueArgs(const OpaqueSig& s, size_t npos, const std::vector<std::string>& kw, Fail fail) {
  size_t n = s.params.size();
  if (npos > n) fail(fmt::format("{} takes {} argument{}, got {}", s.name, n, n == 1 ? "" : "s", npos));
  constexpr size_t kUnbound = SIZE_MAX;
  std::vector<size_t> at(n, kUnbound);
  for (size_t i = 0; i < npos; ++i) at[i] = i;
  for (size_t k = 0; k < kw.size(); ++k) {
    size_t i = 0;
    while (i < n && s.params[i] != kw[k]) ++i;
    if (i == n) fail(fmt::format("{} has no parameter named '{}'", s.name, kw[k]));
    if (at[i] != kUnbound) fail(fmt::format("{} got two values for '{}'", s.name, kw[k]));
    at[i] = npos + k;
  }
  for (size_t i = 0; i < n; ++i)
    if (at[i] == kUnbound) fail(fmt::format("{} is missing its argument '{}'", s.name, s.params[i]));
  return at;
}

// Walks argument `v` (`what` names it) by s.inStructure from position p, calling
// w.leaf(v, spec) on each tensor leaf in order (spec: s.inputs[w.leaves()]). `W` answers, over
// its value type V: V expand(const V&) (the value to look into), const std::vector<V>*
// items(const V&) (a tuple's or list's, else null), bool isRecord(const V&), const V*
// field(const V&, name), size_t fieldCount(const V&), std::string describe(const V&),
// size_t leaves() (how many leaf() took so far) and [[noreturn]] fail(msg).
template <class W, class V>
void walkOpaqueArg(const OpaqueSig& s, W& w, const V& v0, size_t& p, const std::string& what) {
  const std::string& st = s.inStructure;
  char c = st[p++];
  V v = w.expand(v0);
  if (c == 't') {
    w.leaf(v, s.inputs[w.leaves()]);
    return;
  }
  if (c == '(') {
    const std::vector<V>* items = w.items(v);
    if (!items) w.fail(fmt::format("{}: '{}' must be a tuple, got {}", s.name, what, w.describe(v)));
    size_t i = 0;
    while (st[p] != ')') {
      if (i >= items->size()) w.fail(fmt::format("{}: '{}' has too few items", s.name, what));
      walkOpaqueArg(s, w, (*items)[i], p, fmt::format("{}.{}", what, i));
      ++i;
    }
    ++p;
    if (i != items->size()) w.fail(fmt::format("{}: '{}' has too many items", s.name, what));
    return;
  }
  if (!w.isRecord(v)) w.fail(fmt::format("{}: '{}' must be a record, got {}", s.name, what, w.describe(v)));
  size_t fields = 0;
  while (st[p] != '}') {
    size_t colon = st.find(':', p);
    std::string name = st.substr(p, colon - p);
    p = colon + 1;
    const V* f = w.field(v, name);
    if (!f) w.fail(fmt::format("{}: '{}' has no field '{}'", s.name, what, name));
    walkOpaqueArg(s, w, *f, p, what + "." + name);
    ++fields;
  }
  ++p;
  if (fields != w.fieldCount(v)) w.fail(fmt::format("{}: '{}' has fields the model does not take", s.name, what));
}

// The results in s.outStructure's shape (from position p): leaf() gives each tensor in order,
// tuple(items) and record(names, items) build the rest.
template <class V, class Leaf, class Tuple, class Record>
V rebuildOpaque(const std::string& st, size_t& p, Leaf& leaf, Tuple& tuple, Record& record) {
  char c = st[p++];
  if (c == 't') return leaf();
  std::vector<V> items;
  std::vector<std::string> names;
  char close = c == '(' ? ')' : '}';
  while (st[p] != close) {
    if (c == '{') {
      size_t colon = st.find(':', p);
      names.push_back(st.substr(p, colon - p));
      p = colon + 1;
    }
    items.push_back(rebuildOpaque<V>(st, p, leaf, tuple, record));
  }
  ++p;
  return c == '(' ? tuple(std::move(items)) : record(std::move(names), std::move(items));
}

}  // namespace tdl::vm
