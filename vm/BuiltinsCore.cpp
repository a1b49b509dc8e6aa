// Builtins about values in general: printing and text, len/range, numbers
// from strings, time/args/exit/assert and tree functions (the autodiff
// entry points are in BuiltinsAutodiff.cpp).
#include <fmt/format.h>

#include <chrono>
#include <algorithm>
#include <cctype>
#include <optional>
#include <cstdlib>

#include "runtime/Error.h"
#include "runtime/Reduce.h"
#include "runtime/Print.h"
#include "runtime/Dist.h"
#include "vm/Builtins.h"
#include "vm/ValueOps.h"
#include "vm/Format.h"
#include "vm/Interpreter.h"

namespace tdl::vm {

namespace {

Value print(Interpreter& vm, CallArgs& call) {
  std::string sep = " ", end = "\n";
  bool allRanks = false;
  for (int k = 0; k < call.numKw(); ++k) {
    const std::string& name = (*call.kwNames)[static_cast<size_t>(k)];
    const Value& v = call.args[call.numPos() + k];
    if (name == "all_ranks") {
      if (!v.isScalar() || v.dtype() != DType::Bool)
        throw rt::Error(fmt::format("print(): 'all_ranks' must be true or false, got {}", typeText(v)));
      allRanks = v.asInt() != 0;
      continue;
    }
    if (name != "sep" && name != "end")
      throw rt::Error(fmt::format("print() has no parameter named '{}'", name));
    if (!v.isStr()) throw rt::Error(fmt::format("print(): '{}' must be a string, got {}", name, typeText(v)));
    (name == "sep" ? sep : end) = v.as<StrObj>()->s;
  }
  std::string out;
  for (int i = 0; i < call.numPos(); ++i) {
    if (i) out += sep;
    out += str(call.args[i]);
  }
  out += end;
  if (!rt::dist::prints_here(allRanks)) return Value();  // rank 0 prints (SPEC §12)
  rt::write_output(out, vm.out());
  return Value();
}

Value strFn(Interpreter&, CallArgs& call) {
  Args a("str", call, {"x"}, 1);
  return makeStr(str(a[0]));
}

Value reprFn(Interpreter&, CallArgs& call) {
  Args a("repr", call, {"x"}, 1);
  return makeStr(repr(a[0]));
}

Value formatFn(Interpreter&, CallArgs& call) {
  Args a("format", call, {"x", "spec"}, 1);
  if (a[0].isStr() && a.has(1) && !a[1].isStr()) a.fail(kStrFormatHint);
  return makeStr(formatWithSpec(a[0], a.has(1) ? a.string(1) : ""));
}

// enumerate(xs, start=0), zip(xs...), reversed(xs) (SPEC §12): lists of the items of
// anything a `for` iterates over (lists, tuples, ranges, strings, a tensor's rows).
std::vector<Value> itemsOf(const Value& v) {
  int64_t n = iterLength(v);
  std::vector<Value> out;
  out.reserve(listItemsFit(n));
  for (int64_t i = 0; i < n; ++i) out.push_back(iterItem(v, i));
  return out;
}

Value enumerateFn(Interpreter&, CallArgs& call) {
  Args a("enumerate", call, {"xs", "start"}, 1);
  int64_t start = a.integerOr(1, 0);
  std::vector<Value> items = itemsOf(a[0]), out;
  for (size_t i = 0; i < items.size(); ++i)
    out.push_back(makeTuple({Value::i64(start + static_cast<int64_t>(i), true), items[i]}));
  return makeList(std::move(out));
}

Value zipFn(Interpreter&, CallArgs& call) {
  if (call.numKw()) throw rt::Error("zip() takes no keyword arguments");
  std::vector<std::vector<Value>> cols;
  size_t n = SIZE_MAX;
  for (int i = 0; i < call.n; ++i) {
    cols.push_back(itemsOf(call.args[i]));
    n = std::min(n, cols.back().size());
  }
  std::vector<Value> out;
  for (size_t k = 0; k < (cols.empty() ? 0 : n); ++k) {
    std::vector<Value> row;
    for (auto& c : cols) row.push_back(c[k]);
    out.push_back(makeTuple(std::move(row)));
  }
  return makeList(std::move(out));
}

Value reversedFn(Interpreter&, CallArgs& call) {
  Args a("reversed", call, {"xs"}, 1);
  std::vector<Value> items = itemsOf(a[0]);
  std::reverse(items.begin(), items.end());
  return makeList(std::move(items));
}

// list(xs) / tuple(xs): the items `for` iterates (Python's); list() is [] and tuple() ().
template <Tag kTag>
Value sequenceOf(Interpreter&, CallArgs& call) {
  Args a(kTag == Tag::List ? "list" : "tuple", call, {"xs"}, 0);
  std::vector<Value> items = a.has(0) ? itemsOf(a[0]) : std::vector<Value>{};
  return kTag == Tag::List ? makeList(std::move(items)) : makeTuple(std::move(items));
}

// sorted(xs, key=none, reverse=false): Python's, stable; numbers, strings, tuples and lists
// of them (vm/ValueOps.h orderValues), or the keys key(item) gives.
Value sortedFn(Interpreter& vm, CallArgs& call) {
  if (!call.describe && call.numPos() > 1) throw rt::Error(sortedKeywordsOnly(call.numPos()));
  Args a("sorted", call, {"xs", "key", "reverse"}, 1);
  std::vector<Value> items = itemsOf(a[0]), keys;
  const bool byKey = a.has(1) && !a[1].isNone();
  for (const Value& x : items) keys.push_back(byKey ? vm.call(a[1], {x}) : x);
  return makeList(sortedItems(items, keys, a.booleanOr(2, false)));
}

Value len(Interpreter&, CallArgs& call) {
  Args a("len", call, {"x"}, 1);
  const Value& v = a[0];
  switch (v.tag()) {
    case Tag::Str: return Value::i64(v.as<StrObj>()->length());
    case Tag::Tuple:
    case Tag::List: return Value::i64(static_cast<int64_t>(v.as<SeqObj>()->items.size()));
    case Tag::Record: return Value::i64(static_cast<int64_t>(v.as<RecordObj>()->vals.size()));
    case Tag::Dict: return Value::i64(static_cast<int64_t>(v.as<DictObj>()->keys.size()));
    case Tag::Range: return Value::i64(v.as<RangeObj>()->checkedLength());
    case Tag::Tensor: return Value::i64(v.as<TensorObj>()->t.dim(0));
    default: a.fail(0, "a string, tuple, list, record, dict, range or tensor of rank >= 1");
  }
}

Value range(Interpreter&, CallArgs& call) {
  Args a("range", call, {"start", "stop", "step"}, 1);
  int64_t start = 0, stop, step = 1;
  if (a.has(1)) {
    start = a.integer(0);
    stop = a.integer(1);
    step = a.integerOr(2, 1);
  } else {
    try {
      stop = a.integer(0);
    } catch (const rt::Error&) {  // range(n): its one argument is the stop
      a.fail(fmt::format("'stop' must be an integer, got {}", typeText(a[0])));
    }
  }
  if (step == 0) a.fail("'step' must not be zero");
  return makeRange(start, stop, step);
}

std::string trimmed(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\n\r"), e = s.find_last_not_of(" \t\n\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// The text of a number as Python's int() and float() read it: an underscore only between two
// digits (PEP 515: "1_000", not "_1", "1_" or "1__0"), which goes; nullopt for any other.
std::optional<std::string> withoutUnderscores(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '_') {
      out += s[i];
      continue;
    }
    auto digit = [&](size_t j) { return j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])); };
    if (i == 0 || !digit(i - 1) || !digit(i + 1)) return std::nullopt;
  }
  return out;
}

