// The builtins of vm/Composite.h in eager mode, and einsum (variadic).
#include "vm/Builtins.h"
#include "vm/Composite.h"
#include "runtime/Print.h"
#include "vm/Interpreter.h"
#include "vm/NumericOps.h"
#include "runtime/Index.h"
#include "runtime/Scan.h"
#include "vm/autodiff/Ops.h"

namespace tdl::vm {
namespace {

// vm/Composite.h's engine: each step runs now (and records while a tape does).
struct Eager {
  using V = Value;
  Interpreter& vm;
  const Args& a;

  bool has(size_t i) const { return a.has(i); }
  V arg(size_t i) const { return a[i]; }
  bool isNone(size_t i) const { return !a.has(i) || a[i].isNone(); }
  int64_t intArg(size_t i, int64_t d) const { return a.integerOr(i, d); }
  V intValueArg(size_t i, int64_t d) const { return Value::i64(a.integerOr(i, d), true); }
  double numArg(size_t i, double d) const { return isNone(i) ? d : a.number(i); }
  bool boolArg(size_t i, bool d) const { return a.booleanOr(i, d); }
  bool isScalarArg(size_t i) const { return a[i].isScalar(); }
  std::vector<int64_t> sizesArg(size_t i) const {
    if (a[i].isScalar()) return {a.integer(i)};
    return a.ints(i);
  }
  [[noreturn]] void fail(const std::string& m) const { a.fail(m); }
  [[noreturn]] void failLimit(const std::string& m) const { a.fail(m); }
  bool numeric(const V& v) const { return v.isNumeric(); }
  bool floating(const V& v) const {
    return v.isTensor() ? rt::is_float(v.as<TensorObj>()->t.dtype()) : v.isNumeric() && rt::is_float(v.dtype());
  }
  DType dtype(const V& v) const { return v.isTensor() ? v.as<TensorObj>()->t.dtype() : v.dtype(); }
  std::string describe(const V& v) const { return typeText(v); }
  int64_t rank(const V& v) const { return static_cast<int64_t>(ad::shapeOf(v).size()); }
  std::optional<int64_t> knownDim(const V& v, int64_t axis) const {
    rt::Shape s = ad::shapeOf(v);
    return s[static_cast<size_t>(rt::normalize_axis(axis, static_cast<int64_t>(s.size())))];
  }
  V dim(const V& v, int64_t axis) const { return Value::i64(*knownDim(v, axis), true); }
  bool sameDim(const V& x, int64_t a, const V& y, int64_t b) const { return knownDim(x, a) == knownDim(y, b); }
  V call(const char* nm, std::vector<V> vals, std::vector<std::pair<const char*, V>> kw) {
    std::vector<std::string> names;
    for (auto& [k, v] : kw) vals.push_back(v), names.push_back(k);
    CallArgs ca{vals.data(), static_cast<int>(vals.size()), names.empty() ? nullptr : &names};
    return builtinFn(builtinId(nm))(vm, ca);
  }
  V bin(rt::BinaryOp op, const V& x, const V& y) { return binaryValues(op, x, y); }
  V un(rt::UnaryOp op, const V& x) { return unaryValues(op, x); }
  V num(double d) { return Value::weakFloat(d); }
  V integer(int64_t i) { return Value::i64(i, true); }
  V boolean(bool b) { return Value::boolean(b); }
  V none() { return Value(); }
  V list(std::vector<V> xs) { return makeList(std::move(xs)); }
  V tuple(std::vector<V> xs) { return makeTuple(std::move(xs)); }
  V im2col(const V& x, const rt::Window2d& w, double pad) { return ad::im2col(x, w, pad); }
  V scan(const V& x, int64_t axis, bool prod) { return ad::scan(strong(x), axis, prod); }
  V argsort(const V& x, int64_t axis, bool desc) { return fromTensor(rt::argsort(toTensor(strong(x)), axis, desc)); }
  V col2im(const V& c, int64_t h, int64_t wd, const rt::Window2d& w) { return ad::col2im(c, h, wd, w); }
  std::optional<std::string> strArg(size_t i) const {
    if (a.has(i) && a[i].isStr()) return a[i].as<StrObj>()->s;
    return std::nullopt;
  }
  V slice(const V& x, int64_t axis, int64_t start, int64_t stop, int64_t step = 1) {
    rt::IndexSpec spec(static_cast<size_t>(axis), rt::IndexItem::all());
    spec.push_back(rt::IndexItem::slice(start, stop, step));
    return ad::getIndex(x, spec);
  }
  V sliceTo(const V& x, int64_t axis, const V& stop) { return slice(x, axis, 0, stop.asInt()); }
  std::optional<int64_t> knownInt(const V& v) const { return v.asInt(); }
  // Eagerly every value is known: the check runs now, its message filled as a graph fn's
  // run-time assert fills it (rt::fill_format).
  void require(const V& cond, const std::string& format, const std::vector<V>& vals) const {
    if (cond.isScalar() && cond.asInt() != 0) return;
    std::vector<rt::Tensor> in;
    for (const V& v : vals) in.push_back(toTensor(v));
    fail(rt::fill_format(format, in));
  }
};

#define TDL_COMPOSITE(n, f, req, ...)                        \
  Value composite_##n(Interpreter& vm, CallArgs& call) {     \
    Args a(#n, call, {__VA_ARGS__}, req);                    \
    Eager e{vm, a};                                          \
    return composite::f(e);                                  \
  }
#include "vm/composites.def"

// einsum(subscripts, xs...): variadic, bound here (the one binder takes fixed lists).
Value einsum(Interpreter& vm, CallArgs& call) {
  if (call.numKw()) throw rt::Error("einsum() takes no keyword arguments");
  CallArgs first{call.args, std::min(call.n, 1), nullptr};
  Args a("einsum", first, {"subscripts"}, 1);
  if (!a[0].isStr()) a.fail(0, "a string of subscripts such as \"ij,jk->ik\"");
  Eager e{vm, a};
  std::vector<Value> xs(call.args + 1, call.args + call.n);
  return composite::einsum_(e, a[0].as<StrObj>()->s, std::move(xs));
}

}  // namespace

void registerCompositeBuiltins(BuiltinTable& t) {
#define TDL_COMPOSITE(n, f, req, ...) t.add(#n, composite_##n);
#include "vm/composites.def"
  t.add("einsum", einsum);
}

}  // namespace tdl::vm
