// Loops: unrolled while static, else IR while loops over carried values. (graph/Tracer.h)
#include "graph/Tracer.h"

#include <algorithm>
#include <unordered_set>

#include "ir/Rewrite.h"

namespace tdl::vm::trace {

auto Tracer::leavesOf(const TV& t, std::vector<TV>& out) -> void {
  TV x = expandStatic(t);
  if (isNumeric(x)) { out.push_back(x); return; }
  if (x.k == TV::Seq || x.k == TV::Rec) for (auto& i : x.items) leavesOf(i, out);
}

auto Tracer::sameSkeleton(const TV& a, const TV& b) -> bool {
  if (sameTV(a, b)) return true;
  TV x = expandStatic(a), y = expandStatic(b);
  if (isNumeric(x) && isNumeric(y)) return true;
  if ((x.k == TV::Seq || x.k == TV::Rec) && x.k == y.k && x.items.size() == y.items.size() && x.seqTag == y.seqTag &&
      (x.k == TV::Seq || *x.names == *y.names)) {
    for (size_t i = 0; i < x.items.size(); ++i)
      if (!sameSkeleton(x.items[i], y.items[i])) return false;
    return true;
  }
  return false;
}

// The name of item i of container x as it follows a variable's name: [2], .w or ["k"].
auto Tracer::itemSuffix(const TV& x, size_t i) -> std::string {
  if (x.k == TV::Seq) return fmt::format("[{}]", i);
  if (x.seqTag == Tag::Dict) return fmt::format("[\"{}\"]", (*x.names)[i]);
  return "." + (*x.names)[i];
}

// Where a and b (same variable) first differ in more than numbers: the path below the
// variable (name[0].w) and the two parts there.
auto Tracer::differingPart(const TV& a, const TV& b, std::string& path, TV& da, TV& db) -> void {
  TV x = expandStatic(a), y = expandStatic(b);
  if ((x.k == TV::Seq || x.k == TV::Rec) && x.k == y.k && x.items.size() == y.items.size() && x.seqTag == y.seqTag &&
      (x.k == TV::Seq || *x.names == *y.names))
    for (size_t i = 0; i < x.items.size(); ++i)
      if (!sameSkeleton(x.items[i], y.items[i])) {
        path += itemSuffix(x, i);
        differingPart(x.items[i], y.items[i], path, da, db);
        return;
      }
  da = a;
  db = b;
}

auto Tracer::valueText(const TV& t) -> std::string {
  TV x = expandStatic(t);
  if (x.isStatic() && x.sv.isStr()) return fmt::format("the string \"{}\"", x.sv.as<StrObj>()->s);
  if (x.k == TV::Rec && x.seqTag == Tag::Dict) {
    std::string keys;
    for (const std::string& k : *x.names) keys += (keys.empty() ? "\"" : ", \"") + k + "\"";
    return x.names->empty() ? "an empty dict" : fmt::format("a dict with key{} {}", x.names->size() == 1 ? "" : "s", keys);
  }
  if (x.k == TV::Seq && x.seqTag != Tag::Dict) {
    size_t n = x.items.size();
    return fmt::format("a {} of {} item{}", tagName(x.seqTag), n, n == 1 ? "" : "s");
  }
  return "a " + describe(t);
}

auto Tracer::rebuild(const TV& t, const std::vector<ir::Value*>& vals, const std::vector<LeafSpec>& specs, size_t& k) -> TV {
  TV x = expandStatic(t);
  if (isNumeric(x)) {
    size_t i = k++;
    return TV::dyn(vals[i], specs[i].weak);
  }
  if (x.k == TV::Seq || x.k == TV::Rec) {
    for (auto& i : x.items) i = rebuild(i, vals, specs, k);
    return x;
  }
  return t;
}

auto Tracer::dynamicLoop(const Stmt& s, const std::function<TV(TV&)>& cond, const std::function<void(TV&)>& body, TV counter) -> void {
  Frame& f = fr();
  std::set<int> assigned, declared;
  bool hasBreak = false, hasReturn = false;
  scanAssigned(*s.body, assigned, declared, hasBreak, hasReturn, 0);
  std::vector<Carried> carried;
  for (int slot : assigned)
    if (!declared.count(slot) && f.st.slots[static_cast<size_t>(slot)].defined()) carried.push_back({Carried::Slot, slot});
  if (counter.defined()) carried.push_back({Carried::Counter});
  if (hasBreak || f.st.brk.isDyn()) carried.push_back({Carried::Brk});
  if (hasReturn || f.st.retFlag.isDyn()) {
    carried.push_back({Carried::RetFlag});
    carried.push_back({Carried::Ret});
  }
  // Leaf types, refined by retracing until the body keeps them.
  std::vector<std::vector<LeafSpec>> specs(carried.size());
  // A weak float scalar is carried in f64 (weakWide): eager mode computes weak-only arithmetic
  // exactly, so `acc = acc + 1.0` counts past 2^24 as it does there (f32 stopped at 16777216).
  auto leafSpec = [&](const TV& l) { return LeafSpec{carriedType(typeOf(l), weakOf(l)), weakOf(l)}; };
  TV retSkeleton;  // the structure of a value returned from inside the loop, once seen
  bool retNone = false;  // a bare `return` (none) seen inside the loop
  std::string unsettled;  // the carried value that changed on the last retrace (for the error)
  for (size_t c = 0; c < carried.size(); ++c) {
    std::vector<TV> ls;
    leavesOf(*carried[c].ref(f, counter), ls);
    for (auto& l : ls) specs[c].push_back(leafSpec(l));
  }
  for (int attempt = 0;; ++attempt) {
    if (attempt >= kMaxLoopAttempts)
      fail(s.loc, fmt::format("the carried values of this loop do not settle: {} changes on every retrace; give it "
                              "its dtype and rank before the loop",
                              unsettled.empty() ? std::string("a value") : unsettled));
    FrameState s0 = save();
    TV counter0 = counter;
    ir::Block& outer = b_.block();
    // Initial values.
    std::vector<ir::Value*> inits;
    std::vector<TensorType> types;
    std::vector<LeafSpec> flat;
    for (size_t c = 0; c < carried.size(); ++c) {
      TV* r = carried[c].ref(f, counter);
      std::vector<TV> ls;
      leavesOf(*r, ls);
      if (carried[c].kind == Carried::Ret && !r->defined()) ls.clear();
      for (size_t i = 0; i < specs[c].size(); ++i) {
        const LeafSpec& sp = specs[c][i];
        if (i < ls.size()) inits.push_back(materialize(ls[i], s.loc, sp.type.dtype));
        else { setLoc(s.loc); inits.push_back(placeholder(sp.type)); }
        types.push_back(sp.type);
        flat.push_back(sp);
      }
    }
    setLoc(s.loc);
    ir::Op& op = b_.while_loop(inits, types);
    UnfinishedOp unfinished(outer, op);
    // Binds the carried components to `values` (a region's block args, or the results).
    auto bindValues = [&](const std::vector<ir::Value*>& values) {
      size_t k = 0;
      for (size_t c = 0; c < carried.size(); ++c) {
        TV* ref = carried[c].ref(f, counter);
        TV skeleton = *ref;
        if (carried[c].kind == Carried::Ret && !skeleton.defined()) {
          if (specs[c].empty()) {
            if (retNone) *ref = TV::of(Value());  // a bare `return` inside: none after the loop
            continue;
          }
          skeleton = retSkeleton;  // the structure discovered on an earlier attempt
        }
        std::vector<LeafSpec> sp(flat.begin() + static_cast<long>(k), flat.begin() + static_cast<long>(k + specs[c].size()));
        std::vector<ir::Value*> vals(values.begin() + static_cast<long>(k),
                                     values.begin() + static_cast<long>(k + specs[c].size()));
        size_t j = 0;
        *ref = rebuild(skeleton, vals, sp, j);
        k += specs[c].size();
      }
    };
    auto bindArgs = [&](int r) { bindValues(op.region(static_cast<size_t>(r)).block().args()); };
    // cond region
    b_.set_insertion_end(op.region(0).block());
    bindArgs(0);
    {
      TV stop = orTV(f.st.retFlag, f.st.brk, s.loc);
      TV p;
      if (isStaticFalse(stop)) p = condition(cond(counter), s.loc);
      else p = condValue(notTV(stop, s.loc), [&] { return condition(cond(counter), s.loc); },
                         [] { return staticBool(false); }, s.loc);
      ir::Value* pv = materialize(p, s.loc, DType::Bool);
      setLoc(s.loc);
      b_.yield({pv});
    }
    restore(s0);
    counter = counter0;
    // body region
    b_.set_insertion_end(op.region(1).block());
    bindArgs(1);
    // The body runs only where the cond region found no return or break: they are false
    // there (a loop over a list inside it unrolls without a data-dependent flag).
    f.st.retFlag = f.st.brk = f.st.cont = staticBool(false);
    // The body may not run (its condition may be false at once): an error eager mode raises
    // in it fails there at run time (traceMaybe), and the body then yields placeholders.
    const bool dead = traceMaybe([&] { body(counter); });
    f.st.cont = staticBool(false);
    bool retry = false;
    std::vector<ir::Value*> ys;
    if (dead) {
      setLoc(s.loc);
      for (const LeafSpec& sp : flat) ys.push_back(placeholder(sp.type));
    }
    // Only numbers change at run time: a string, a list's length, a record's fields stay as
    // they were (eagerly they would change on every iteration, which one trace cannot show).
    for (size_t i = 0; !dead && i < s0.slots.size(); ++i) {
      const TV& before = s0.slots[i];
      const TV& after = f.st.slots[i];
      if (!before.defined() || declared.count(static_cast<int>(i)) || sameSkeleton(before, after)) continue;
      std::string name = fr().slotNames[i];
      Loc at = s.loc;
      for (const Carried& c : carried)
        if (c.kind == Carried::Slot && static_cast<size_t>(c.slot) == i) at = carriedLoc(c, s);
      TV da, db;
      differingPart(before, after, name, da, db);
      if (const char* words = comprehensionWords(name))  // its loop is longer than graph fns unroll, or of run-time length
        fail(at, fmt::format("a {} in a graph fn unrolls its loop, which must run a number of times "
                             "known when tracing, at most {}: use operations on whole tensors (x * 2.0 of every row "
                             "at once) or a loop that changes tensors",
                             words, kMaxFullUnroll));
      fail(at, fmt::format("'{}' changes from {} to {} in a loop that runs at run time; in a graph fn only tensors "
                           "and numbers can change there (a list keeps its length, a string its text): collect "
                           "the values in a tensor, or loop a number of times known when tracing",
                           name, valueText(da), valueText(db)));
    }
    // What the body leaves, against the carried types.
    for (size_t c = 0; !dead && c < carried.size(); ++c) {
      TV* ref = carried[c].ref(f, counter);
      if (carried[c].kind == Carried::Ret && !ref->defined()) {
        for (auto& sp : specs[c]) ys.push_back(placeholder(sp.type));
        continue;
      }
      std::vector<TV> ls;
      leavesOf(*ref, ls);
      if (carried[c].kind == Carried::Ret && specs[c].empty()) {
        // The first return seen: its structure (a tensor, a tuple, ...) is carried from now on.
        if (isStaticNone(*ref)) {  // a bare `return`: nothing to carry
          retNone = true;
          continue;
        }
        if (ls.empty()) fail(s.loc, "only tensors and containers of them can be returned from inside a data-dependent loop");
        retSkeleton = *ref;
        for (auto& l : ls) specs[c].push_back(leafSpec(l));
        unsettled = kReturnValue;
        retry = true;
        continue;
      }
      if (ls.size() != specs[c].size()) fail(carriedLoc(carried[c], s), "a carried value changes its structure in the loop");
      for (size_t i = 0; i < ls.size(); ++i) {
        LeafSpec& sp = specs[c][i];
        TensorType t = typeOf(ls[i]);
        bool w = weakOf(ls[i]);
        if (t.dtype != sp.type.dtype || t.rank() != sp.type.rank()) {
          // A weak value holds a kind of number (bool < integer < float) rather than a dtype.
          // The carried type takes the body's when that keeps the value: a weak start takes
          // a strong dtype of its kind or above (0 carried as i32 or f32), a weak start
          // becomes a weak of a higher kind (0 then x + 0.5: a float, as eagerly). A weak
          // value of a lower kind is cast to the carried dtype (1 into an f32); one of a
          // higher kind into a strong dtype (0.5 into an i64) is a change of dtype.
          if (t.rank() == sp.type.rank() && sp.weak && (!w || numberKind(t.dtype) > numberKind(sp.type.dtype)) &&
              numberKind(t.dtype) >= numberKind(sp.type.dtype)) {
            const LeafSpec now = leafSpec(ls[i]);  // its dtype and weakness (a weak float: f64)
            sp.type.dtype = now.type.dtype;
            sp.weak = now.weak;
            unsettled = fmt::format("'{}' (now {})", carriedName(carried[c]), t.str());
            retry = true;
            continue;
          }
          if (!(w && t.rank() == sp.type.rank() && numberKind(t.dtype) <= numberKind(sp.type.dtype))) {
            std::string name = carriedName(carried[c]);
            fail(carriedLoc(carried[c], s),
                 fmt::format("'{}' changes from {} to {} in the loop; a carried value must keep its dtype and rank",
                             name, sp.type.str(), t.str()));
          }
        }
        // A dim that changes in the body becomes a fresh symbol (no other value has it, so
        // nothing assumes its size): a loop-carried tensor may shrink or grow.
        sp.widened.resize(t.dims.size(), false);
        for (size_t d = 0; d < t.dims.size(); ++d)
          if (!(t.dims[d] == sp.type.dims[d]) && !sp.widened[d]) {
            sp.type.dims[d] = Dim::symbolic(f_.fresh_sym());
            sp.widened[d] = true;
            unsettled = fmt::format("'{}' (now {})", carriedName(carried[c]), t.str());
            retry = true;
          }
        if (!retry) ys.push_back(materialize(ls[i], s.loc, sp.type.dtype));
      }
    }
    if (retry) {
      size_t at = outer.index_of(&op);
      unfinished.done();
      for (size_t r = 0; r < 2; ++r) op.region(r).block().drop_all_references();
      outer.erase(at);
      restore(s0);
      counter = counter0;
      b_.set_insertion(outer, at);
      continue;
    }
    setLoc(s.loc);
    b_.yield(ys);
    unfinished.done();
    restore(s0);
    counter = counter0;
    b_.set_insertion(outer, outer.index_of(&op) + 1);
    bindValues(op.results());
    f.st.brk = staticBool(false);
    f.st.cont = staticBool(false);
    return;
  }
}

auto Tracer::carriedName(const Carried& c) -> std::string {
  switch (c.kind) {
    case Carried::Slot: return fr().slotNames[static_cast<size_t>(c.slot)];
    case Carried::Ret: return kReturnValue;
    default: return "a loop flag";
  }
}

auto Tracer::carriedLoc(const Carried& c, const Stmt& s) -> Loc {
  if (c.kind == Carried::Slot) {
    Loc l = fr().assignLocs[static_cast<size_t>(c.slot)];
    if (l.valid()) return l;
  }
  return s.loc;
}

auto Tracer::afterIteration() -> After {
  auto& st = fr().st;
  st.cont = staticBool(false);
  if (isStaticTrue(st.brk)) {
    st.brk = staticBool(false);
    return After::Stop;
  }
  if (isStaticTrue(st.retFlag)) return After::Stop;
  if (st.brk.isDyn() || st.retFlag.isDyn()) return After::Dynamic;
  return After::Next;
}

// Undoes what a condition evaluated only to see whether it is known at trace time left in
// the builder's block at [start, the insertion point) that has an effect or may fail — a
// random draw, a print, a bounds check — with the ops computed from those: the loop
// evaluates the condition itself, and eager mode draws or prints once per test, not once more.
static void discardProbe(ir::Builder& b, size_t start) {
  ir::Block& blk = b.block();
  size_t end = b.pos();
  std::unordered_set<const ir::Op*> dead;
  for (size_t i = start; i < end; ++i) {
    const ir::Op& op = blk.op(i);
    bool fromDead = std::any_of(op.operands().begin(), op.operands().end(),
                                [&](const ir::Value* v) { return v->def() && dead.count(v->def()); });
    if (fromDead || !ir::is_removable(op)) dead.insert(&op);
  }
  auto inDead = [&](const ir::Op* op) {  // the op, or one whose region holds it
    for (; op; op = op->parent_op())
      if (dead.count(op)) return true;
    return false;
  };
  for (const ir::Op* op : dead)  // (a result read outside them: kept, as before)
    for (const ir::Value* r : op->results())
      for (const ir::Use& u : r->uses())
        if (!inDead(u.op)) return;
  for (size_t i = end; i-- > start;)
    if (dead.count(&blk.op(i))) {
      blk.erase(i);
      --end;
    }
  b.set_insertion(blk, end);
}

auto Tracer::whileLoop(const Stmt& s) -> void {
  const Expr& ce = *s.exprs[0];
  auto cond = [&](TV&) { return eval(ce); };
  auto body = [&](TV&) { execBody(*s.body); };
  if (!forced_.count(&s)) {
    for (int iter = 0;; ++iter) {
      const ir::Block* blk = &b_.block();
      const size_t start = b_.pos(), hoisted = hoistedConstants_;
      TV c = condition(eval(ce), ce.loc);
      if (!c.isStatic()) {
        // (constants hoisted meanwhile to the entry block's top moved the probe's ops there)
        size_t from = start + (blk == &f_.entry() ? hoistedConstants_ - hoisted : 0);
        if (&b_.block() == blk && b_.pos() >= from) discardProbe(b_, from);
        break;
      }
      if (!c.sv.asBool()) return;
      if (iter >= unrollLimit(s)) {
        forced_.insert(&s);
        throw Restart{};
      }
      fr().st.cont = staticBool(false);
      execBody(*s.body);
      After a = afterIteration();
      if (a == After::Stop) return;
      if (a == After::Dynamic) break;
    }
  }
  dynamicLoop(s, cond, body, TV());
}

auto Tracer::forLoop(const Stmt& s) -> void {
  TV it = eval(*s.exprs[0]);
  const Loc& loc = s.loc;
  auto bindVar = [&](const TV& v) { bindPattern(s.pattern, v, s.pattern.loc); };  // eager mode's position: the pattern
  // A range: unroll when short and static, else a while over a hidden counter.
  if (it.k == TV::Range || (it.isStatic() && it.sv.tag() == Tag::Range)) {
    TV start, stop, step;
    if (it.k == TV::Range) start = it.items[0], stop = it.items[1], step = it.items[2];
    else {
      auto* r = it.sv.as<RangeObj>();
      start = TV::of(Value::i64(r->start, true)), stop = TV::of(Value::i64(r->stop, true)), step = TV::of(Value::i64(r->step, true));
      if (r->length() > unrollLimit(s)) forced_.insert(&s);  // a while loop for its length (traceGraphFn)
      if (!forced_.count(&s)) {
        for (int64_t i = 0; i < r->length(); ++i) {
          bindVar(TV::of(Value::i64(r->at(i), true)));
          execBody(*s.body);
          After a = afterIteration();
          if (a == After::Stop) return;
          if (a == After::Dynamic) {
            start = TV::of(Value::i64(r->at(i + 1), true));
            break;
          }
        }
        if (!fr().st.brk.isDyn() && !fr().st.retFlag.isDyn()) return;
      }
    }
    TV counter = TV::dyn(materialize(start, loc, DType::I64), true);
    // A range's numbers are i64 whatever the bounds' integer dtypes (eager's RangeObj).
    for (TV* b : {&stop, &step})
      if (b->isDyn()) *b = TV::dyn(materialize(*b, loc, DType::I64), true);
    // The direction: known at trace time, or chosen at run time by the step's sign.
    std::optional<bool> upStatic;
    if (step.isStatic()) upStatic = step.sv.asInt() > 0;
    auto directed = [&](rt::BinaryOp whenUp, rt::BinaryOp whenDown, const TV& k, const TV& bound, const TV& boundDown) {
      if (upStatic) return binop(*upStatic ? whenUp : whenDown, k, *upStatic ? bound : boundDown, loc);
      TV up = binop(rt::BinaryOp::Gt, step, TV::of(Value::i64(0, true)), loc);
      TV a = binop(whenUp, k, bound, loc), b = binop(whenDown, k, boundDown, loc);
      ir::Value *uv = materialize(up, loc, DType::Bool), *av = materialize(a, loc, DType::Bool),
                *bv = materialize(b, loc, DType::Bool);
      setLoc(loc);
      return TV::dyn(b_.select(uv, av, bv));
    };
    auto cond = [&](TV& k) { return directed(rt::BinaryOp::Lt, rt::BinaryOp::Gt, k, stop, stop); };
    // The next counter, k + step, unless that would pass i64's limit: then the loop is
    // over (the stop is within i64), and the counter becomes the stop instead of wrapping.
    TV lastUp, lastDown;
    if (upStatic) {
      int64_t by = step.sv.asInt();
      lastUp = lastDown = TV::of(Value::i64(*upStatic ? INT64_MAX - by : INT64_MIN - by, true));
    } else {  // integers wrap in the IR; the select keeps the meaningful one
      lastUp = binop(rt::BinaryOp::Sub, TV::of(Value::i64(INT64_MAX, true)), step, loc);
      lastDown = binop(rt::BinaryOp::Sub, TV::of(Value::i64(INT64_MIN, true)), step, loc);
    }
    auto body = [&](TV& k) {
      bindVar(k);
      execBody(*s.body);
      TV next = binop(rt::BinaryOp::Add, k, step, loc);
      TV past = directed(rt::BinaryOp::Gt, rt::BinaryOp::Lt, k, lastUp, lastDown);
      DType d = typeOf(next).dtype;
      ir::Value *pv = materialize(past, loc, DType::Bool), *nv = materialize(next, loc, d), *sv = materialize(stop, loc, d);
      setLoc(loc);
      k = TV::dyn(b_.select(pv, sv, nv), true);
    };
    dynamicLoop(s, cond, body, counter);
    return;
  }
  TV x = expandIterable(it, false);  // a string's characters (code points), a dict's keys
  if (x.k == TV::Seq || x.k == TV::Rec) {
    for (auto& item : x.items) {
      bindVar(item);
      execBody(*s.body);
      After a = afterIteration();
      if (a == After::Stop) return;
      if (a == After::Dynamic) fail(loc, "a data-dependent break or return inside a loop over a list is not supported in graph fns yet");
    }
    return;
  }
  if (isNumeric(it)) {
    TensorType t = typeOf(it);
    if (t.rank() < 1) failEager(s.exprs[0]->loc, "cannot iterate over a scalar");
    TV n = t.dims[0].is_known() ? TV::of(Value::i64(t.dims[0].size, true)) : TV::dyn(dimOf(it, 0, loc), true);
    int64_t first = 0;  // where the loop goes on at run time
    if (n.isStatic() && n.sv.rawInt() > unrollLimit(s)) forced_.insert(&s);
    if (n.isStatic() && !forced_.count(&s)) {
      bool dynamic = false;
      for (int64_t i = 0; i < n.sv.rawInt() && !dynamic; ++i) {
        bindVar(indexInt(it, TV::of(Value::i64(i, true)), loc));
        execBody(*s.body);
        After a = afterIteration();
        if (a == After::Stop) return;
        // A data-dependent break or return: the remaining elements in a while loop,
        // which stops on the flag.
        if (a == After::Dynamic) dynamic = true, first = i + 1;
      }
      if (!dynamic) return;
    }
    TV counter = TV::dyn(materialize(TV::of(Value::i64(first, true)), loc), true);
    auto cond = [&](TV& k) { return binop(rt::BinaryOp::Lt, k, n, loc); };
    auto body = [&](TV& k) {
      bindVar(indexInt(it, k, loc));
      execBody(*s.body);
      k = binop(rt::BinaryOp::Add, k, TV::of(Value::i64(1, true)), loc);
    };
    dynamicLoop(s, cond, body, counter);
    return;
  }
  fail(s.exprs[0]->loc, fmt::format("cannot iterate over a {} in a graph fn", describe(it)));
}

}  // namespace tdl::vm::trace
