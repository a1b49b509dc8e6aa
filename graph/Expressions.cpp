// Expressions. (graph/Tracer.h)
#include "graph/Tracer.h"

#include "runtime/Create.h"
#include "runtime/Print.h"

namespace tdl::vm::trace {

auto Tracer::eval(const Expr& e) -> TV {
  if (subMemo_) [[unlikely]] {
    auto it = subMemo_->find(&e);
    if (it != subMemo_->end()) {
      if (!it->second) {
        auto* memo = std::exchange(subMemo_, nullptr);
        struct Restore {
          Tracer& t;
          std::map<const Expr*, std::optional<TV>>* m;
          ~Restore() { t.subMemo_ = m; }
        } restore{*this, memo};
        it->second = eval(e);
      }
      return *it->second;
    }
  }
  switch (e.kind) {
    case ExprKind::Int: return TV::of(Value::i64(e.ival, true));
    case ExprKind::Float: return TV::of(Value::weakFloat(e.fval));
    case ExprKind::Bool: return TV::of(Value::boolean(e.bval, true));
    case ExprKind::Str: return TV::of(makeStr(e.str));
    case ExprKind::None: return TV::of(Value());
    case ExprKind::FStr: {
      // Static parts are formatted now; run-time values become holes of a print format
      // (`{}`, or `{:spec}` formatted at run time by rt::format_with_spec), so an f-string
      // of run-time values is a Fmt value that print() takes apart.
      std::string s, format;
      std::vector<TV> holes;
      bool dynamic = false;
      for (auto& p : e.parts) {
        s += p.literal;
        format += escapeBraces(p.literal);
        if (!p.expr) continue;
        TV v = eval(*p.expr);
        if (v.isStatic()) {
          try {
            std::string text = p.spec.empty() ? str(v.sv) : formatWithSpec(v.sv, p.spec);
            s += text;
            format += escapeBraces(text);
          } catch (const rt::Error& err) {
            failEager(p.expr->loc, err.what());
          }
          continue;
        }
        dynamic = true;
        if (v.isDyn()) {
          if (p.spec.find_first_of("{}") != std::string::npos) failEager(p.expr->loc, "a format spec cannot contain braces");
          // A bad spec is eager's error at the field's expression, now (tried on a scalar of
          // its dtype), not where the string is printed.
          if (!p.spec.empty())
            guarded(p.expr->loc, [&] { return rt::format_with_spec(rt::zeros({}, v.dv->type.dtype), p.spec); });
          holes.push_back(TV::dyn(materialize(v, p.expr->loc)));  // a weak float prints as f32
          format += p.spec.empty() ? std::string("{}") : fmt::format("{{:{}}}", p.spec);
          continue;
        }
        if (!p.spec.empty()) failEager(p.expr->loc, fmt::format("a format spec needs a number, got a {}", describe(v)));
        std::vector<ir::Value*> hs;
        format += formatOf(v, hs, p.expr->loc, true);
        for (ir::Value* h : hs) holes.push_back(TV::dyn(h));
      }
      if (!dynamic) return TV::of(makeStr(s));
      TV t;
      t.k = TV::Fmt;
      t.sv = makeStr(format);
      t.items = std::move(holes);
      return t;
    }
    case ExprKind::Name: return name(e);
    case ExprKind::Tuple:
    case ExprKind::List: {
      if (e.kind == ExprKind::List && e.isTensorLit) return TV::of(tensorLiteral(e));
      std::vector<TV> items;
      for (auto& k : e.kids) items.push_back(eval(*k));
      return makeSeq(e.kind == ExprKind::List ? Tag::List : Tag::Tuple, std::move(items));
    }
    case ExprKind::Record:
    case ExprKind::Dict: {
      std::vector<TV> items;
      for (auto& k : e.kids) items.push_back(eval(*k));
      TV r; r.k = TV::Rec;
      if (e.kind == ExprKind::Dict) r.seqTag = Tag::Dict;
      r.names = std::make_shared<const std::vector<std::string>>(e.names);
      r.items = std::move(items);
      return normalize(r);
    }
    case ExprKind::Lambda: {
      TV f; f.k = TV::Fn; f.fn = e.fn.get();
      for (const Ref& r : e.fn->captures) {
        switch (r.kind) {
          case RefKind::Local: f.items.push_back(fr().st.slots.at(static_cast<size_t>(r.index))); break;
          case RefKind::Capture: f.items.push_back(fr().captures.at(static_cast<size_t>(r.index))); break;
          default: fail(e.loc, "this lambda cannot be traced in a graph fn");
        }
      }
      for (auto& p : e.fn->params) f.traceDefaults.push_back(p.deflt ? eval(*p.deflt) : TV());
      return f;
    }
    case ExprKind::Unary: {
      TV x = eval(*e.kids[0]);
      if (e.unop == UnOp::Not) return notTV(condition(x, e.loc, "operand of 'not'"), e.loc);
      return unop(e.unop == UnOp::Neg ? rt::UnaryOp::Neg : rt::UnaryOp::BitNot, x, e.loc, true);
    }
    case ExprKind::Binary: return binary(e);
    case ExprKind::Call: return call(e);
    case ExprKind::Index: return indexTV(eval(*e.kids[0]), e, e.loc);
    case ExprKind::Field: return field(e);
  }
  fail(e.loc, "unsupported expression in a graph fn");
}

auto Tracer::makeSeq(Tag tag, std::vector<TV> items) -> TV {
  TV r; r.k = TV::Seq; r.seqTag = tag; r.items = std::move(items);
  return normalize(r);
}

auto Tracer::normalize(TV r) -> TV {
  for (auto& i : r.items)
    if (!i.isStatic()) return r;
  std::vector<Value> vals;
  for (auto& i : r.items) vals.push_back(i.sv);
  if (r.k == TV::Rec && r.seqTag == Tag::Dict) return TV::of(makeDict(*r.names, std::move(vals)));
  if (r.k == TV::Rec) return TV::of(makeRecord(r.names, std::move(vals)));
  return TV::of(r.seqTag == Tag::List ? makeList(std::move(vals)) : makeTuple(std::move(vals)));
}

auto Tracer::knownTV(const TV& t) -> TV {
  if (t.k != TV::Seq && t.k != TV::Rec) return t;
  TV r = t;
  for (auto& i : r.items) {
    i = knownTV(i);
    if (!i.isStatic()) return t;
  }
  return normalize(r);
}

auto Tracer::globalValue(int module, int slot, const std::string& nm, const Loc& loc) -> TV {
  const Value& g = vm_.globalValue(module, slot);
  bool seen = false;
  for (auto& [m, s, v] : out_.globals) seen = seen || (m == module && s == slot);
  if (!seen) out_.globals.emplace_back(module, slot, g);  // (undefined too: a call after its `let` traces again)
  if (g.isUndef()) failEager(loc, fmt::format("'{}' is used before its definition", nm));
  if (g.isScalar() && g.isFloatScalar() && (!recording_.empty() || tapedScalars_.count({module, slot}))) {
    // a tape may ask for its gradient (t.gradient(y, g), after the tape, reads the same value)
    auto [it, fresh] = tapedScalars_.try_emplace({module, slot});
    if (fresh) it->second = scalarConstant(g);
    return it->second;
  }
  return TV::of(g);
}

auto Tracer::name(const Expr& e) -> TV {
  switch (e.ref.kind) {
    case RefKind::Local: {
      const TV& v = fr().st.slots.at(static_cast<size_t>(e.ref.index));
      if (!v.defined()) fail(e.loc, fmt::format("'{}' is used before its definition", e.str));
      return v;
    }
    case RefKind::Capture: return fr().captures.at(static_cast<size_t>(e.ref.index));
    case RefKind::Global: return globalValue(e.ref.module, e.ref.index, e.str, e.loc);
    case RefKind::Builtin: {
      int id = builtinId(e.str);
      DType dt;
      if (id >= 0 && builtinIsDType(id, dt)) return TV::of(Value::dtype(dt));
      if (id < 0) fail(e.loc, fmt::format("undefined name '{}'", e.str));
      return TV::of(Value::builtin(id));
    }
    case RefKind::Self: fail(e.loc, fmt::format("recursion is not supported in graph fn '{}'", e.str));
    default: fail(e.loc, fmt::format("'{}' cannot be used here in a graph fn", e.str));
  }
}

auto Tracer::moduleMember(int module, const std::string& member, const Loc& loc) -> TV {
  auto& mods = vm_.modules();
  if (module < 0 || static_cast<size_t>(module) >= mods.size()) fail(loc, "unknown module");
  const Module& m = *mods[static_cast<size_t>(module)];
  for (size_t i = m.globalNames.size(); i-- > 0;)
    if (m.globalNames[i] == member) return globalValue(module, static_cast<int>(i), member, loc);
  fail(loc, fmt::format("module '{}' has no member '{}'", m.name, member));
}

auto Tracer::binary(const Expr& e) -> TV {
  if (e.binop == BinOp::And || e.binop == BinOp::Or) {
    const std::string subject = boolOperandSubject(e);
    TV a = condition(eval(*e.kids[0]), e.kids[0]->loc, subject);
    bool isAnd = e.binop == BinOp::And;
    if (a.isStatic()) {
      if (a.sv.asBool() != isAnd) return a;
      return condition(eval(*e.kids[1]), e.kids[1]->loc, subject);
    }
    auto rhs = [&] { return condition(eval(*e.kids[1]), e.kids[1]->loc, subject); };
    auto lhs = [&] { return a; };
    return isAnd ? condValue(a, rhs, lhs, e.loc) : condValue(a, lhs, rhs, e.loc);
  }
  TV a = eval(*e.kids[0]);
  TV b = eval(*e.kids[1]);
  if (e.binop == BinOp::In || e.binop == BinOp::NotIn) {
    TV r = containsTV(b, a, e.loc);
    return e.binop == BinOp::NotIn ? notTV(r, e.loc) : r;
  }
  if (e.binop == BinOp::MatMul) {
    if (a.isStatic() && b.isStatic() && !tapedStatic(a) && !tapedStatic(b))
      return staticCall(e.loc, [&] { return matmulValues(a.sv, b.sv); });
    if (!isNumeric(a) || !isNumeric(b)) failEager(e.loc, operandTypesError("@", a, b, false));
    ir::Value *x = dynStrong(a, e.loc), *y = dynStrong(b, e.loc);
    setLoc(e.loc);
    return TV::dyn(guarded(e.loc, [&] { return b_.matmul(x, y); }));
  }
  if ((e.binop == BinOp::Lt || e.binop == BinOp::Le || e.binop == BinOp::Gt || e.binop == BinOp::Ge) &&
      !(a.isStatic() && b.isStatic())) {
    TV sa = expandStatic(a), sb = expandStatic(b);
    if (sa.k == TV::Seq && sb.k == TV::Seq && sa.seqTag == sb.seqTag) return orderTV(rtBinary(e.binop), sa, sb, e.loc);
  }
  return binop(rtBinary(e.binop), a, b, e.loc, binOpcode(e.binop));
}

// Tuples (or lists) ordered as Python's (eager's orderValues): the first items that differ
// decide, else the lengths: (a0 < b0) or (a0 == b0 and (rest)), over items of run-time values.
auto Tracer::orderTV(rt::BinaryOp op, const TV& a, const TV& b, const Loc& loc) -> TV {
  size_t na = a.items.size(), nb = b.items.size();
  auto holds = [&](size_t x, size_t y) {
    return op == rt::BinaryOp::Lt ? x < y : op == rt::BinaryOp::Le ? x <= y : op == rt::BinaryOp::Gt ? x > y : x >= y;
  };
  rt::BinaryOp strict = op == rt::BinaryOp::Lt || op == rt::BinaryOp::Le ? rt::BinaryOp::Lt : rt::BinaryOp::Gt;
  TV acc = staticBool(holds(na, nb));
  for (size_t i = std::min(na, nb); i-- > 0;) {
    TV x = expandStatic(a.items[i]), y = expandStatic(b.items[i]);
    TV first;
    if (x.isStatic() && y.isStatic()) {  // strings, numbers, containers known now: eager's order
      int c = staticCall(loc, [&] { return Value::i64(orderValues(x.sv, y.sv)); }).sv.asInt();
      first = staticBool(strict == rt::BinaryOp::Lt ? c < 0 : c > 0);
    } else if (x.k == TV::Seq && y.k == TV::Seq && x.seqTag == y.seqTag) {
      first = orderTV(strict, x, y, loc);
    } else {
      first = binop(strict, a.items[i], b.items[i], loc);
    }
    TV same = equalTV(a.items[i], b.items[i], loc);
    TV rest = isStaticFalse(same) || isStaticFalse(acc) ? staticBool(false)
              : isStaticTrue(same)                      ? acc
              : isStaticTrue(acc)                       ? same
                                                        : binop(rt::BinaryOp::LogicalAnd, same, acc, loc);
    acc = orTV(first, rest, loc);
  }
  return acc;
}

// `v in xs` (eager's containsValue): at trace time when both are known; over a list or
// tuple, an `or` of the items' equalities (equalTV: eager's valuesEqual); in a tensor, any(xs == v).
auto Tracer::containsTV(const TV& xs, const TV& v, const Loc& loc) -> TV {
  if (xs.isStatic() && v.isStatic() && !tapedStatic(xs) && !tapedStatic(v))
    return staticCall(loc, [&] { return containsValue(xs.sv, v.sv); });
  TV s = expandStatic(xs);
  if (s.k == TV::Rec && s.seqTag == Tag::Dict) {  // a key: the keys are known at trace time
    if (!v.isStatic() || !v.sv.isStr()) failEager(loc, fmt::format("'in <dict>' needs a key (a string) on the left, got {}", describe(v)));
    return staticBool(std::find(s.names->begin(), s.names->end(), v.sv.as<StrObj>()->s) != s.names->end());
  }
  if (s.k == TV::Seq) {
    TV acc = staticBool(false);
    for (const TV& item : s.items) acc = orTV(acc, equalTV(item, v, loc), loc);  // valuesEqual's rule
    return acc;
  }
  if (isNumeric(s)) {
    if (!isNumeric(v) || typeOf(v).rank() != 0)
      failEager(loc, fmt::format("'in <tensor>' needs a number on the left, got {}", describe(v)));
    std::vector<TV> args{binop(rt::BinaryOp::Eq, s, v, loc)};
    return builtin(builtinId("any"), args, {}, loc);
  }
  // A range known only at run time (or a number known only then): start <= v < stop (for a
  // negative step stop < v <= start) and (v - start) % step == 0, as eager's containsValue.
  if (s.k == TV::Range || (s.isStatic() && s.sv.tag() == Tag::Range)) {
    TV a, b, st;
    if (s.k == TV::Range) a = s.items[0], b = s.items[1], st = s.items[2];
    else {
      const auto* r = s.sv.as<RangeObj>();
      a = TV::of(Value::i64(r->start, true)), b = TV::of(Value::i64(r->stop, true)), st = TV::of(Value::i64(r->step, true));
    }
    // (Only integers are items of a range, as eagerly: a float or a bool is not.)
    if (!isNumeric(v) || typeOf(v).rank() != 0 || !rt::is_integer(typeOf(v).dtype)) return staticBool(false);
    if (!st.isStatic()) fail(loc, "'in' a range whose step is known only at run time is not supported in graph fns");
    bool up = st.sv.asInt() > 0;
    TV lo = up ? binop(rt::BinaryOp::Le, a, v, loc) : binop(rt::BinaryOp::Lt, b, v, loc);
    TV hi = up ? binop(rt::BinaryOp::Lt, v, b, loc) : binop(rt::BinaryOp::Le, v, a, loc);
    TV on = binop(rt::BinaryOp::Eq, binop(rt::BinaryOp::Mod, binop(rt::BinaryOp::Sub, v, a, loc), st, loc),
                  TV::of(Value::i64(0, true)), loc);
    return binop(rt::BinaryOp::BitAnd, binop(rt::BinaryOp::BitAnd, lo, hi, loc), on, loc);
  }
  failEager(loc, fmt::format("'in' needs a list, tuple, string, record, dict, range or tensor on the right, got {}", describe(xs)));
}

auto Tracer::field(const Expr& e) -> TV {
  const Expr& base = *e.kids[0];
  if (base.kind == ExprKind::Name && base.ref.kind == RefKind::Module) return moduleMember(base.ref.index, e.str, e.loc);
  TV b = eval(base);
  return fieldOf(b, e.str, e.loc);
}

auto Tracer::fieldOf(const TV& b, const std::string& nm, const Loc& loc) -> TV {
  if (nm == "T" && isNumeric(b)) {  // x.T: transpose(x), traced (a tape may follow x)
    std::vector<TV> args{b};
    return builtin(builtinId("transpose"), args, {}, loc);
  }
  if (b.isStatic()) return staticCall(loc, [&] { return fieldValue(b.sv, nm); });
  if (b.k == TV::Rec && b.seqTag == Tag::Dict)
    failEager(loc, fmt::format("a dict has no field '{}' (its keys are read as d[\"key\"])", nm));
  if (b.k == TV::Rec) {
    for (size_t i = 0; i < b.names->size(); ++i)
      if ((*b.names)[i] == nm) return b.items[i];
    failEager(loc, fmt::format("record has no field '{}'{}", nm, didYouMean(nm, *b.names)));
  }
  if (b.isDyn()) {
    const TensorType& t = b.dv->type;
    if (nm == "rank" || nm == "ndim") return TV::of(Value::i64(t.rank()));
    if (nm == "dtype") return TV::of(Value::dtype(usedDtype(b)));
    if (nm == "shape") {
      if (auto s = t.static_shape()) return TV::of(fromTensor(rt::Tensor::from_vector(*s, {static_cast<int64_t>(s->size())})));
      std::vector<TV> dims;
      for (int64_t i = 0; i < t.rank(); ++i) dims.push_back(dimTV(b, i, loc));
      return stackScalars(dims, loc);
    }
    if (nm == "size") {
      TV n = TV::of(Value::i64(1));
      for (int64_t i = 0; i < t.rank(); ++i) n = binop(rt::BinaryOp::Mul, n, dimTV(b, i, loc), loc);
      return n;
    }
    failEager(loc, tensorNoField(nm));
  }
  failEager(loc, fmt::format("a {} has no field '{}'", describe(b), nm));
}

auto Tracer::dimOf(const TV& x, int64_t axis, const Loc& loc) -> ir::Value* {
  setLoc(loc);
  return b_.dim(materialize(x, loc), axis);
}

auto Tracer::dimTV(const TV& x, int64_t axis, const Loc& loc) -> TV {
  TensorType t = typeOf(x);
  axis = guarded(loc, [&] { return rt::normalize_axis(axis, t.rank()); });
  if (t.dims[static_cast<size_t>(axis)].is_known()) return TV::of(Value::i64(t.dims[static_cast<size_t>(axis)].size));
  return TV::dyn(dimOf(x, axis, loc));
}

auto Tracer::stackScalars(const std::vector<TV>& xs, const Loc& loc) -> TV {
  std::vector<ir::Value*> parts;
  for (auto& x : xs) {
    ir::Value* v = materialize(x, loc, DType::I64);
    setLoc(loc);
    parts.push_back(b_.reshape(v, {Dim::known(1)}));
  }
  setLoc(loc);
  return TV::dyn(guarded(loc, [&] { return b_.concat(parts, 0); }));
}

}  // namespace tdl::vm::trace
