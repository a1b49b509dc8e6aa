// Indexing, slices and element and slice assignment. (graph/Tracer.h)
#include "graph/Tracer.h"

namespace tdl::vm::trace {

auto Tracer::integerIndex(const TV& i, const Loc& loc) -> ir::Value* {
  if (isNumeric(i)) {
    DType d = typeOf(i).dtype;
    if (d == DType::I32 || d == DType::I64) return materialize(i, loc, DType::I64);
  }
  failEager(loc, indexTypeError("an index", describe(i),
                           isNumeric(i) && rt::is_integer(typeOf(i).dtype) && typeOf(i).rank() > 0));
}

auto Tracer::indexInt(const TV& x, const TV& i, const Loc& loc) -> TV {
  if (x.isStatic() && i.isStatic()) return staticCall(loc, [&] { return iterItem(x.sv, i.sv.asInt()); });
  ir::Value* xv = materialize(x, loc);
  ir::Value* iv = integerIndex(i, loc);
  setLoc(loc);
  return TV::dyn(guarded(loc, [&] { return b_.index(xv, {iv}); }));
}

auto Tracer::indexTV(const TV& base, const Expr& e, const Loc& loc, const TV* sub0) -> TV {
  // x.shape[k] without building the shape vector.
  const Expr& be = *e.kids[0];
  if (be.kind == ExprKind::Field && be.str == "shape" && e.subs.size() == 1 && !e.subs[0].isSlice) {
    TV inner = eval(*be.kids[0]);
    TV k = eval(*e.subs[0].index);
    if (isNumeric(inner) && k.isStatic() && k.sv.isScalar() && !k.sv.isFloatScalar() && k.sv.dtype() != DType::Bool) {
      const int64_t rank = static_cast<int64_t>(typeOf(inner).rank()), a = k.sv.asInt();
      guarded(loc, [&] { return rt::resolve_index(rt::IndexItem::at(a), 0, rank); });  // the shape is a tuple, eagerly
      return dimTV(inner, a, loc);
    }
  }
  if (hasEllipsis(e)) {  // NumPy's `...`: whole slices for the axes the others leave
    if (!isNumeric(base)) failEager(loc, ellipsisTypeError(describe(base)));
    WithoutEllipsis lend(e, ellipsisFill(e, typeOf(base).rank(), loc));
    if (lend.subs.empty()) {  // x[...]: x itself (a weak number made strong), as eagerly
      if (base.isStatic())
        return staticCall(loc, [&] {
          std::vector<uint8_t> f{kSubSlice | kSubEllipsis};
          return indexValue(base.sv, f, nullptr);
        });
      return TV::dyn(materialize(base, loc));
    }
    return indexTV(base, e, loc, sub0);
  }
  if (isNumeric(base)) {
    // `none` subscripts are new axes of size 1 (SPEC §12), put in after the other subscripts
    // index x, at the count of result axes the subscripts before them make (eager's rule,
    // vm/ValueOps.cpp). The other subscripts are traced as usual: they are lent to a plain
    // index expression for the call and given back, also when it fails.
    bool any = std::any_of(e.subs.begin(), e.subs.end(),
                           [](const Subscript& q) { return !q.isSlice && q.index->kind == ExprKind::None; });
    if (any) {
      WithoutNewAxes lend(e);
      const std::vector<int64_t>& at = lend.at;
      auto& subs = lend.subs;
      TV r = subs.empty() ? base : indexTV(base, e, loc);
      for (int64_t a : at) {
        std::vector<TV> args{r, TV::of(Value::i64(a))};
        r = builtin(builtinId("expand_dims"), args, {}, loc);
      }
      return r;
    }
  }
  TV b = expandStatic(base);
  if (b.k == TV::Rec && b.seqTag == Tag::Dict) {
    if (e.subs.size() != 1 || e.subs[0].isSlice) failEager(loc, "a dict is indexed by one string key");
    TV k = eval(*e.subs[0].index);
    if (!k.isStatic() || !k.sv.isStr())
      fail(e.subs[0].loc, fmt::format("a dict key in a graph fn must be a string known at trace time, got {}", describe(k)));
    const std::string& key = k.sv.as<StrObj>()->s;
    for (size_t i = 0; i < b.names->size(); ++i)
      if ((*b.names)[i] == key) return b.items[i];
    failEager(loc, missingKeyText(*b.names, key));
  }
  if (b.k == TV::Seq && e.subs.size() == 1 && e.subs[0].isSlice) {  // xs[a:b:s]: eager's slice of the items
    int64_t start, stop, step;
    sliceBounds(e.subs[0], loc, start, stop, step, nullptr, nullptr);
    auto opt = [](int64_t v) { return v == ir::kSliceEnd || v == ir::kSliceBegin ? std::optional<int64_t>() : v; };
    rt::AxisRange r = guarded(loc, [&] {
      return rt::resolve_index(rt::IndexItem::slice(opt(start), opt(stop), step), 0, static_cast<int64_t>(b.items.size()));
    });
    TV out = b;
    out.items.clear();
    for (int64_t i = 0; i < r.count; ++i) out.items.push_back(b.items[static_cast<size_t>(r.start + i * r.step)]);
    return normalize(out);
  }
  if (b.k == TV::Range && e.subs.size() == 1 && e.subs[0].isSlice) return sliceRange(b, e.subs[0], loc);
  if (b.k == TV::Rec) failEager(loc, "cannot index a record; use r.name for its fields");
  if (b.k == TV::Seq) {
    if (e.subs.size() != 1 || e.subs[0].isSlice)
      failEager(loc, fmt::format("a {} takes one index{}", describe(base), e.subs.size() == 1 ? ", not a slice" : ""));
    TV k = eval(*e.subs[0].index);
    if (!k.isStatic()) fail(e.subs[0].loc, "a list index must be known at trace time in a graph fn");
    if (!k.sv.isScalar() || k.sv.isFloatScalar() || k.sv.dtype() == DType::Bool)
      failEager(loc, indexTypeError("an index", describe(k),
                                    isNumeric(k) && rt::is_integer(typeOf(k).dtype) && typeOf(k).rank() > 0));
    const int64_t n = static_cast<int64_t>(b.items.size());
    rt::AxisRange at = guarded(loc, [&] { return rt::resolve_index(rt::IndexItem::at(k.sv.asInt()), 0, n); });
    return b.items[static_cast<size_t>(at.start)];
  }
  if (base.isStatic() && !base.sv.isNumeric()) {
    // strings etc.: only static indexing
    std::vector<Value> regs;
    std::vector<uint8_t> flags;
    auto known = [&](const Expr& x, const Loc& at) {
      TV k = eval(x);
      if (!k.isStatic()) fail(at, "this index must be known at trace time");
      return k.sv;
    };
    for (auto& s : e.subs) {
      if (!s.isSlice) {
        regs.push_back(known(*s.index, s.loc));
        flags.push_back(0);
        continue;
      }
      uint8_t f = kSubSlice;  // a string's slice, as eagerly
      if (s.lo) f |= kSubLo, regs.push_back(known(*s.lo, s.loc));
      if (s.hi) f |= kSubHi, regs.push_back(known(*s.hi, s.loc));
      if (s.step) f |= kSubStep, regs.push_back(known(*s.step, s.loc));
      flags.push_back(f);
    }
    return staticCall(loc, [&] { return indexValue(base.sv, flags, regs.data()); });
  }
  if (!isNumeric(base)) failEager(loc, fmt::format("cannot index a {}", describe(base)));
  TensorType t = typeOf(base);
  // Evaluate subscripts.
  struct Sub { bool slice; TV idx; int64_t start, stop, step; TV lo = {}, hi = {}; };
  std::vector<Sub> subs;
  struct StepTake { int64_t axis; TV lo, hi, step; };
  std::vector<StepTake> stepTakes;
  bool allStatic = base.isStatic();
  for (auto& s : e.subs) {
    if (!s.isSlice) {
      TV k = sub0 && &s == &e.subs[0] ? *sub0 : eval(*s.index);
      if (isNumeric(k) && typeOf(k).rank() > 0) {
        if (e.subs.size() != 1) {
          if (rt::is_integer(typeOf(k).dtype)) failEager(loc, indexTypeError("an index", describe(k), true));  // eager's words
          fail(s.loc, "a tensor index must be the only subscript in graph fns");
        }
        if (base.isStatic() && k.isStatic()) return staticCall(loc, [&] { std::vector<Value> r{k.sv}; std::vector<uint8_t> f{0}; return indexValue(base.sv, f, r.data()); });
        return gatherTV(base, k, 0, loc);
      }
      allStatic = allStatic && k.isStatic();
      subs.push_back(Sub{false, k, 0, 0, 0});
      continue;
    }
    int64_t start, stop, step;
    TV lo, hi, dynStep;
    sliceBounds(s, loc, start, stop, step, &lo, &hi, &dynStep);
    if (dynStep.defined()) {
      // A step known only at run time: the whole axis here, and a take of the indices the
      // slice selects afterwards (its axis in the result: the slices before it).
      auto given = [&](const ExprPtr& p, const TV& dyn, int64_t v) { return !p ? TV() : dyn.defined() ? dyn : TV::of(Value::i64(v)); };
      int64_t axis = 0;
      for (const Sub& d : subs) axis += d.slice ? 1 : 0;
      stepTakes.push_back(StepTake{axis, given(s.lo, lo, start), given(s.hi, hi, stop), dynStep});
      allStatic = false;
      subs.push_back(Sub{true, TV(), 0, ir::kSliceEnd, 1});
      continue;
    }
    allStatic = allStatic && !lo.defined() && !hi.defined();
    subs.push_back(Sub{true, TV(), start, stop, step, lo, hi});
  }
  if (allStatic) {
    std::vector<Value> regs;
    std::vector<uint8_t> flags;
    for (size_t i = 0; i < e.subs.size(); ++i) {
      auto& s = e.subs[i];
      if (!s.isSlice) { regs.push_back(subs[i].idx.sv); flags.push_back(0); continue; }
      uint8_t f = kSubSlice;
      if (s.lo) f |= kSubLo, regs.push_back(eval(*s.lo).sv);
      if (s.hi) f |= kSubHi, regs.push_back(eval(*s.hi).sv);
      if (s.step) f |= kSubStep, regs.push_back(eval(*s.step).sv);
      flags.push_back(f);
    }
    return staticCall(loc, [&] { return indexValue(base.sv, flags, regs.data()); });
  }
  if (static_cast<int64_t>(subs.size()) > t.rank())  // eager's words
    failEager(loc, fmt::format("too many indices for a tensor of shape {}: got {}", ir::dims_str(t.dims), subs.size()));
  ir::Value* x = materialize(base, loc);
  ir::IntList movedAxes;  // the source axes of the index operands, when they moved
  // Integer indices after a slice (x[:, i]): the indexed axes move to the front first
  // (a transpose), so that the index op takes leading integers and the slices follow in
  // their order.
  size_t nint = 0;
  while (nint < subs.size() && !subs[nint].slice) ++nint;
  bool later = false;
  for (size_t i = nint; i < subs.size(); ++i) later = later || !subs[i].slice;
  if (later) {
    ir::IntList perm;
    std::vector<Sub> ordered;
    for (size_t i = 0; i < subs.size(); ++i)
      if (!subs[i].slice) perm.push_back(static_cast<int64_t>(i)), ordered.push_back(subs[i]);
    for (int64_t a = 0; a < x->type.rank(); ++a)
      if (static_cast<size_t>(a) >= subs.size() || subs[static_cast<size_t>(a)].slice) {
        perm.push_back(a);
        if (static_cast<size_t>(a) < subs.size()) ordered.push_back(subs[static_cast<size_t>(a)]);
      }
    setLoc(loc);
    x = guarded(loc, [&] { return b_.transpose(x, perm); });
    subs = std::move(ordered);
    nint = 0;
    while (nint < subs.size() && !subs[nint].slice) ++nint;
    movedAxes.assign(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(nint));
  }
  if (nint > 0) {
    std::vector<ir::Value*> idx;
    for (size_t i = 0; i < nint; ++i) idx.push_back(integerIndex(subs[i].idx, loc));
    setLoc(loc);
    x = guarded(loc, [&] { return b_.index(x, idx); });
    if (!movedAxes.empty() && x->def()) x->def()->attrs["axes"] = movedAxes;
  }
  if (nint < subs.size()) {
    ir::IntList st, sp, stp, dyn;
    std::vector<TV> los, his;
    bool anyDyn = false;
    for (int64_t a = 0; a < x->type.rank(); ++a) {
      size_t k = nint + static_cast<size_t>(a);
      if (k < subs.size()) {
        st.push_back(subs[k].start), sp.push_back(subs[k].stop), stp.push_back(subs[k].step);
        los.push_back(subs[k].lo), his.push_back(subs[k].hi);
      } else {
        st.push_back(0), sp.push_back(ir::kSliceEnd), stp.push_back(1), los.emplace_back(), his.emplace_back();
      }
      dyn.push_back(los.back().defined() || his.back().defined());
      anyDyn = anyDyn || dyn.back();
    }
    if (anyDyn) {  // bounds known at run time: a dyn_slice, its sizes symbolic
      std::vector<ir::Value*> ops{x};
      for (ir::Value* v : dynBounds(dyn, st, sp, los, his, loc)) ops.push_back(v);
      setLoc(loc);
      x = guarded(loc, [&] {
        return b_.create_inferred(ir::OpKind::DynSlice, ops, {{"start", st}, {"stop", sp}, {"step", stp}, {"dynamic", dyn}})
            .result();
      });
    } else {
      setLoc(loc);
      x = guarded(loc, [&] { return b_.slice(x, st, sp, stp); });
    }
  }
  TV r = TV::dyn(x);
  for (const StepTake& st : stepTakes)
    r = gatherTV(r, dynStepIndices(dimTV(r, st.axis, loc), st.lo, st.hi, st.step, loc), st.axis, loc);
  return r;
}

auto Tracer::sliceBounds(const Subscript& s, const Loc& at, int64_t& start, int64_t& stop, int64_t& step, TV* lo, TV* hi,
                         TV* dynStep) -> void {
  auto bound = [&](const ExprPtr& p, int64_t dflt, TV* dynOut) -> int64_t {
    if (!p) return dflt;
    TV v = eval(*p);
    if (v.isStatic() && v.sv.isScalar()) return v.sv.asInt();
    if (!dynOut || !isNumeric(v) || typeOf(v).rank() != 0)
      fail(p->loc, "slice bounds must be known at trace time in a graph fn");
    *dynOut = v;
    return dflt;
  };
  step = bound(s.step, 1, dynStep);
  if (step == 0) failEager(at, "slice step cannot be zero");  // at the indexing, as eagerly
  start = bound(s.lo, step > 0 ? 0 : ir::kSliceEnd, lo);
  stop = bound(s.hi, step > 0 ? ir::kSliceEnd : ir::kSliceBegin, hi);
}

auto Tracer::rangeParts(const TV& r, const Loc& loc, TV& start, TV& stop, int64_t& step) -> void {
  start = r.items[0], stop = r.items[1];
  if (!r.items[2].isStatic()) fail(loc, "a range whose step is known only at run time cannot be sliced or measured in a graph fn");
  step = r.items[2].sv.asInt();
  for (TV* v : {&start, &stop})
    if (v->isDyn()) *v = TV::dyn(materialize(*v, loc, DType::I64), true);
}

auto Tracer::rangeLength(const TV& r, const Loc& loc) -> TV {
  TV start, stop;
  int64_t st;
  rangeParts(r, loc, start, stop, st);
  // max(0, (stop - start + step - sign(step)) // step), Python's len(range).
  auto num = [](int64_t v) { return TV::of(Value::i64(v, true)); };
  TV span = binop(rt::BinaryOp::Add, binop(rt::BinaryOp::Sub, stop, start, loc), num(st > 0 ? st - 1 : st + 1), loc);
  std::vector<TV> args{num(0), binop(rt::BinaryOp::FloorDiv, span, num(st), loc)};
  TV n = builtin(builtinId("maximum"), args, {}, loc);
  if (n.isStatic()) n = TV::of(Value::i64(n.sv.asInt()));  // len is a strong i64
  return n;
}

auto Tracer::sliceRange(const TV& r, const Subscript& s, const Loc& loc) -> TV {
  int64_t a, b, c, st;
  sliceBounds(s, loc, a, b, c);
  TV start, stop;
  rangeParts(r, loc, start, stop, st);
  auto num = [](int64_t v) { return TV::of(Value::i64(v, true)); };
  auto op = [&](rt::BinaryOp o, const TV& x, const TV& y) { return binop(o, x, y, loc); };
  auto extreme = [&](const char* name, const TV& x, const TV& y) {
    std::vector<TV> args{x, y};
    return builtin(builtinId(name), args, {}, loc);
  };
  TV n = rangeLength(r, loc);
  TV lower = num(c > 0 ? 0 : -1), upper = c > 0 ? n : op(rt::BinaryOp::Sub, n, num(1));
  auto bound = [&](int64_t v, bool given) -> TV {  // Python's slice.indices
    if (!given) return v == 0 || v == ir::kSliceBegin ? lower : upper;  // sliceBounds' defaults
    if (v < 0) return extreme("maximum", op(rt::BinaryOp::Add, num(v), n), lower);
    return extreme("minimum", num(v), upper);
  };
  auto item = [&](const TV& i) { return op(rt::BinaryOp::Add, start, op(rt::BinaryOp::Mul, i, num(st))); };
  TV out;
  out.k = TV::Range;
  out.items = {item(bound(a, s.lo != nullptr)), item(bound(b, s.hi != nullptr)),
               num(static_cast<int64_t>(static_cast<uint64_t>(st) * static_cast<uint64_t>(c)))};
  return out;
}

auto Tracer::dynStepIndices(const TV& n, const TV& lo, const TV& hi, const TV& step, const Loc& loc) -> TV {
  auto num = [](int64_t v) { return TV::of(Value::i64(v, true)); };
  auto op = [&](rt::BinaryOp o, const TV& x, const TV& y) { return binop(o, x, y, loc); };
  auto call = [&](const char* name, std::vector<TV> args) { return builtin(builtinId(name), args, {}, loc); };
  TV k = TV::dyn(materialize(step, loc, DType::I64), false);
  setLoc(loc);
  b_.assert_true(materialize(op(rt::BinaryOp::Ne, k, num(0)), loc, DType::Bool), "slice step cannot be zero");
  TV up = op(rt::BinaryOp::Gt, k, num(0));
  TV lower = call("where", {up, num(0), num(-1)}), upper = call("where", {up, n, op(rt::BinaryOp::Sub, n, num(1))});
  auto bound = [&](const TV& v, const TV& dflt) {  // Python's slice.indices
    if (!v.defined()) return dflt;
    TV i = TV::dyn(materialize(v, loc, DType::I64), false);
    return call("where", {op(rt::BinaryOp::Lt, i, num(0)), call("maximum", {op(rt::BinaryOp::Add, i, n), lower}),
                          call("minimum", {i, upper})});
  };
  TV start = bound(lo, call("where", {up, lower, upper})), stop = bound(hi, call("where", {up, upper, lower}));
  return call("arange", {start, stop, k});
}

auto Tracer::dynBounds(const ir::IntList& dyn, const ir::IntList& st, const ir::IntList& sp, const std::vector<TV>& los, const std::vector<TV>& his, const Loc& loc) -> std::vector<ir::Value*> {
  std::vector<ir::Value*> out;
  for (size_t i = 0; i < dyn.size(); ++i) {
    if (!dyn[i]) continue;
    auto one = [&](const TV& t, int64_t v) {
      if (t.defined()) return integerIndex(t, loc);
      setLoc(loc);
      return b_.constant(rt::Tensor::scalar(v));
    };
    out.push_back(one(los[i], st[i]));
    out.push_back(one(his[i], sp[i]));
  }
  return out;
}

auto Tracer::gatherTV(const TV& base, const TV& index, int64_t axis, const Loc& loc) -> TV {
  if (!isNumeric(base)) failEager(loc, fmt::format("cannot index a {}", describe(base)));
  DType it = typeOf(index).dtype;
  if (it == DType::Bool)
    fail(loc, "indexing with a boolean mask is not supported in graph fns (the result's size depends on the data)");
  if (it != DType::I32 && it != DType::I64) failEager(loc, fmt::format("indices must be integers, got {}", typeOf(index).str()));
  ir::Value* x = materialize(base, loc);
  ir::Value* idx = materialize(index, loc);
  int64_t rank = x->type.rank();
  axis = guarded(loc, [&] { return rt::normalize_axis(axis, rank); });
  setLoc(loc);
  return TV::dyn(guarded(loc, [&] { return b_.create_inferred(ir::OpKind::Take, {x, idx}, {{"axis", axis}}).result(); }));
}

// The value stored into a tensor of dtype dt: a weak integer it cannot hold is eager's error
// (vm/ValueOps.cpp's valueFor), not a wrapped number.
auto Tracer::storedValue(const TV& v, DType dt, const Loc& loc) -> ir::Value* {
  if (v.isStatic() && v.sv.isScalar() && v.sv.weak()) guarded(loc, [&] { return weakTarget(v.sv, dt); });
  return weakOperand(v, dt, loc);  // one known at run time: checked when it runs
}

auto Tracer::sliceUpdateTV(const TV& base, const Expr& target, const TV& v, const Loc& loc) -> TV {
  // Integer indices anywhere (x[:, i] = v): their axes move to the front (a transpose),
  // the update runs there, and the result moves back.
  std::vector<ir::Value*> idx;
  ir::IntList intAxes, sliceAxes, st, sp, stp, dyn;
  std::vector<TV> los, his;
  bool anyDyn = false;
  for (size_t k = 0; k < target.subs.size(); ++k) {
    const Subscript& s = target.subs[k];
    if (!s.isSlice) {
      TV i = eval(*s.index);
      if (!isNumeric(i) || typeOf(i).rank() != 0) fail(s.loc, "slice assignment needs integer indices or slices in graph fns");
      idx.push_back(integerIndex(i, loc));
      intAxes.push_back(static_cast<int64_t>(k));
      continue;
    }
    int64_t start, stop, step;
    TV lo, hi;
    sliceBounds(s, loc, start, stop, step, &lo, &hi);
    st.push_back(start);
    sp.push_back(stop);
    stp.push_back(step);
    los.push_back(lo);
    his.push_back(hi);
    dyn.push_back(lo.defined() || hi.defined());
    anyDyn = anyDyn || dyn.back();
    sliceAxes.push_back(static_cast<int64_t>(k));
  }
  ir::Value* x = materialize(base, loc);
  setLoc(loc);
  int64_t rank = x->type.rank();
  if (static_cast<int64_t>(target.subs.size()) > rank)
    failEager(loc, fmt::format("too many indices for a tensor of shape {}: got {}", ir::dims_str(x->type.dims), target.subs.size()));
  bool moved = !intAxes.empty() && !sliceAxes.empty() && intAxes.back() > sliceAxes.front();
  ir::IntList perm, inverse;
  if (moved) {
    perm = intAxes;
    for (int64_t a = 0; a < rank; ++a)
      if (std::find(intAxes.begin(), intAxes.end(), a) == intAxes.end()) perm.push_back(a);
    inverse.assign(static_cast<size_t>(rank), 0);
    for (size_t q = 0; q < perm.size(); ++q) inverse[static_cast<size_t>(perm[q])] = static_cast<int64_t>(q);
    x = guarded(loc, [&] { return b_.transpose(x, perm); });
  }
  ir::Value* sub = idx.empty() ? x : guarded(loc, [&] { return b_.index(x, idx); });
  if (moved && sub != x && sub->def()) sub->def()->attrs["axes"] = intAxes;
  while (static_cast<int64_t>(st.size()) < sub->type.rank()) {
    st.push_back(0), sp.push_back(ir::kSliceEnd), stp.push_back(1), dyn.push_back(0);
    los.emplace_back(), his.emplace_back();
  }
  ir::Value* val = storedValue(v, x->type.dtype, loc);
  // A slice along an axis of symbolic size: its extent is known at run time too.
  for (size_t a = 0; a < dyn.size() && a < static_cast<size_t>(sub->type.rank()); ++a)
    if (!sub->type.dims[a].is_known() && !(st[a] == 0 && sp[a] == ir::kSliceEnd && stp[a] == 1)) dyn[a] = 1, anyDyn = true;
  if (anyDyn) {  // bounds known at run time: one dyn_slice_update (it has a gradient)
    std::vector<ir::Value*> ops{sub, val};
    for (ir::Value* bv : dynBounds(dyn, st, sp, los, his, loc)) ops.push_back(bv);
    setLoc(loc);
    ir::Value* out = guarded(loc, [&] {
      ir::Value* updated =
          b_.create_inferred(ir::OpKind::DynSliceUpdate, ops, {{"start", st}, {"stop", sp}, {"step", stp}, {"dynamic", dyn}})
              .result();
      return idx.empty() ? updated : b_.update(x, updated, idx);
    });
    if (moved) out = guarded(loc, [&] { return b_.transpose(out, inverse); });
    return TV::dyn(out);
  }
  ir::Value* out = guarded(loc, [&] {
    std::vector<ir::Dim> sdims = b_.slice(sub, st, sp, stp)->type.dims;
    ir::Value* placed = nullptr;
    ir::Value* mask = nullptr;
    ir::Value* spread = b_.broadcast_to(val, sdims);  // its own error where it does not fit, as eagerly
    try {
      placed = ir::autodiff::scatter_slice(b_, spread, sub->type.dims, st, sp, stp);
      ir::Value* yes = b_.broadcast_to(b_.constant(rt::Tensor::scalar(true)), sdims);
      mask = ir::autodiff::scatter_slice(b_, yes, sub->type.dims, st, sp, stp);
    } catch (const ir::ShapeError&) {
      fail(loc, "slice assignment along an axis of unknown size is not supported in graph fns yet");
    }
    ir::Value* updated = b_.select(mask, placed, sub);
    return idx.empty() ? updated : b_.update(x, updated, idx);
  });
  if (moved) out = guarded(loc, [&] { return b_.transpose(out, inverse); });
  return TV::dyn(out);
}

auto Tracer::updateTV(const TV& base, const Expr& target, const TV& v, const Loc& loc, const TV* sub0) -> TV {
  TV d = expandStatic(base);
  if (d.k == TV::Rec && d.seqTag == Tag::Dict) {  // d["key"] = v: the structure changes at trace time
    if (target.subs.size() != 1 || target.subs[0].isSlice) failEager(loc, "a dict is indexed by one string key");
    TV k = eval(*target.subs[0].index);
    if (!k.isStatic() || !k.sv.isStr())
      fail(target.subs[0].loc, fmt::format("a dict key in a graph fn must be a string known at trace time, got {}", describe(k)));
    const std::string& key = k.sv.as<StrObj>()->s;
    std::vector<std::string> keys = *d.names;
    auto it = std::find(keys.begin(), keys.end(), key);
    if (it != keys.end()) {
      d.items[static_cast<size_t>(it - keys.begin())] = v;
    } else {
      keys.push_back(key);
      d.items.push_back(v);
      d.names = std::make_shared<const std::vector<std::string>>(std::move(keys));
    }
    return normalize(d);
  }
  if (d.k == TV::Seq && d.seqTag == Tag::Tuple) failEager(loc, "tuples are immutable: cannot assign to an element");
  if (d.k == TV::Seq) {  // xs[i] = v: the list's structure is known at trace time
    if (target.subs.size() != 1 || target.subs[0].isSlice) failEager(loc, "list elements are assigned one at a time: xs[i] = v");
    TV k = eval(*target.subs[0].index);
    if (!k.isStatic()) fail(target.subs[0].loc, "a list index must be known at trace time in a graph fn");
    if (!k.sv.isScalar() || k.sv.isFloatScalar() || k.sv.dtype() == DType::Bool)
      failEager(target.subs[0].loc, fmt::format("an index must be an integer, got {}", describe(k)));
    const int64_t n = static_cast<int64_t>(d.items.size());
    rt::AxisRange at = guarded(loc, [&] { return rt::resolve_index(rt::IndexItem::at(k.sv.asInt()), 0, n); });
    d.items[static_cast<size_t>(at.start)] = v;
    return normalize(d);
  }
  if (!isNumeric(base)) fail(loc, "element assignment needs a tensor in graph fns");
  for (auto& s : target.subs)
    if (s.isSlice) return sliceUpdateTV(base, target, v, loc);
  std::vector<ir::Value*> idx;
  for (auto& s : target.subs) {
    TV k = sub0 && &s == &target.subs[0] ? *sub0 : eval(*s.index);
    if (isNumeric(k) && typeOf(k).rank() > 0 && target.subs.size() == 1) {
      // x[idx] = v with a tensor of indices: eager's scatter (rows of axis 0; a repeated index
      // takes the last value), a runtime call.
      DType it = typeOf(k).dtype;
      if (it != DType::I32 && it != DType::I64) failEager(s.loc, fmt::format("indices must be integers, got {}", typeOf(k).str()));
      ir::Value* x = materialize(base, loc);
      if (x->type.rank() == 0) failEager(loc, "cannot index a scalar");
      ir::Value* iv = materialize(k, loc);
      ir::Value* val = storedValue(v, x->type.dtype, loc);
      setLoc(loc);
      return TV::dyn(b_.create(ir::OpKind::CallRuntime, {x, iv, val}, {x->type},
                               ir::AttrMap{{"callee", std::string("scatter")}, {"where", whereText(loc)}})
                         .result());
    }
    if (!isNumeric(k) || typeOf(k).rank() != 0) fail(s.loc, "element assignment needs integer indices in graph fns");
    idx.push_back(integerIndex(k, loc));
  }
  ir::Value* x = materialize(base, loc);
  ir::Value* val = storedValue(v, x->type.dtype, loc);
  setLoc(loc);
  return TV::dyn(guarded(loc, [&] { return b_.update(x, val, idx); }));
}

// NumPy's x[mask] = v and x[mask] op= v, as eager mode runs them (vm/ValueOps.cpp), traced as
// where(mask, value, x): the mask's shape is x's leading axes (size-1 axes appended for the
// rest). How many elements the mask selects is known only at run time, so v must be one value
// for every selected element or row: a scalar, or a shape that broadcasts against the axes the
// mask leaves (v of the selected count, as eager mode allows, is not traceable).
auto Tracer::maskedUpdateTV(const TV& x, const TV& mask, const TV& rhs, const TV& value, const Loc& loc) -> TV {
  const ir::TensorType xt = typeOf(x), mt = typeOf(mask);
  const std::string mismatch = fmt::format(
      "a boolean mask of shape {} does not match the indexed shape {} (its shape must be the tensor's leading axes)",
      ir::dims_str(mt.dims), ir::dims_str(xt.dims));
  if (mt.rank() > xt.rank()) failEager(loc, mismatch);
  // Sizes known only at run time (symbols of the two, which may be equal) are compared there,
  // with eager's words and the call's sizes.
  ir::Value* same = nullptr;
  for (int64_t i = 0; i < mt.rank(); ++i) {
    const Dim& md = mt.dims[static_cast<size_t>(i)];
    const Dim& xd = xt.dims[static_cast<size_t>(i)];
    if (md == xd) continue;
    if (md.is_known() && xd.is_known()) failEager(loc, mismatch);
    ir::Value* eq = b_.binary(rt::BinaryOp::Eq, dimOf(mask, i, loc), dimOf(x, i, loc));
    same = same ? b_.binary(rt::BinaryOp::BitAnd, same, eq) : eq;
  }
  if (same) {
    std::vector<ir::Value*> holes;
    std::string format = sizedFormat(mismatch, holes);
    setLoc(loc);
    b_.assert_true(same, holes.empty() ? mismatch : format, holes);  // without values: the text as it is
  }
  const std::vector<ir::Dim> rest(xt.dims.begin() + mt.rank(), xt.dims.end());
  const ir::TensorType vt = isNumeric(rhs) ? typeOf(rhs) : ir::TensorType();
  bool fits = isNumeric(rhs) && vt.rank() <= static_cast<int64_t>(rest.size()) + 1;  // [count, rest...] at most
  for (int64_t i = 1; fits && i <= vt.rank(); ++i) {  // leading axes beyond the rest: 1s (NumPy broadcasts them)
    const ir::Dim& d = vt.dims[static_cast<size_t>(vt.rank() - i)];
    fits = d == ir::Dim::known(1) || (i <= static_cast<int64_t>(rest.size()) && d == rest[rest.size() - static_cast<size_t>(i)]);
  }
  if (!fits)
    fail(loc, fmt::format("in a graph fn, a value assigned through a boolean mask must be {}, got {}: how many "
                          "elements the mask selects is known only at run time",
                          rest.empty() ? std::string("a scalar")
                                       : fmt::format("a scalar or broadcast against the axes the mask leaves ({})",
                                                     ir::dims_str(rest)),
                          describe(rhs)));
  TV m = mask;
  for (size_t i = 0; i < rest.size(); ++i) {
    std::vector<TV> args{m, TV::of(Value::i64(-1))};
    m = builtin(builtinId("expand_dims"), args, {}, loc);
  }
  std::vector<TV> args{m, value, x};
  TV r = builtin(builtinId("where"), args, {}, loc);
  return TV::dyn(materialize(r, loc, xt.dtype));  // x keeps its dtype, as an assignment does
}

Tracer::LentSubscripts::LentSubscripts(const Expr& e)
    : subs(const_cast<std::vector<Subscript>&>(e.subs)), all(std::move(subs)) {
  subs.clear();
}

void Tracer::LentSubscripts::lend(size_t i) {
  lent.emplace_back(i, subs.size());
  subs.push_back(std::move(all[i]));
}

Tracer::LentSubscripts::~LentSubscripts() {
  for (auto [a, k] : lent) all[a] = std::move(subs[k]);
  subs = std::move(all);
}

Tracer::WithoutNewAxes::WithoutNewAxes(const Expr& e) : LentSubscripts(e) {
  int64_t out = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    if (!all[i].isSlice && all[i].index->kind == ExprKind::None) {
      at.push_back(out++);
      continue;
    }
    if (all[i].isSlice) ++out;
    lend(i);
  }
}