// Whether t (underscores gone) is a decimal number as Python's float() reads it: a sign, then
// digits with an optional point and exponent, or inf / infinity / nan in any case (no hex,
// no nan(...) payloads, which strtod would take).
bool pythonFloatText(const std::string& t) {
  size_t i = t.empty() || (t[0] != '+' && t[0] != '-') ? 0 : 1;
  std::string rest = t.substr(i);
  std::string low;
  for (char c : rest) low += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (low == "inf" || low == "infinity" || low == "nan") return true;
  auto digits = [&](size_t& j) {
    size_t k = j;
    while (j < rest.size() && std::isdigit(static_cast<unsigned char>(rest[j]))) ++j;
    return j - k;
  };
  size_t j = 0;
  size_t mant = digits(j);
  if (j < rest.size() && rest[j] == '.') {
    ++j;
    mant += digits(j);
  }
  if (mant == 0) return false;
  if (j < rest.size() && (rest[j] == 'e' || rest[j] == 'E')) {
    ++j;
    if (j < rest.size() && (rest[j] == '+' || rest[j] == '-')) ++j;
    if (digits(j) == 0) return false;
  }
  return j == rest.size();
}

Value intFn(Interpreter&, CallArgs& call) {
  Args a("int", call, {"x"}, 1);
  const Value& v = a[0];
  if (v.isStr()) {
    std::string s = trimmed(v.as<StrObj>()->s);
    std::string digits = withoutUnderscores(s).value_or("");
    // Python's: a sign, then decimal digits only (strtoll would also skip inner blanks).
    size_t first = !digits.empty() && (digits[0] == '+' || digits[0] == '-') ? 1 : 0;
    if (first >= digits.size() ||
        !std::all_of(digits.begin() + static_cast<long>(first), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      digits.clear();
    char* endp = nullptr;
    errno = 0;
    long long n = std::strtoll(digits.c_str(), &endp, 10);
    if (digits.empty() || *endp != '\0' || errno == ERANGE)
      throw rt::Error(fmt::format("int(): cannot read an integer from \"{}\"", v.as<StrObj>()->s));
    return Value::i64(n);
  }
  // Floats truncate toward zero; NaN, infinities and numbers beyond i64 have no integer
  // (Python's ValueError/OverflowError), in the words of graph fns' run-time check.
  double d = v.isScalar() ? strong(v).asDouble() : a.number(0);
  bool isFloat = v.isScalar() ? strong(v).isFloatScalar() : rt::is_float(v.as<TensorObj>()->t.dtype());
  if (isFloat && !floatFitsI64(d))
    throw rt::Error(rt::fill_format(kIntOfFloatError, {rt::Tensor::scalar_of(v.isScalar() ? strong(v).dtype() : v.as<TensorObj>()->t.dtype(), d)}));
  if (v.isScalar()) return Value::i64(strong(v).asInt());
  if (!isFloat) return Value::i64(v.as<TensorObj>()->t.scalar_as_int64());  // exactly, not through a double
  return Value::i64(static_cast<int64_t>(d));
}

Value floatFn(Interpreter&, CallArgs& call) {
  Args a("float", call, {"x"}, 1);
  const Value& v = a[0];
  if (v.isStr()) {
    std::string s = withoutUnderscores(trimmed(v.as<StrObj>()->s)).value_or("");
    char* endp = nullptr;
    double d = std::strtod(s.c_str(), &endp);
    if (s.empty() || *endp != '\0' || !pythonFloatText(s))
      throw rt::Error(fmt::format("float(): cannot read a number from \"{}\"", v.as<StrObj>()->s));
    return Value::f32(static_cast<float>(d));
  }
  return Value::f32(static_cast<float>(a.number(0)));
}

Value timeFn(Interpreter&, CallArgs& call) {
  Args a("time", call, {}, 0);
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return Value::f64(std::chrono::duration<double>(now).count());
}

Value argsFn(Interpreter& vm, CallArgs& call) {
  Args a("args", call, {}, 0);
  std::vector<Value> out;
  for (auto& s : vm.options().scriptArgs) out.push_back(makeStr(s));
  return makeList(std::move(out));
}

Value exitFn(Interpreter& vm, CallArgs& call) {
  // A compiled graph fn cannot end the process: the same error in every mode (graph/Builtins.cpp's).
  if (vm.inGraphFn()) throw rt::Error("'exit' is not supported inside graph fns yet");
  Args a("exit", call, {"code"}, 0);
  int64_t code = a.integerOr(0, 0);
  // A process's exit status is one byte: 256 would read as 0 (success) to the caller.
  if (code < 0 || code > 255) throw rt::Error(fmt::format("exit(): the code must be in 0..255, got {}", code));
  throw ExitRequest{static_cast<int>(code)};
}

// Whether assert's cond holds: a bool, or a bool tensor whose elements all hold.
bool assertHolds(const Args& a) {
  const Value& c = a[0];
  if (c.isScalar() && c.dtype() == DType::Bool) return c.rawInt() != 0;
  if (c.isTensor() && c.as<TensorObj>()->t.dtype() == DType::Bool) return rt::all(c.as<TensorObj>()->t).scalar_as_bool();
  a.fail(0, "a bool");
}

// _assert_holds(cond): the test of Python's `assert c, message` statement, which makes its
// message only when c fails (frontend/AstBuilder.cpp); assert's words for a cond of no bool.
Value assertHoldsFn(Interpreter&, CallArgs& call) {
  Args a("assert", call, {"cond"}, 1);
  return Value::boolean(assertHolds(a));
}

Value assertFn(Interpreter&, CallArgs& call) {
  Args a("assert", call, {"cond", "message"}, 1);
  const bool ok = assertHolds(a);
  if (!ok) {
    std::string msg = a.has(1) ? str(a[1]) : "";
    throw rt::Error(msg.empty() ? "assertion failed" : "assertion failed: " + msg);
  }
  return Value();
}

// ---------------------------------------------------------------- trees

bool isNode(const Value& v) { return v.tag() == Tag::Record || v.tag() == Tag::Dict || v.isSeq(); }

Value treeMap(Interpreter& vm, const Value& f, const std::vector<Value>& trees) {
  const Value& t = trees[0];
  if (!isNode(t)) return vm.call(f, trees);
  for (size_t i = 1; i < trees.size(); ++i) {
    const Value& o = trees[i];
    bool same = o.tag() == t.tag();
    if (same && t.tag() == Tag::Record) same = *o.as<RecordObj>()->names == *t.as<RecordObj>()->names;
    if (same && t.tag() == Tag::Dict) same = o.as<DictObj>()->keys == t.as<DictObj>()->keys;
    if (same && t.isSeq()) same = o.as<SeqObj>()->items.size() == t.as<SeqObj>()->items.size();
    if (!same) {
      // Name what differs: the kinds, a record's fields, a dict's keys, a list's length.
      std::string why = fmt::format("{} and {}", typeText(t), typeText(o));
      if (o.tag() == t.tag() && t.isSeq())
        why = fmt::format("{}s of {} and {} items", tagName(t.tag()), t.as<SeqObj>()->items.size(), o.as<SeqObj>()->items.size());
      else if (o.tag() == t.tag())
        why = fmt::format("{} and {}", structureText(t), structureText(o));
      throw rt::Error(fmt::format("tree_map(): the trees have different structures ({})", why));
    }
  }
  auto children = [](const Value& v) -> const std::vector<Value>& {
    if (v.tag() == Tag::Dict) return v.as<DictObj>()->vals;
    return v.tag() == Tag::Record ? v.as<RecordObj>()->vals : v.as<SeqObj>()->items;
  };
  size_t n = children(t).size();
  std::vector<Value> out;
  out.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    std::vector<Value> leaves;
    for (auto& tr : trees) leaves.push_back(children(tr)[k]);
    out.push_back(treeMap(vm, f, leaves));
  }
  if (t.tag() == Tag::Record) return makeRecord(t.as<RecordObj>()->names, std::move(out));
  if (t.tag() == Tag::Dict) return makeDict(t.as<DictObj>()->keys, std::move(out));
  return Value::object(t.tag(), new SeqObj(std::move(out)));
}

Value treeMapFn(Interpreter& vm, CallArgs& call) {
  if (call.numKw() > 0) throw rt::Error("tree_map() takes no keyword arguments");
  if (call.n < 2) throw rt::Error("tree_map(f, tree, ...) needs a function and at least one tree");
  std::vector<Value> trees(call.args + 1, call.args + call.n);
  return treeMap(vm, call.args[0], trees);
}

void collectLeaves(const Value& v, std::vector<Value>& out) {
  if (v.tag() == Tag::Record) {
    for (auto& x : v.as<RecordObj>()->vals) collectLeaves(x, out);
  } else if (v.tag() == Tag::Dict) {
    for (auto& x : v.as<DictObj>()->vals) collectLeaves(x, out);
  } else if (v.isSeq()) {
    for (auto& x : v.as<SeqObj>()->items) collectLeaves(x, out);
  } else {
    out.push_back(v);
  }
}

Value treeLeaves(Interpreter&, CallArgs& call) {
  Args a("tree_leaves", call, {"tree"}, 1);
  std::vector<Value> out;
  collectLeaves(a[0], out);
  return makeList(std::move(out));
}

// set_printoptions(precision=none, threshold=1000, linewidth=80) (SPEC §12): each call sets
// all three; one left out (or none) takes its default, where rows do not wrap (SPEC §8).
Value setPrintoptions(Interpreter&, CallArgs& call) {
  Args a("set_printoptions", call, {"precision", "threshold", "linewidth"}, 0);
  rt::PrintOptions o;
  auto given = [&](size_t i) { return a.has(i) && !a[i].isNone(); };
  auto check = [&](bool ok, const char* name, const char* want, int64_t got) {
    if (!ok) a.fail(fmt::format("'{}' must be {}, got {}", name, want, got));
  };
  if (given(0)) {
    int64_t p = a.integer(0);
    check(p >= 0 && p <= 40, "precision", "an integer from 0 to 40 (or none)", p);
    o.precision = static_cast<int>(p);
  }
  if (given(1)) {
    o.threshold = a.integer(1);
    check(o.threshold >= 0, "threshold", "a non-negative integer", o.threshold);
  }
  if (given(2)) {
    o.linewidth = a.integer(2);
    check(o.linewidth >= 1, "linewidth", "a positive integer", o.linewidth);
  }
  rt::print_options() = o;
  return Value();
}

}  // namespace

void registerCoreBuiltins(BuiltinTable& t) {
  t.add("print", print);
  t.add("str", strFn);
  t.add("repr", reprFn);
  t.add("format", formatFn);
  t.add("set_printoptions", setPrintoptions);
  t.add("len", len);
  t.add("enumerate", enumerateFn);
  t.add("zip", zipFn);
  t.add("reversed", reversedFn);
  t.add("list", sequenceOf<Tag::List>);
  t.add("tuple", sequenceOf<Tag::Tuple>);
  t.add("sorted", sortedFn);
  t.add("range", range);
  t.add("int", intFn);
  t.add("float", floatFn);
  t.add("time", timeFn);
  t.add("args", argsFn);
  t.add("exit", exitFn);
  t.add("assert", assertFn);
  t.add("_assert", assertFn);  // the assert statement's: never a local named assert
  t.add("_assert_holds", assertHoldsFn);
  t.add("tree_map", treeMapFn);
  t.add("tree_leaves", treeLeaves);
}

}  // namespace tdl::vm
