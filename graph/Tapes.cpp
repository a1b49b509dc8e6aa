// Tapes, gradients and grad functions inside graph fns (SPEC §7). (graph/Tracer.h)
#include "graph/Tracer.h"

namespace tdl::vm::trace {

auto Tracer::tapeStart(TapeRec& t) -> void {
  t.block = &b_.block();
  t.before = b_.pos() > 0 ? &t.block->op(b_.pos() - 1) : nullptr;
}

auto Tracer::tapeOps(const TapeRec& t, const Loc& loc) -> std::vector<ir::Op*> {
  if (&b_.block() != t.block) fail(loc, "a tape's gradient must be taken in the block of its `with` (not inside a loop or branch of it)");
  size_t from = t.before ? t.block->index_of(t.before) + 1 : 0;
  std::vector<ir::Op*> ops;
  for (size_t i = from; i < b_.pos(); ++i) ops.push_back(&t.block->op(i));
  return ops;
}

auto Tracer::withTape(const Stmt& s) -> void {
  TV ctx = eval(*s.exprs[0]);
  if (ctx.k != TV::Tape) failEager(s.exprs[0]->loc, fmt::format("`with` needs a tape(), got {}", describe(ctx)));
  if (s.global) fail(s.loc, "internal: a global tape variable inside a graph fn");
  assignSlot(s.slot, ctx, s.loc, s.str);
  size_t idx = static_cast<size_t>(ctx.tape);
  // The frame's float scalars become values the tape can follow (tapedScalars_).
  for (TV& v : fr().st.slots)
    if (v.isStatic() && v.sv.isScalar() && v.sv.isFloatScalar())
      v = scalarConstant(v.sv);
  tapeStart(tapes_[idx]);
  recording_.push_back(&tapes_[idx]);
  try {
    execBody(*s.body);
  } catch (...) {
    recording_.pop_back();
    throw;
  }
  recording_.pop_back();
  TapeRec& t = tapes_[idx];
  t.ops = tapeOps(t, s.loc);
  t.done = true;
}

auto Tracer::sourceLeaves(const TV& src, std::vector<const TV*>& out, const Loc& loc) -> void {
  switch (src.k) {
    case TV::Dyn:
      if (!rt::is_float(src.dv->type.dtype))
        failEager(loc, fmt::format("gradient source must be a float tensor, got {}", src.dv->type.str()));
      out.push_back(&src);
      return;
    case TV::Seq:
    case TV::Rec:
      for (auto& i : src.items) sourceLeaves(i, out, loc);
      return;
    case TV::Static:
      if (src.sv.isSeq() || src.sv.tag() == Tag::Record || src.sv.tag() == Tag::Dict)
        fail(loc, "internal: unexpanded static sources");
      if (!src.sv.isNumeric() || !rt::is_float(typeOf(src).dtype))
        failEager(loc, fmt::format("gradient source must be a float tensor, got {}", describe(src)));
      out.push_back(&src);
      return;
    default: failEager(loc, fmt::format("gradient source must be a float tensor, got {}", describe(src)));
  }
}

auto Tracer::expandDeep(const TV& t) -> TV {
  TV x = expandStatic(t);
  if (x.k == TV::Seq || x.k == TV::Rec)
    for (auto& i : x.items) i = expandDeep(i);
  return x;
}

auto Tracer::rebuildGrads(const TV& src, const std::vector<ir::Value*>& g, size_t& k) -> TV {
  if (src.k == TV::Seq || src.k == TV::Rec) {
    TV r = src;
    for (auto& i : r.items) i = rebuildGrads(i, g, k);
    return r;
  }
  return TV::dyn(g[k++], weakOf(src));
}

auto Tracer::gradientOf(const std::vector<ir::Op*>& ops, const TV& target, const TV& sources0, const Loc& loc) -> TV {
  TV sources = expandDeep(sources0);
  std::vector<const TV*> leaves;
  sourceLeaves(sources, leaves, loc);
  setLoc(loc);
  std::vector<ir::Value*> srcv;
  for (const TV* l : leaves) srcv.push_back(l->isDyn() ? l->dv : materialize(*l, loc));
  ir::Value* tv = nullptr;
  if (target.isDyn()) {
    tv = target.dv;
    if (!rt::is_float(tv->type.dtype)) failEager(loc, fmt::format("gradient target must be a float tensor, got {}", tv->type.str()));
  } else if (!target.isStatic() || !target.sv.isNumeric()) {
    failEager(loc, fmt::format("gradient target must be a float tensor, got {}", describe(target)));
  }
  std::vector<ir::Value*> grads;
  guarded(loc, [&] {
    // A non-scalar target counts as its sum (SPEC §7): autodiff seeds it with ones. (A sum
    // added here would lie outside the tape's ops, and the gradient came out zero.)
    if (tv) {
      grads = ir::autodiff::gradient(b_, ops, tv, srcv);
    } else {
      for (ir::Value* s : srcv) grads.push_back(b_.broadcast_to(b_.constant(rt::zeros({}, s->type.dtype)), s->type.dims));
    }
    return 0;
  });
  size_t k = 0;
  return rebuildGrads(sources, grads, k);
}

auto Tracer::tapeGradient(const TapeRec& t, const TV& target, const TV& sources, const Loc& loc) -> TV {
  if (!t.block) failEager(loc, "this tape has not recorded anything yet: use it in a `with` block first");
  checkHoisted(t, sources, loc);
  // The backward of a loop or branch replays saved values once: taken inside a loop that
  // the tape's block does not contain, it is emitted before that loop (hoisted; it only
  // reads values of the tape's scope), else it is an error.
  bool regions = false;
  for (ir::Op* op : t.ops) regions = regions || op->num_regions() > 0;
  ir::Op* hoist = nullptr;  // the op of the tape's block that holds the current position
  bool inLoop = false;
  if (regions && t.done)
    for (ir::Block* bl = &b_.block(); bl && bl != t.block;) {
      ir::Op* p = bl->parent() ? bl->parent()->parent_op() : nullptr;
      if (!p) break;
      inLoop = inLoop || p->kind() == ir::OpKind::While;
      hoist = p;
      bl = p->parent();
    }
  if (inLoop && hoist && hoist->parent() == t.block) {
    auto visible = [&](const TV& v) {
      std::vector<TV> leaves;
      leavesOf(expandDeep(v), leaves);
      for (const TV& l : leaves) {
        if (!l.isDyn()) continue;
        ir::Block* db = l.dv->is_block_arg() ? l.dv->block() : l.dv->def()->parent();
        bool ok = false;
        for (ir::Block* bl = t.block; bl && !ok;) {
          ok = bl == db;
          ir::Op* p = bl->parent() ? bl->parent()->parent_op() : nullptr;
          bl = p ? p->parent() : nullptr;
        }
        if (!ok) return false;
      }
      return true;
    };
    if (!visible(target) || !visible(sources))
      fail(loc, "the gradient of a tape with loops or branches must be taken outside any loop the tape is not in");
    ir::Block& cur = b_.block();
    ir::Op* anchor = anchorOf(cur, b_.pos());
    size_t at = t.block->index_of(hoist);
    ir::Op* prev = at > 0 ? &t.block->op(at - 1) : nullptr;
    b_.set_insertion(*t.block, at);
    TV g = gradientOf(t.ops, target, sources, loc);
    b_.set_insertion(cur, positionAfter(cur, anchor));
    // The tapes that began inside `hoist` (recording here) do not record the hoisted
    // backward: their gradients check that it does not depend on their sources.
    std::vector<TapeRec*> inside;
    for (TapeRec* r : recording_)
      if (r != &t && r->block && r->block != t.block && enclosedBy(r->block, hoist)) inside.push_back(r);
    if (!inside.empty()) {
      TapeRec::Hoisted h;
      h.loc = loc;
      for (size_t i = prev ? t.block->index_of(prev) + 1 : 0; &t.block->op(i) != hoist; ++i) h.ops.push_back(&t.block->op(i));
      std::vector<TV> leaves;
      leavesOf(expandDeep(g), leaves);
      for (const TV& l : leaves)
        if (l.isDyn()) h.grads.push_back(l.dv);
      for (TapeRec* r : inside) r->hoisted.push_back(h);
    }
    return g;
  }
  return gradientOf(t.done ? t.ops : tapeOps(t, loc), target, sources, loc);
}

auto Tracer::enclosedBy(ir::Block* b, ir::Op* op) -> bool {
  while (b && b->parent() && b->parent()->parent_op()) {
    ir::Op* p = b->parent()->parent_op();
    if (p == op) return true;
    b = p->parent();
  }
  return false;
}

auto Tracer::checkHoisted(const TapeRec& t, const TV& sources, const Loc& loc) -> void {
  if (t.hoisted.empty()) return;
  std::vector<TV> leaves;
  leavesOf(expandDeep(sources), leaves);
  std::set<ir::Value*> src;
  for (const TV& l : leaves)
    if (l.isDyn()) src.insert(l.dv);
  for (const TapeRec::Hoisted& h : t.hoisted) {
    std::set<ir::Value*> tainted = src;
    std::function<bool(ir::Block&)> reads = [&](ir::Block& b) {
      for (size_t i = 0; i < b.size(); ++i) {
        ir::Op& o = b.op(i);
        for (ir::Value* v : o.operands())
          if (tainted.count(v)) return true;
        for (size_t r = 0; r < o.num_regions(); ++r)
          if (reads(o.region(r).block())) return true;
      }
      return false;
    };
    for (ir::Op* op : h.ops) {
      bool hit = false;
      for (ir::Value* v : op->operands()) hit = hit || tainted.count(v) > 0;
      for (size_t r = 0; r < op->num_regions() && !hit; ++r) hit = reads(op->region(r).block());
      if (hit)
        for (ir::Value* v : op->results()) tainted.insert(v);
    }
    for (ir::Value* v : h.grads)
      if (tainted.count(v))
        fail(h.loc, fmt::format("this gradient of a tape with loops or branches, taken inside a loop the tape is not "
                                "in, is computed once before that loop, outside the tape whose gradient at line {} "
                                "differentiates it with respect to a value it reads; take it before the loop",
                                loc.line));
  }
}

auto Tracer::dynamize(const TV& t, const Loc& loc) -> TV {
  TV x = expandDeep(t);
  if (x.k == TV::Seq || x.k == TV::Rec) {
    for (auto& i : x.items) i = dynamize(i, loc);
    return x;
  }
  if (x.isStatic() && x.sv.isNumeric() && rt::is_float(typeOf(x).dtype)) return TV::dyn(materialize(x, loc), weakOf(x));
  if (x.isDyn() && rt::is_float(x.dv->type.dtype)) {
    // A new value, as eager mode gives grad(f)'s differentiated arguments new nodes: a
    // tape recorded before does not see it as the value passed (cast to its own dtype,
    // an identity the pipeline removes).
    setLoc(loc);
    return TV::dyn(b_.cast(x.dv, x.dv->type.dtype), weakOf(x));
  }
  return x;
}

auto Tracer::callGradFn(const TV& g, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc) -> TV {
  const char* nm = g.withValue ? "value_and_grad" : "grad";
  size_t npos = args.size() - kw.size();
  for (int64_t k : g.argnums)
    if (k < 0 || static_cast<size_t>(k) >= npos)
      failEager(loc, fmt::format("{}(f): argnums {} is out of range for a call with {} positional arguments", nm, k, npos));
  for (int64_t k : g.argnums) {  // the sources are checked before f runs, as eagerly
    std::vector<const TV*> leaves;
    TV all = expandDeep(args[static_cast<size_t>(k)]);
    sourceLeaves(all, leaves, loc);
  }
  for (int64_t k : g.argnums) args[static_cast<size_t>(k)] = dynamize(args[static_cast<size_t>(k)], loc);
  TapeRec t;
  tapeStart(t);
  recording_.push_back(&t);
  TV out;
  try {
    out = callTV(g.items[0], args, kw, loc);
  } catch (...) {
    recording_.pop_back();
    throw;
  }
  recording_.pop_back();
  std::vector<ir::Op*> ops = tapeOps(t, loc);
  bool ok = (out.isDyn() && rt::is_float(out.dv->type.dtype) && out.dv->type.is_scalar()) ||
            (out.isStatic() && out.sv.isScalar() && rt::is_float(out.sv.dtype()));
  if (!ok) failEager(loc, fmt::format("{}(f): f must return a float scalar, got {}", nm, describe(out)));
  TV sources;
  if (g.tupleArgs) {
    sources.k = TV::Seq;
    sources.seqTag = Tag::Tuple;
    for (int64_t k : g.argnums) sources.items.push_back(args[static_cast<size_t>(k)]);
  } else {
    sources = args[static_cast<size_t>(g.argnums[0])];
  }
  checkHoisted(t, sources, loc);
  TV grads = gradientOf(ops, out, sources, loc);
  if (!g.withValue) return grads;
  TV r;
  r.k = TV::Seq;
  r.seqTag = Tag::Tuple;
  r.items = {out, grads};
  return r;
}

}  // namespace tdl::vm::trace