bool Tracer::hasEllipsis(const Expr& e) {
  return std::any_of(e.subs.begin(), e.subs.end(), [](const Subscript& q) { return q.isEllipsis; });
}

// The subscripts other than `none` and `...` take one axis each (a boolean mask with `...`
// not last counts one here, its rank eagerly).
int64_t Tracer::ellipsisFill(const Expr& e, int64_t rank, const Loc& loc) {
  int64_t taken = 0, ellipses = 0;
  for (const Subscript& q : e.subs) {
    if (q.isEllipsis) ++ellipses;
    else if (q.isSlice || q.index->kind != ExprKind::None) ++taken;
  }
  return guarded(loc, [&] { return rt::ellipsis_axes(rank, taken, ellipses); });
}

Tracer::WithoutEllipsis::WithoutEllipsis(const Expr& e, int64_t fill) : LentSubscripts(e) {
  for (size_t i = 0; i < all.size(); ++i) {
    if (!all[i].isEllipsis) {
      lend(i);
      continue;
    }
    if (i + 1 == all.size()) continue;
    for (int64_t k = 0; k < fill; ++k) {
      Subscript whole;
      whole.isSlice = true;
      whole.loc = all[i].loc;
      subs.push_back(std::move(whole));
    }
  }
}

}  // namespace tdl::vm::trace
