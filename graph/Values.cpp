// Conversions, arithmetic and conditions of trace values. (graph/Tracer.h)
#include "graph/Tracer.h"

namespace tdl::vm::trace {

auto Tracer::typeOf(const TV& t) -> TensorType {
  if (t.isDyn()) return t.dv->type;
  if (t.sv.isScalar()) return TensorType::scalar(t.sv.dtype());
  const rt::Tensor& x = t.sv.as<TensorObj>()->t;
  return TensorType::of(x.dtype(), x.shape());
}

auto Tracer::materialize(const TV& t, const Loc& loc, std::optional<DType> dt) -> ir::Value* {
  if (!dt && weakWide(t)) dt = DType::F32;  // used as a tensor: its default dtype, as eagerly
  if (t.isDyn()) {
    if (dt && *dt != t.dv->type.dtype) {
      setLoc(loc);
      return b_.cast(t.dv, *dt);
    }
    return t.dv;
  }
  if (!t.isStatic() || !t.sv.isNumeric()) failEager(loc, fmt::format("expected a tensor here, got {}", describe(t)));
  setLoc(loc);
  if (t.sv.isScalar()) {
    DType d = dt ? *dt : t.sv.dtype();
    return b_.constant(scalarTensor(t.sv, d));
  }
  rt::Tensor x = t.sv.as<TensorObj>()->t;
  if (dt && *dt != x.dtype()) return b_.constant(rt::cast(x, *dt));
  return tensorConstant(t.sv);
}

auto Tracer::tensorConstant(const Value& v) -> ir::Value* {
  const Obj* key = v.as<TensorObj>();
  if (auto it = constants_.find(key); it != constants_.end()) return it->second.second;
  ir::Block& entry = f_.entry();
  ir::Block& cur = b_.block();
  size_t pos = b_.pos();
  size_t at = hoistedConstants_++;
  b_.set_insertion(entry, at);
  ir::Value* c = b_.constant(v.as<TensorObj>()->t);
  b_.set_insertion(cur, &cur == &entry && pos >= at ? pos + 1 : pos);
  constants_.emplace(key, std::make_pair(v, c));
  return c;
}

auto Tracer::scalarConstant(const Value& v) -> TV {
  rt::Tensor t = scalarTensor(v, v.weak() && v.isFloatScalar() ? DType::F64 : v.dtype());
  return TV::dyn(tensorConstant(Value::object(Tag::Tensor, new TensorObj(std::move(t)))), v.weak());
}

auto Tracer::positionAfter(ir::Block& block, ir::Op* anchor) -> size_t {
  if (anchor) return block.index_of(anchor) + 1;
  return &block == &f_.entry() ? hoistedConstants_ : 0;
}

auto Tracer::integerArg(const TV& t, const char* builtin, const char* param, const Loc& loc) -> ir::Value* {
  if (isNumeric(t)) {
    TensorType ty = typeOf(t);
    bool one = true;
    for (const ir::Dim& d : ty.dims) one = one && d.is_known() && d.size == 1;
    if (one && !rt::is_float(ty.dtype) && ty.dtype != DType::Bool) {
      ir::Value* v = materialize(t, loc, DType::I64);
      setLoc(loc);
      return ty.rank() == 0 ? v : b_.reshape(v, {});
    }
    if (one && ty.dtype == DType::Bool && t.isStatic() && t.sv.isScalar()) return materialize(t, loc, DType::I64);
  }
  failEager(loc, fmt::format("{}(): '{}' must be an integer, got {}", builtin, param, describe(t)));
}

static bool isListTV(const TV& t) {
  return (t.k == TV::Seq && t.seqTag == Tag::List) || (t.isStatic() && t.sv.tag() == Tag::List);
}

auto Tracer::operandTypesError(std::string_view op, const TV& a, const TV& b, bool add) -> std::string {
  // Eager mode's words (vm/ValueOps.cpp binaryOperator): a string of run-time values is a
  // string there.
  auto kind = [&](const TV& t) { return t.k == TV::Fmt ? std::string("string") : describe(t); };
  return fmt::format("unsupported operand types for {}: {} and {}{}", op, kind(a), kind(b),
                     listTensorHint(add, isListTV(a), isListTV(b), isNumeric(a), isNumeric(b)));
}

auto Tracer::describe(const TV& t) -> std::string {
  switch (t.k) {
    case TV::Static: return typeText(t.sv);
    case TV::Dyn:
      // A weak float scalar (carried as f64, graph/Signatures.cpp) reads as eager's f32[].
      if (t.weak && t.dv->type.rank() == 0 && rt::is_float(t.dv->type.dtype)) return "f32[]";
      return t.dv->type.str();
    case TV::Seq: return t.seqTag == Tag::List ? "list" : "tuple";
    case TV::Rec: return t.seqTag == Tag::Dict ? "dict" : "record";
    case TV::Fn: return "function";
    case TV::Range: return "range";
    case TV::Tape: return "tape";
    case TV::GradFn: return t.withValue ? "value_and_grad function" : "grad function";
    case TV::Fmt: return "string of run-time values (from an f-string, str or format: a graph fn can only print it or add strings to it)";
    default: return "undefined";
  }
}

auto Tracer::tapedStatic(const TV& t) const -> bool {
  return !recording_.empty() && t.isStatic() && t.sv.isTensor() && rt::is_float(t.sv.as<TensorObj>()->t.dtype());
}

auto Tracer::binop(rt::BinaryOp op, const TV& a, const TV& b, const Loc& loc, std::optional<Op> vop) -> TV {
  if (a.isStatic() && b.isStatic() && !tapedStatic(a) && !tapedStatic(b)) {
    try {
      return TV::of(vop ? binaryOperator(*vop, a.sv, b.sv) : binaryValues(op, a.sv, b.sv));
    } catch (const rt::Error& e) {
      failEager(loc, e.what());
    }
  }
  if (!isNumeric(a) || !isNumeric(b)) {
    const bool compare = vop && (*vop == Op::Eq || *vop == Op::Ne || *vop == Op::Lt || *vop == Op::Le ||
                                 *vop == Op::Gt || *vop == Op::Ge);
    if (compare && (a.k == TV::Fmt || b.k == TV::Fmt))  // its text is made only when it runs
      fail(loc, fmt::format("'{}' on a {}", opText(*vop), describe(a.k == TV::Fmt ? a : b)));
    if (vop && (*vop == Op::Eq || *vop == Op::Ne) && ((isListTV(a) && isNumeric(b)) || (isNumeric(a) && isListTV(b))))
      failEager(loc, listTensorCompare(opText(*vop)));
    if (vop && (*vop == Op::Eq || *vop == Op::Ne)) {  // eager's valuesEqual: a bool, whatever the kinds
      TV r = equalTV(a, b, loc);
      if (*vop == Op::Eq) return r;
      return r.isStatic() ? TV::of(Value::boolean(!r.sv.asBool())) : unop(rt::UnaryOp::LogicalNot, r, loc);
    }
    if (vop && *vop == Op::Add && (a.k == TV::Fmt || b.k == TV::Fmt)) {  // strings of run-time values
      std::string f;
      std::vector<TV> holes;
      auto part = [&](const TV& t) {
        if (t.k == TV::Fmt) {
          f += t.sv.as<StrObj>()->s;
          holes.insert(holes.end(), t.items.begin(), t.items.end());
          return true;
        }
        if (!t.isStatic() || t.sv.tag() != Tag::Str) return false;
        f += escapeBraces(t.sv.as<StrObj>()->s);
        return true;
      };
      if (part(a) && part(b)) return TV::fmtOf(makeStr(f), std::move(holes));
    }
    if (vop && *vop == Op::Mul) {  // "-" * n (eager's repeatStr)
      auto isText = [](const TV& t) { return t.k == TV::Fmt || (t.isStatic() && t.sv.isStr()); };
      const TV& str = isText(a) ? a : b;
      const TV& n = isText(a) ? b : a;
      const bool text = isText(str);
      if (text && isNumeric(n) && !rt::is_float(typeOf(n).dtype) && typeOf(n).dtype != DType::Bool &&
          typeOf(n).rank() == 0) {
        if (!n.isStatic())
          fail(loc, "a string repeated a number of times known only at run time: in a graph fn the count must be "
                    "known at trace time");
        if (str.k == TV::Fmt) {  // its text and run-time values, n times
          if (n.sv.rawInt() > 0 && static_cast<uint64_t>(n.sv.rawInt()) * str.items.size() > kMaxFullUnroll)
            fail(loc, fmt::format("a string of run-time values repeated {} times: in a graph fn it holds at most {} "
                                  "values (each is formatted when it runs)",
                                  n.sv.rawInt(), kMaxFullUnroll));
          Value text;
          try {
            text = repeatStr(str.sv, n.sv.rawInt());
          } catch (const rt::Error& e) {
            failEager(loc, e.what());
          }
          std::vector<TV> holes;
          for (int64_t i = 0; i < n.sv.rawInt(); ++i) holes.insert(holes.end(), str.items.begin(), str.items.end());
          return TV::fmtOf(text, std::move(holes));
        }
      }
    }
    if (vop && *vop == Op::Mul && (a.k == TV::Seq || b.k == TV::Seq)) {  // [x] * 3 (eager's rule), at trace time
      const TV& s = a.k == TV::Seq ? a : b;
      const TV& n = a.k == TV::Seq ? b : a;
      if (n.isStatic() && n.sv.isScalar() && !n.sv.isFloatScalar() && n.sv.dtype() != DType::Bool) {
        int64_t k = n.sv.rawInt();
        if (k > 0 && static_cast<uint64_t>(k) * s.items.size() > kMaxFullUnroll)
          fail(loc, fmt::format("a {} of run-time values repeated {} times: in a graph fn it holds at most {} items",
                                tagName(s.seqTag), k, kMaxFullUnroll));
        TV r = s;
        r.items.clear();
        for (int64_t i = 0; i < k; ++i) r.items.insert(r.items.end(), s.items.begin(), s.items.end());
        return r;
      }
      if (isNumeric(n) && !n.isStatic())
        fail(loc, fmt::format("a {} repeated a number of times known only at run time: in a graph fn the count must be "
                              "known at trace time",
                              tagName(s.seqTag)));
    }
    if (vop && *vop == Op::Add && (a.k == TV::Seq || b.k == TV::Seq)) {
      TV x = expandStatic(a), y = expandStatic(b);
      if (x.k == TV::Seq && y.k == TV::Seq && x.seqTag == y.seqTag) {
        x.items.insert(x.items.end(), y.items.begin(), y.items.end());
        return x;
      }
    }
    failEager(loc, operandTypesError(vop ? opText(*vop) : rt::op_name(op), a, b, vop && *vop == Op::Add));
  }
  bool wa = weakOf(a), wb = weakOf(b);
  TensorType ta = typeOf(a), tb = typeOf(b);
  if (vop)
    if (std::string m = bitsOperandError(*vop, usedDtype(a), usedDtype(b), describe(a), describe(b)); !m.empty()) failEager(loc, m);
  ir::Value *x, *y;
  if (wa && !wb) {
    DType d = guarded(loc, [&] { return weakTarget(a.isStatic() ? a.sv : proxy(ta.dtype), tb.dtype); });
    x = weakOperand(a, d, loc);
    y = materialize(b, loc);
  } else if (wb && !wa) {
    DType d = guarded(loc, [&] { return weakTarget(b.isStatic() ? b.sv : proxy(tb.dtype), ta.dtype); });
    x = materialize(a, loc);
    y = weakOperand(b, d, loc);
  } else if (wa && wb && ta.rank() == 0 && tb.rank() == 0 &&
             (weakWide(a) || weakWide(b) || rt::is_float(ta.dtype) || rt::is_float(tb.dtype) ||
              (op == rt::BinaryOp::Div && (ta.dtype != DType::Bool || tb.dtype != DType::Bool)))) {
    // Weak numbers whose result is a float (a float operand; an integer's true division):
    // computed exactly in f64 as eagerly (a weak int argument b: b / 7 + 3, 0.1 * (b - 0.5)).
    x = materialize(a, loc, ta.dtype == DType::Bool ? DType::Bool : DType::F64);
    y = materialize(b, loc, tb.dtype == DType::Bool ? DType::Bool : DType::F64);
  } else {
    x = materialize(a, loc);
    y = materialize(b, loc);
  }
  setLoc(loc);
  ir::Value* r = guarded(loc, [&] { return b_.binary(op, x, y); });
  return TV::dyn(r, wa && wb);
}

// a == b where they are not both numbers (vm/ValueOps.cpp's valuesEqual, one bool): values of
// different kinds are unequal; containers of the same structure compare item by item; a
// number with a number as eagerly (scalars by value; tensors of one dtype and shape, all
// elements equal).
auto Tracer::equalTV(const TV& a0, const TV& b0, const Loc& loc) -> TV {
  if (a0.isStatic() && b0.isStatic()) return staticCall(loc, [&] { return Value::boolean(valuesEqual(a0.sv, b0.sv)); });
  const TV a = expandStatic(a0), b = expandStatic(b0);
  if (a.k == TV::Fmt || b.k == TV::Fmt)  // its text is made only when it runs
    fail(loc, fmt::format("comparing a {}", describe(a.k == TV::Fmt ? a : b)));
  const TV no = TV::of(Value::boolean(false));
  if (isNumeric(a) && isNumeric(b)) {
    TensorType ta = typeOf(a), tb = typeOf(b);
    if (ta.rank() == 0 && tb.rank() == 0) return binop(rt::BinaryOp::Eq, a, b, loc);
    if (ta.rank() == 0 || tb.rank() == 0 || ta.dtype != tb.dtype || ta.rank() != tb.rank()) return no;
    for (size_t i = 0; i < ta.dims.size(); ++i) {
      if (ta.dims[i] == tb.dims[i]) continue;
      if (ta.dims[i].is_known() && tb.dims[i].is_known()) return no;
      fail(loc, "comparing tensors whose shapes are known only at run time with == is not supported in graph fns: "
                "compare their shapes first, or use all(a == b)");
    }
    std::vector<TV> args{binop(rt::BinaryOp::Eq, a, b, loc)};
    return builtin(builtinId("all"), args, {}, loc);
  }
  const bool ca = a.k == TV::Seq || a.k == TV::Rec, cb = b.k == TV::Seq || b.k == TV::Rec;
  if (!ca || !cb || a.k != b.k || a.seqTag != b.seqTag || a.items.size() != b.items.size()) return no;
  TV all = TV::of(Value::boolean(true));
  for (size_t i = 0; i < a.items.size(); ++i) {
    size_t j = i;
    if (a.k == TV::Rec) {  // fields (dict keys) matched by name, in any order
      auto it = std::find(b.names->begin(), b.names->end(), (*a.names)[i]);
      if (it == b.names->end()) return no;
      j = static_cast<size_t>(it - b.names->begin());
    }
    TV e = equalTV(a.items[i], b.items[j], loc);
    if (e.isStatic()) {
      if (!e.sv.asBool()) return no;
      continue;
    }
    all = all.isStatic() ? e : binop(rt::BinaryOp::BitAnd, all, e, loc);
  }
  return all;
}

// The common dtype of several operands as eager's builtins take them (vm/NumericOps.cpp): the
// strong dtypes promoted, each weak one taking that (two bools stay bool, unlike x + y's).
auto Tracer::commonDtype(const std::vector<TV>& xs, const Loc& loc) -> DType {
  std::optional<DType> strong;
  for (const TV& x : xs)
    if (!weakOf(x)) strong = strong ? rt::promote(*strong, typeOf(x).dtype) : typeOf(x).dtype;
  DType common = strong ? *strong : usedDtype(xs.at(0));
  for (const TV& x : xs) {
    DType d = usedDtype(x);
    if (strong && weakOf(x)) d = guarded(loc, [&] { return weakTarget(x.isStatic() ? x.sv : proxy(d), *strong); });
    common = rt::promote(common, d);
  }
  return common;
}

auto Tracer::proxy(DType d) -> Value {
  if (d == DType::Bool) return Value::boolean(false, true);
  if (rt::is_float(d)) return Value::weakFloat(0);
  return Value::i64(0, true);
}

auto Tracer::unop(rt::UnaryOp op, const TV& x, const Loc& loc, bool keepWeak) -> TV {
  if (x.isStatic() && !tapedStatic(x)) {
    try {
      return TV::of(unaryValues(op, x.sv));
    } catch (const rt::Error& e) {
      failEager(loc, e.what());
    }
  }
  const bool weak = keepWeak && x.isDyn() && x.weak;
  ir::Value* v = weak ? x.dv : materialize(x, loc);
  setLoc(loc);
  return TV::dyn(guarded(loc, [&] { return b_.unary(op, v); }), weak);
}

// A weak operand as dtype d (weakTarget's): a weak integer known only at run time that d
// cannot hold (an i32 tensor + 3000000000) fails there with eager's words, not wraps.
auto Tracer::weakOperand(const TV& t, DType d, const Loc& loc) -> ir::Value* {
  ir::Value* v = materialize(t, loc, d);
  int64_t lo = 0, hi = 0;
  if (!t.isDyn() || !t.weak || !narrowIntBounds(d, lo, hi)) return v;
  DType from = t.dv->type.dtype;
  if (from == DType::Bool || rt::is_float(from) || (from == DType::I32 && d == DType::I32)) return v;
  setLoc(loc);
  ir::Value* w = from == DType::I64 ? t.dv : b_.cast(t.dv, DType::I64);
  ir::Value* ok = b_.binary(rt::BinaryOp::BitAnd,
                            b_.binary(rt::BinaryOp::Ge, w, b_.constant(rt::Tensor::scalar_of_int(DType::I64, lo))),
                            b_.binary(rt::BinaryOp::Le, w, b_.constant(rt::Tensor::scalar_of_int(DType::I64, hi))));
  b_.assert_true(ok, weakIntRangeError("{}", d), {w});
  return v;
}

auto Tracer::castTV(const TV& x, DType d, const Loc& loc) -> TV {
  if (x.isStatic()) {
    try {
      return TV::of(castValue(x.sv, d));
    } catch (const rt::Error& e) {
      failEager(loc, e.what());
    }
  }
  return TV::dyn(materialize(x, loc, d));
}

auto Tracer::condition(const TV& c, const Loc& loc, const std::string& subject) -> TV {
  if (c.isStatic()) {
    if (!(c.sv.isScalar() && c.sv.dtype() == DType::Bool))
      failEager(loc, fmt::format("{} must be a bool scalar, got {}", subject, typeText(c.sv)));
    return c;
  }
  if (!c.isDyn() || c.dv->type.dtype != DType::Bool || !c.dv->type.is_scalar())
    failEager(loc, fmt::format("{} must be a bool scalar, got {}", subject, describe(c)));
  return c;
}

auto Tracer::orTV(const TV& a, const TV& b, const Loc& loc) -> TV {
  if (isStaticFalse(a)) return b;
  if (isStaticFalse(b)) return a;
  if (isStaticTrue(a) || isStaticTrue(b)) return staticBool(true);
  return binop(rt::BinaryOp::LogicalOr, a, b, loc);
}

}  // namespace tdl::vm::trace
