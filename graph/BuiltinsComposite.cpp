// vm/Composite.h's builtins traced into IR, and einsum. (graph/Tracer.h)
#include "graph/Tracer.h"
#include "runtime/Print.h"
#include "vm/Composite.h"

namespace tdl::vm::trace {

// vm/Composite.h's engine in a graph fn: each step is traced (or, on values known at trace
// time, run then), its errors at the builtin's call.
struct CompositeTrace {
  using V = TV;
  Tracer& t;
  Tracer::BuiltinCall& bc;
  const BuiltinParams& ps;

  const char* param(size_t i) const { return ps.params.at(i); }
  TV* argp(size_t i) { return i < ps.params.size() ? bc.arg(i, param(i)) : nullptr; }
  bool has(size_t i) { return argp(i) != nullptr; }
  V arg(size_t i) {
    TV* p = argp(i);
    return p ? *p : TV::of(Value());
  }
  bool isNone(size_t i) {
    TV* p = argp(i);
    return !p || (p->isStatic() && p->sv.isNone());
  }
  // A value known at trace time, converted by eager's Args (its words).
  template <class F>
  auto known(size_t i, F&& f) {
    TV* p = argp(i);
    if (!p) fail(fmt::format("missing argument '{}'", param(i)));
    bc.requireStatic(*p, param(i));
    CallArgs call{&p->sv, 1, nullptr};
    return t.guarded(bc.loc, [&] { return f(Args(bc.nm.c_str(), call, {param(i)}, 1)); });
  }
  int64_t intArg(size_t i, int64_t d) { return isNone(i) ? d : known(i, [](const Args& a) { return a.integer(0); }); }
  V intValueArg(size_t i, int64_t d) {
    TV* p = argp(i);
    if (isNone(i)) return TV::of(Value::i64(d, true));
    if (p->isStatic()) return TV::of(Value::i64(intArg(i, d), true));
    if (!t.isNumeric(*p)) return TV::of(Value::i64(intArg(i, d), true));  // eager's error for the value's kind
    TensorType ty = t.typeOf(*p);
    if (ty.rank() != 0 || rt::is_float(ty.dtype) || ty.dtype == DType::Bool)
      fail(fmt::format("'{}' must be an integer, got {}", param(i), t.describe(*p)));
    return *p;
  }
  double numArg(size_t i, double d) { return isNone(i) ? d : known(i, [](const Args& a) { return a.number(0); }); }
  bool boolArg(size_t i, bool d) { return isNone(i) ? d : known(i, [](const Args& a) { return a.boolean(0); }); }
  bool isScalarArg(size_t i) { return known(i, [](const Args& a) { return a[0].isScalar(); }); }
  std::vector<int64_t> sizesArg(size_t i) {
    return known(i, [](const Args& a) { return a[0].isScalar() ? std::vector<int64_t>{a.integer(0)} : a.ints(0); });
  }
  [[noreturn]] void fail(const std::string& m) { t.failEager(bc.loc, fmt::format("{}(): {}", bc.nm, m)); }
  [[noreturn]] void failLimit(const std::string& m) { t.fail(bc.loc, fmt::format("{}(): {}", bc.nm, m)); }
  bool numeric(const V& v) { return t.isNumeric(v); }
  bool floating(const V& v) { return t.isNumeric(v) && rt::is_float(t.usedDtype(v)); }
  DType dtype(const V& v) { return t.usedDtype(v); }
  std::string describe(const V& v) { return t.describe(v); }
  int64_t rank(const V& v) { return t.typeOf(v).rank(); }
  std::optional<int64_t> knownDim(const V& v, int64_t axis) {
    TensorType ty = t.typeOf(v);
    const ir::Dim& d = ty.dims.at(static_cast<size_t>(rt::normalize_axis(axis, ty.rank())));
    return d.is_known() ? std::optional<int64_t>(d.size) : std::nullopt;
  }
  V dim(const V& v, int64_t axis) { return t.dimTV(v, axis, bc.loc); }
  bool sameDim(const V& x, int64_t a, const V& y, int64_t b) {
    TensorType tx = t.typeOf(x), ty = t.typeOf(y);
    return tx.dims.at(static_cast<size_t>(rt::normalize_axis(a, tx.rank()))) ==
           ty.dims.at(static_cast<size_t>(rt::normalize_axis(b, ty.rank())));
  }
  V call(const char* nm, std::vector<V> args, std::vector<std::pair<const char*, V>> kw) {
    std::vector<std::string> names;
    for (auto& [k, v] : kw) args.push_back(v), names.push_back(k);
    try {
      return t.builtin(builtinId(nm), args, names, bc.loc);
    } catch (TraceError& err) {
      // A limit of graph fns met by a step (std's mean, conv1d's conv2d) names the builtin
      // the user called: "mean: 'axis' must be known..." -> "std: ...".
      std::string m = err.what();
      for (const std::string& head : {std::string(nm) + ": ", std::string(nm) + "(): "})
        if (!err.deferrable && m.rfind(head, 0) == 0) {
          TraceError renamed(err.loc, bc.nm + head.substr(std::string(nm).size()) + m.substr(head.size()));
          renamed.deferrable = err.deferrable;
          renamed.chain = err.chain;
          renamed.trace = err.trace;
          throw renamed;
        }
      throw;
    }
  }
  V bin(rt::BinaryOp op, const V& x, const V& y) { return t.binop(op, x, y, bc.loc); }
  V un(rt::UnaryOp op, const V& x) { return t.unop(op, x, bc.loc); }
  V num(double d) { return TV::of(Value::weakFloat(d)); }
  V integer(int64_t i) { return TV::of(Value::i64(i, true)); }
  V boolean(bool b) { return TV::of(Value::boolean(b)); }
  V none() { return TV::of(Value()); }
  V list(std::vector<V> xs) { return t.makeSeq(Tag::List, std::move(xs)); }
  V tuple(std::vector<V> xs) { return t.makeSeq(Tag::Tuple, std::move(xs)); }
  static ir::IntList list(const rt::Window2d& w) {
    auto a = w.list();
    return ir::IntList(a.begin(), a.end());
  }
  V im2col(const V& x, const rt::Window2d& w, double pad) {
    return op(ir::OpKind::Im2col, x, {{"window", list(w)}, {"pad", pad}});
  }
  V col2im(const V& c, int64_t h, int64_t wd, const rt::Window2d& w) {
    return op(ir::OpKind::Col2im, c, {{"window", list(w)}, {"size", ir::IntList{h, wd}}});
  }
  V op(ir::OpKind kind, const V& x, ir::AttrMap attrs) {
    ir::Value* xv = t.materialize(x, bc.loc);
    t.setLoc(bc.loc);
    return TV::dyn(t.guarded(bc.loc, [&] { return t.b_.create_inferred(kind, {xv}, attrs).result(); }));
  }
  V scan(const V& x, int64_t axis, bool prod) {
    return op(ir::OpKind::Scan, x, {{"axis", axis}, {"kind", std::string(prod ? "prod" : "sum")}, {"reverse", false}});
  }
  V argsort(const V& x, int64_t axis, bool desc) {
    return op(ir::OpKind::Argsort, x, {{"axis", axis}, {"descending", desc}});
  }
  std::optional<std::string> strArg(size_t i) {
    TV* p = argp(i);
    if (p && p->isStatic() && p->sv.isStr()) return p->sv.as<StrObj>()->s;
    return std::nullopt;
  }
  std::optional<int64_t> knownInt(const V& v) {
    if (v.isStatic() && v.sv.isScalar()) return v.sv.asInt();
    return std::nullopt;
  }
  // A check the trace decides now, or an assert the run makes; its message filled as the
  // run-time assert fills it (rt::fill_format).
  void require(const V& cond, const std::string& format, const std::vector<V>& vals) {
    if (cond.isStatic() && cond.sv.isScalar() && cond.sv.asInt() != 0) return;
    if (cond.isStatic() && std::all_of(vals.begin(), vals.end(), [](const V& v) { return v.isStatic(); })) {
      std::vector<rt::Tensor> in;
      for (const V& v : vals) in.push_back(toTensor(v.sv));
      fail(rt::fill_format(format, in));
    }
    std::vector<ir::Value*> holes;
    for (const V& v : vals) holes.push_back(t.materialize(v, bc.loc));
    ir::Value* c = t.materialize(cond, bc.loc, DType::Bool);
    t.setLoc(bc.loc);
    t.b_.assert_true(c, fmt::format("{}(): ", bc.nm) + format, holes);
  }
  // x[..., :stop] along axis: a dyn_slice (its size symbolic) when stop is known only at run time.
  V sliceTo(const V& x, int64_t axis, const V& stop) {
    if (auto k = knownInt(stop)) return slice(x, axis, 0, *k);
    ir::Value* xv = t.materialize(x, bc.loc);
    ir::IntList st, sp, stp, dyn;
    for (int64_t a = 0; a < xv->type.rank(); ++a) {
      st.push_back(0);
      sp.push_back(ir::kSliceEnd);
      stp.push_back(1);
      dyn.push_back(a == axis);
    }
    ir::Value* hi = t.integerIndex(stop, bc.loc);
    t.setLoc(bc.loc);
    ir::Value* lo = t.b_.constant(rt::Tensor::scalar(int64_t{0}));
    return TV::dyn(t.guarded(bc.loc, [&] {
      return t.b_.create_inferred(ir::OpKind::DynSlice, {xv, lo, hi}, {{"start", st}, {"stop", sp}, {"step", stp}, {"dynamic", dyn}})
          .result();
    }));
  }
  V slice(const V& x, int64_t axis, int64_t start, int64_t stop, int64_t step = 1) {
    ir::Value* xv = t.materialize(x, bc.loc);
    ir::IntList st, sp, stp;
    for (int64_t a = 0; a < xv->type.rank(); ++a) {
      st.push_back(a == axis ? start : 0);
      sp.push_back(a == axis ? stop : ir::kSliceEnd);
      stp.push_back(a == axis ? step : 1);
    }
    t.setLoc(bc.loc);
    return TV::dyn(t.guarded(bc.loc, [&] { return t.b_.slice(xv, st, sp, stp); }));
  }
};

auto Tracer::bi_composite(BuiltinCall& bc) -> TV {
  const BuiltinParams* ps = builtinParams(vm_, builtinId(bc.nm));
  if (!ps) fail(bc.loc, fmt::format("'{}' has no parameter list", bc.nm));
  CompositeTrace e{*this, bc, *ps};
#define TDL_COMPOSITE(n, f, ...) \
  if (bc.nm == #n) return composite::f(e);
#include "vm/composites.def"
  fail(bc.loc, fmt::format("'{}' is not a composite builtin", bc.nm));
}

auto Tracer::bi_einsum(BuiltinCall& bc) -> TV {
  if (!bc.kw.empty()) failEager(bc.loc, "einsum() takes no keyword arguments");
  if (bc.a.pos.empty()) failEager(bc.loc, "einsum() is missing its argument 'subscripts'");
  TV& s = bc.a.pos[0];
  if (!s.isStatic() || !s.sv.isStr())
    fail(bc.loc, fmt::format("einsum(): 'subscripts' must be a string of subscripts such as \"ij,jk->ik\" known at trace "
                             "time, got {}", describe(s)));
  static const BuiltinParams ps{"einsum", {"subscripts"}, 1};
  CompositeTrace e{*this, bc, ps};
  std::vector<TV> xs(bc.a.pos.begin() + 1, bc.a.pos.end());
  return composite::einsum_(e, s.sv.as<StrObj>()->s, std::move(xs));
}

}  // namespace tdl::vm::trace
