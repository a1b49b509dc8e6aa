// Saving, restoring and merging the tracer state after branches. (graph/Tracer.h)
#include "graph/Tracer.h"

namespace tdl::vm::trace {

namespace {
// A value in a merge message: 'name', or what a conditional expression gives (its value is the
// hidden variable of frontend/AstBuilder.cpp conditional).
std::string mergedName(const std::string& name) {
  const std::string cond = kConditionalExpression;
  if (name.rfind(cond, 0) == 0) return "a conditional expression's value" + name.substr(cond.size());
  return "'" + name + "'";
}
}  // namespace

auto Tracer::mergeTV(const TV& a, const TV& b, const std::string& name, const Loc& loc, std::vector<MergeLeaf>& leaves, bool undefOk) -> TV {
  if (sameTV(a, b)) return a;
  if (!a.defined() || !b.defined()) {
    if (undefOk) return TV();
    const TV& d = a.defined() ? a : b;
    // A bare `return` on one path, none returned yet on the other: none either way.
    if (name == kReturnValue && d.isStatic() && d.sv.isNone()) return d;
    TV x = expandStatic(d);
    if (x.k == TV::Seq || x.k == TV::Rec) {
      // A container (a returned tuple) on one path only: each leaf merged with nothing.
      TV r = x;
      for (size_t i = 0; i < x.items.size(); ++i)
        r.items[i] = a.defined() ? mergeTV(x.items[i], TV(), name + itemSuffix(x, i), loc, leaves, false)
                                 : mergeTV(TV(), x.items[i], name + itemSuffix(x, i), loc, leaves, false);
      return r;
    }
    if (!isNumeric(d)) fail(loc, fmt::format("'{}' is not defined on every path", name));
    TensorType t = carriedType(typeOf(d), weakOf(d));
    leaves.push_back(MergeLeaf{a, b, t, weakOf(d)});
    TV r = TV::dyn(nullptr, weakOf(d));
    r.sv = Value::i64(static_cast<int64_t>(leaves.size() - 1));
    return r;
  }
  if (isNumeric(a) && isNumeric(b)) {
    TensorType ta = typeOf(a), tb = typeOf(b);
    bool wa = weakOf(a), wb = weakOf(b);
    TensorType t = ta;
    bool weak = wa && wb;
    // A weak value holds a kind of number (bool < integer < float), not a dtype: it takes the
    // other path's strong dtype when that keeps its value (a weak 1 with an f32), and two weak
    // values take the higher kind (0 on one path, 0.5 on the other: a float). A weak value of
    // a higher kind than the other path's strong dtype (0.5 against an i64) is a type change.
    // The types as the program sees them: a weak float is f32 (graph fns carry it in f64).
    auto shown = [&](const TV& v, bool weak, const TensorType& tv) {
      return TensorType(weak ? usedDtype(v) : tv.dtype, tv.dims).str();
    };
    auto differ = [&] {
      fail(loc, fmt::format("{} has type {} on one path and {} on another", mergedName(name), shown(a, wa, ta),
                            shown(b, wb, tb)));
    };
    if (wa && wb) {
      if (numberKind(tb.dtype) > numberKind(ta.dtype)) t = TensorType(tb.dtype, ta.dims);
    } else if (wa) {
      if (numberKind(ta.dtype) > numberKind(tb.dtype)) differ();
      t = TensorType(tb.dtype, ta.dims);
    } else if (wb) {
      if (numberKind(tb.dtype) > numberKind(ta.dtype)) differ();
    } else if (ta.dtype != tb.dtype) {
      differ();
    }
    if (ta.rank() != tb.rank()) differ();
    for (size_t i = 0; i < t.dims.size(); ++i)
      if (!(ta.dims[i] == tb.dims[i])) t.dims[i] = Dim::symbolic(f_.fresh_sym());
    t = carriedType(t, weak);
    leaves.push_back(MergeLeaf{a, b, t, weak});
    TV r = TV::dyn(nullptr, weak);
    r.sv = Value::i64(static_cast<int64_t>(leaves.size() - 1));
    return r;
  }
  TV x = expandStatic(a), y = expandStatic(b);
  if ((x.k == TV::Seq || x.k == TV::Rec) && x.k == y.k && x.items.size() == y.items.size() &&
      x.seqTag == y.seqTag && (x.k == TV::Seq || *x.names == *y.names)) {
    TV r = x;
    for (size_t i = 0; i < x.items.size(); ++i)
      r.items[i] = mergeTV(x.items[i], y.items[i], name + itemSuffix(x, i), loc, leaves, false);
    return r;
  }
  if (const char* words = comprehensionWords(name)) {  // [x for x in xs if c] with c known at run time
    bool dict = name.rfind(kDictComprehension, 0) == 0;
    fail(loc, fmt::format("a {}'s `if` must be known at trace time in a graph fn (the {} would be known only at run "
                          "time): compute every {}, or select {}with where{}",
                          words, dict ? "dict's keys" : "number of its items", dict ? "value" : "item",
                          dict ? "" : "from a tensor ", dict ? "" : " or a mask"));
  }
  // Values known when tracing that differ between paths taken at run time: name them (two
  // strings, say), not only their kinds.
  fail(loc, fmt::format("{} holds {} on one path and {} on another (only tensors and numbers can differ at run "
                        "time in a graph fn)",
                        mergedName(name), valueText(a), valueText(b)));
}

auto Tracer::fill(TV& t, const std::vector<ir::Value*>& vals) -> void {
  if (t.isDyn() && t.dv == nullptr) {
    t.dv = vals.at(static_cast<size_t>(t.sv.rawInt()));
    t.sv = Value();
    return;
  }
  for (auto& i : t.items) fill(i, vals);
}

auto Tracer::placeholder(const TensorType& t) -> ir::Value* {
  ir::Value* z = b_.constant(rt::Tensor::scalar_of(t.dtype, 0));
  if (t.is_scalar()) return z;
  return b_.broadcast_to(z, t.dims);
}

auto Tracer::leafValue(const TV& side, const MergeLeaf& m, const Loc& loc) -> ir::Value* {
  if (!side.defined()) return placeholder(m.type);
  // A weak int constant the merged i32 cannot hold: eager's error, when this path runs (the
  // value is yielded inside its branch).
  int64_t lo = 0, hi = 0;
  if (side.isStatic() && side.sv.isScalar() && side.sv.weak() && !side.sv.isFloatScalar() &&
      side.sv.dtype() != DType::Bool && narrowIntBounds(m.type.dtype, lo, hi) &&
      (side.sv.rawInt() < lo || side.sv.rawInt() > hi)) {
    setLoc(loc);
    b_.assert_true(b_.constant(rt::Tensor::scalar(false)), weakIntRangeError(std::to_string(side.sv.rawInt()), m.type.dtype));
  }
  return weakOperand(side, m.type.dtype, loc);  // one known at run time: checked, not wrapped
}

auto Tracer::liveTV(const TV& live, const TV& before, int side, std::vector<MergeLeaf>& leaves) -> TV {
  if (!live.defined() || live.isStatic() || sameTV(live, before)) return live;
  if (live.isDyn()) {
    TensorType t = carriedType(typeOf(live), weakOf(live));
    leaves.push_back(side == 0 ? MergeLeaf{live, TV(), t, weakOf(live)} : MergeLeaf{TV(), live, t, weakOf(live)});
    TV r = TV::dyn(nullptr, weakOf(live));
    r.sv = Value::i64(static_cast<int64_t>(leaves.size() - 1));
    return r;
  }
  TV r = live;
  for (size_t i = 0; i < live.items.size(); ++i)
    r.items[i] = liveTV(live.items[i], before.k == live.k && i < before.items.size() ? before.items[i] : TV(), side, leaves);
  return r;
}

auto Tracer::mergeCond(ir::Op& op, const FrameState& s0, const FrameState& st, const FrameState& se, const Loc& loc,
                       int dead) -> void {
  std::vector<MergeLeaf> leaves;
  FrameState m = s0;
  if (dead >= 0) {
    // The dead side fails at run time before it ends: the live side's state goes on.
    const int side = 1 - dead;
    const FrameState& l = side == 0 ? st : se;
    for (size_t i = 0; i < l.slots.size(); ++i) m.slots[i] = liveTV(l.slots[i], s0.slots[i], side, leaves);
    m.ret = liveTV(l.ret, s0.ret, side, leaves);
    m.retFlag = liveTV(l.retFlag, s0.retFlag, side, leaves);
    m.brk = liveTV(l.brk, s0.brk, side, leaves);
    m.cont = liveTV(l.cont, s0.cont, side, leaves);
  } else {
    for (size_t i = 0; i < st.slots.size(); ++i)
      m.slots[i] = mergeTV(st.slots[i], se.slots[i], fr().slotNames[i], loc, leaves, !s0.slots[i].defined());
    m.ret = mergeTV(st.ret, se.ret, kReturnValue, loc, leaves, false);
    m.retFlag = mergeTV(st.retFlag, se.retFlag, "return", loc, leaves, false);
    m.brk = mergeTV(st.brk, se.brk, "break", loc, leaves, false);
    m.cont = mergeTV(st.cont, se.cont, "continue", loc, leaves, false);
  }
  for (int side = 0; side < 2; ++side) {
    b_.set_insertion_end(op.region(side).block());
    std::vector<ir::Value*> ys;
    for (auto& l : leaves) ys.push_back(leafValue(side == 0 ? l.a : l.b, l, loc));
    setLoc(loc);
    b_.yield(ys);
  }
  std::vector<ir::Value*> results;
  for (auto& l : leaves) results.push_back(op.add_result(l.type));
  for (auto& s : m.slots) fill(s, results);
  fill(m.ret, results), fill(m.retFlag, results), fill(m.brk, results), fill(m.cont, results);
  restore(m);
}

auto Tracer::emitCond(const TV& p, const std::function<void()>& thenFn, const std::function<void()>& elseFn, const Loc& loc) -> void {
  ir::Value* pv = materialize(p, loc);
  setLoc(loc);
  ir::Op& op = b_.cond(pv, {});
  ir::Block& outer = b_.block();
  UnfinishedOp unfinished(outer, op);
  FrameState s0 = save();
  b_.set_insertion_end(op.region(0).block());
  const bool deadThen = traceMaybe(thenFn);
  FrameState st = save();
  restore(s0);
  b_.set_insertion_end(op.region(1).block());
  const bool deadElse = traceMaybe(elseFn);
  FrameState se = save();
  restore(s0);
  if (deadThen && deadElse) {
    // Both paths fail at run time: the cond has no results, and nothing after it runs.
    for (size_t side = 0; side < 2; ++side) {
      b_.set_insertion_end(op.region(side).block());
      setLoc(loc);
      b_.yield({});
    }
    b_.set_insertion(outer, outer.index_of(&op) + 1);
    unfinished.done();
    throw Diverged{};
  }
  mergeCond(op, s0, st, se, loc, deadThen ? 0 : deadElse ? 1 : -1);
  unfinished.done();
  // (re-read: a gradient taken inside the branches may have inserted stack_new before op)
  b_.set_insertion(outer, outer.index_of(&op) + 1);
}

auto Tracer::condValue(const TV& p, const std::function<TV()>& thenFn, const std::function<TV()>& elseFn, const Loc& loc) -> TV {
  // Carry the value through the return slot of a scratch state.
  FrameState s0 = save();
  TV saved = fr().st.ret;
  emitCond(p, [&] { fr().st.ret = thenFn(); }, [&] { fr().st.ret = elseFn(); }, loc);
  TV r = fr().st.ret;
  fr().st.ret = saved;
  (void)s0;
  return r;
}

}  // namespace tdl::vm::trace
