// Statements, and the tracer's errors and locations. (graph/Tracer.h)
#include "graph/Tracer.h"

namespace tdl::vm::trace {

auto Tracer::run(const ClosureObj& c, std::vector<TV> args, Loc loc) -> TV {
  TV fnv;
  fnv.k = TV::Fn;
  fnv.fn = c.proto->decl;
  for (auto& v : c.captures) fnv.items.push_back(TV::of(v));
  fnv.defaults = c.defaults;
  std::vector<std::string> kw;
  // Eager mode's errors fail where the code runs, also in the graph fn's own body: the
  // prints before them happen, and the error of the path a call takes is the one raised.
  // Where every path fails, the result (never seen) is none.
  TV result = TV::of(Value());
  if (traceMaybe([&] { result = inlineCall(fnv, args, kw, loc, c.proto->name); })) out_.alwaysFails = lastDeferred_;
  return result;
}

auto Tracer::fail(const Loc& loc, const std::string& msg, bool deferrable) -> void {
  TraceError e(loc, msg);
  e.deferrable = deferrable;
  for (size_t k = frames_.size(); k-- > 1;) {
    const Loc& at = frames_[k]->callLoc;
    std::string where = at.file < vm_.sources().size()
                            ? fmt::format("{}:{}:{}", vm_.sources().file(at.file).path, at.line, at.col)
                            : std::string("?");
    e.trace.push_back(fmt::format("in fn {} at {}", frames_[k]->name, where));
    e.chain.emplace_back(frames_[k]->name, at);
  }
  throw e;
}

auto Tracer::traceMaybe(const std::function<void()>& f) -> bool {
  ir::Block& block = b_.block();
  const size_t depth = frames_.size(), taping = recording_.size();
  const TV* rhs = assignRhs_;
  try {
    f();
    return false;
  } catch (const Diverged&) {
    // every path below already ends in its assert
  } catch (const TraceError& e) {
    if (!e.deferrable) throw;
    const Loc& l = e.loc;
    lastDeferred_ = l.file < vm_.sources().size()
                        ? fmt::format("{} (at {}:{}:{})", e.what(), vm_.sources().file(l.file).path, l.line, l.col)
                        : std::string(e.what());
    b_.set_insertion_end(block);
    Loc at = e.loc;
    if (!e.chain.empty()) {
      at.inst = ++instances_;
      out_.chains.emplace(locKey(at), e.chain);
    }
    b_.set_loc(at);
    std::vector<ir::Value*> holes;
    std::string format = sizedFormat(e.what(), holes);
    // An assert without values throws its message as it is (Exec.cpp): the text itself, not
    // the format with its braces doubled.
    b_.assert_true(b_.constant(rt::Tensor::scalar(false)), holes.empty() ? std::string(e.what()) : format, holes);
  }
  // (frames, tapes and assignment targets unwind themselves; checked here)
  if (frames_.size() != depth || recording_.size() != taping) throw InternalError("graph fn trace: state not unwound");
  assignRhs_ = rhs;
  b_.set_insertion_end(block);
  return true;
}

auto Tracer::sizedFormat(const std::string& message, std::vector<ir::Value*>& holes) -> std::string {
  const std::string msg = escapeBraces(message);
  std::string format;
  int brackets = 0;
  auto word = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; };
  for (size_t k = 0; k < msg.size(); ++k) {
    brackets += msg[k] == '[' ? 1 : msg[k] == ']' && brackets > 0 ? -1 : 0;
    // A symbol: `?` and digits anywhere, or a name inside a shape's brackets.
    size_t j = k;
    if (msg[k] == '?') {
      for (j = k + 1; j < msg.size() && std::isdigit(static_cast<unsigned char>(msg[j]));) ++j;
      if (j == k + 1) j = k;
    } else if (brackets > 0 && (k == 0 || !word(msg[k - 1])) && word(msg[k]) &&
               !std::isdigit(static_cast<unsigned char>(msg[k]))) {
      for (j = k + 1; j < msg.size() && word(msg[j]);) ++j;
    }
    ir::Value* size = nullptr;
    if (j > k)
      for (ir::Value* p : f_.params())
        for (size_t d = 0; d < p->type.dims.size() && !size; ++d)
          if (p->type.dims[d].sym == std::string_view(msg).substr(k, j - k)) size = b_.dim(p, static_cast<int64_t>(d));
    if (!size) {
      format += msg[k];
      continue;
    }
    format += "{}";
    holes.push_back(size);
    k = j - 1;
  }
  return format;
}

auto Tracer::setLoc(const Loc& l) -> void {
  if (frames_.size() <= 1) {
    b_.set_loc(l);
    return;
  }
  Loc at = l;
  at.inst = fr().inst;
  b_.set_loc(at);
  CallChain chain;
  for (size_t k = frames_.size(); k-- > 1;) chain.emplace_back(frames_[k]->name, frames_[k]->callLoc);
  out_.chains.emplace(locKey(at), std::move(chain));
}

auto Tracer::stops() -> bool {
  auto& s = fr().st;
  return isStaticTrue(s.retFlag) || isStaticTrue(s.brk) || isStaticTrue(s.cont);
}

auto Tracer::flagsDynamic() -> bool {
  auto& s = fr().st;
  return s.retFlag.isDyn() || s.brk.isDyn() || s.cont.isDyn();
}

auto Tracer::anyFlag(const Loc& loc) -> TV {
  auto& s = fr().st;
  return orTV(orTV(s.retFlag, s.brk, loc), s.cont, loc);
}

auto Tracer::execBlock(const std::vector<StmtPtr>& stmts, size_t from) -> void {
  for (size_t i = from; i < stmts.size(); ++i) {
    exec(*stmts[i]);
    if (stops()) return;
    if (flagsDynamic() && i + 1 < stmts.size()) {
      const Loc& loc = stmts[i + 1]->loc;
      TV go = notTV(anyFlag(loc), loc);
      // The rest runs where no flag is set: it sees them false (so a block inside it, a
      // `with` body, needs no guard of its own). Where only the return flag is known at run
      // time, the path that skips the rest has returned: so the fn's end is not reached there.
      const bool onlyReturned = isStaticFalse(fr().st.brk) && isStaticFalse(fr().st.cont);
      emitCond(go,
               [&] {
                 fr().st.retFlag = fr().st.brk = fr().st.cont = staticBool(false);
                 execBlock(stmts, i + 1);
               },
               [&] {
                 if (onlyReturned) fr().st.retFlag = staticBool(true);
               },
               loc);
      return;
    }
  }
}

auto Tracer::execBody(const Stmt& s) -> void {
  if (s.kind == StmtKind::Block) execBlock(s.stmts, 0);
  else exec(s);
}

auto Tracer::assignSlot(int slot, TV v, const Loc& loc, const std::string& name) -> void {
  auto& f = fr();
  if (slot < 0 || static_cast<size_t>(slot) >= f.st.slots.size()) fail(loc, "internal: bad local slot");
  f.st.slots[static_cast<size_t>(slot)] = std::move(v);
  if (!name.empty()) f.slotNames[static_cast<size_t>(slot)] = name;
  f.assignLocs[static_cast<size_t>(slot)] = loc;
}

auto Tracer::unpack(const TV& v, size_t n, const Loc& loc) -> std::vector<TV> {
  // Eager mode's messages (vm/ValueOps.cpp unpackValues).
  TV x = expandIterable(v, true);  // characters, a range's numbers, a dict's keys: as eagerly
  if (x.k == TV::Seq) {
    if (x.items.size() != n)
      failEager(loc, fmt::format("cannot destructure a {} of {} elements into {} names", tagName(x.seqTag), x.items.size(), n));
    return x.items;
  }
  if (isNumeric(v)) {
    TensorType t = typeOf(v);
    if (t.rank() < 1) failEager(loc, fmt::format("cannot destructure {} into {} names", t.str(), n));
    if (t.dims[0].is_known() && t.dims[0].size != static_cast<int64_t>(n))
      failEager(loc, fmt::format("cannot destructure a tensor of {} elements into {} names", t.dims[0].size, n));
    if (!t.dims[0].is_known())
      fail(loc, fmt::format("cannot destructure {} into {} names in a graph fn: its first axis must have a size "
                            "known when tracing",
                            t.str(), n));
    std::vector<TV> r;
    for (size_t i = 0; i < n; ++i) r.push_back(indexInt(v, TV::of(Value::i64(static_cast<int64_t>(i), true)), loc));
    return r;
  }
  failEager(loc, fmt::format("cannot destructure {} into {} names", describe(v), n));
}

auto Tracer::bindPattern(const Pattern& p, const TV& v, const Loc& loc) -> void {
  if (p.kind == Pattern::Name) {
    if (p.global) fail(loc, "a graph fn cannot bind a top-level name");
    assignSlot(p.slot, v, p.loc, p.name);
    return;
  }
  std::vector<TV> items = unpack(v, p.elems.size(), loc);
  for (size_t i = 0; i < items.size(); ++i) bindPattern(p.elems[i], items[i], p.elems[i].loc);  // eager's position
}

auto Tracer::exec(const Stmt& s) -> void {
  switch (s.kind) {
    case StmtKind::Let: {
      TV v = eval(*s.exprs[0]);
      if (s.type) {  // `let x: T = e`, checked (and converted) as eagerly
        const Loc& at = s.exprs[0]->loc;
        TraceDims dims;
        TV before = v;
        std::string head = fmt::format("value must be {}, got ", s.type->str());
        if (!matchTV(v, *s.type, dims, at)) failEager(at, head + structureTextTV(before));
        checkDims(dims, head, before, at);
      }
      bindPattern(s.pattern, v, s.pattern.loc);  // eager mode's position: the pattern
      return;
    }
    case StmtKind::Assign: assign(s); return;
    case StmtKind::ExprStmt: eval(*s.exprs[0]); return;
    case StmtKind::Block: execBlock(s.stmts, 0); return;
    case StmtKind::If: {
      TV c = condition(eval(*s.exprs[0]), s.exprs[0]->loc);
      if (c.isStatic()) {
        if (c.sv.asBool()) execBody(*s.body);
        else if (s.orelse) execBody(*s.orelse);
        return;
      }
      emitCond(c, [&] { execBody(*s.body); }, [&] { if (s.orelse) execBody(*s.orelse); }, s.loc);
      return;
    }
    case StmtKind::While: whileLoop(s); return;
    case StmtKind::For: forLoop(s); return;
    case StmtKind::Return: {
      TV v = s.exprs.empty() ? TV::of(Value()) : eval(*s.exprs[0]);
      if (fr().decl) v = checkReturn(*fr().decl, std::move(v), fr().name, s.loc);
      fr().st.ret = v;
      fr().st.retFlag = staticBool(true);
      return;
    }
    case StmtKind::Break: fr().st.brk = staticBool(true); return;
    case StmtKind::Continue: fr().st.cont = staticBool(true); return;
    case StmtKind::With: withTape(s); return;
    case StmtKind::Fn: {
      // A nested fn is a local bound where it stands (as a lambda is; calls inline it).
      const FnDecl& d = *s.fn;
      TV f;
      f.k = TV::Fn;
      f.fn = &d;
      for (const Ref& r : d.captures) {
        switch (r.kind) {
          case RefKind::Local: f.items.push_back(fr().st.slots.at(static_cast<size_t>(r.index))); break;
          case RefKind::Capture: f.items.push_back(fr().captures.at(static_cast<size_t>(r.index))); break;
          case RefKind::Self: fail(d.loc, fmt::format("recursion is not supported in graph fn '{}'", d.name));
          default: fail(d.loc, "this fn cannot be traced in a graph fn");
        }
      }
      // Defaults are evaluated where the fn is declared, in the enclosing scope (as the VM does).
      for (auto& p : d.params) f.traceDefaults.push_back(p.deflt ? eval(*p.deflt) : TV());
      if (d.globalSlot < 0 || static_cast<size_t>(d.globalSlot) >= fr().st.slots.size())
        fail(s.loc, "internal: a nested fn without a slot");
      fr().st.slots[static_cast<size_t>(d.globalSlot)] = f;
      return;
    }
    case StmtKind::Import: fail(s.loc, "import inside a graph fn");
    case StmtKind::TypeAlias: fail(s.loc, "'type' is only allowed at the top level");
  }
}

auto Tracer::assign(const Stmt& s) -> void {
  const Expr& target = *s.exprs[0];
  TV rhs;
  auto compound = [&](const TV& cur) -> TV {
    rhs = eval(*s.exprs[1]);
    assignRhs_ = &rhs;
    if (s.assignOp == '=') return rhs;
    BinOp op = compoundBinOp(s.assignOp);
    return binop(rtBinary(op), cur, rhs, s.loc, binOpcode(op));
  };
  if (target.kind == ExprKind::Name) {
    if (target.ref.kind != RefKind::Local) fail(target.loc, fmt::format("cannot assign to '{}' in a graph fn", target.str));
    TV cur = s.assignOp == '=' ? TV() : fr().st.slots.at(static_cast<size_t>(target.ref.index));
    assignSlot(target.ref.index, compound(cur), s.loc, target.str);
    return;
  }
  // An element or field of a local, at any depth (`l[1][0] = v`, `d["k"][1] += v`, `q.w[0] = v`):
  // each level's new value is its old one with the part below replaced, up to the local.
  const Expr* root = &target;
  while (root->kind == ExprKind::Field || root->kind == ExprKind::Index) root = root->kids[0].get();
  if (root->kind != ExprKind::Name || root->ref.kind != RefKind::Local)
    fail(target.loc, "only assignments to a local variable, its elements or its fields are supported in graph fns");
  TV cur = fr().st.slots.at(static_cast<size_t>(root->ref.index));
  // Each subscript of the target is traced once, also where the update reads the part too
  // (x[i] op= v: the subscripts, the read, v, the store, eager's and Python's order; and
  // x[i, none] = v, newAxesUpdate).
  std::map<const Expr*, std::optional<TV>> memo;
  for (const Expr* e = &target; e != root; e = e->kids[0].get())
    if (e->kind == ExprKind::Index)
      for (const Subscript& sub : e->subs)
        for (const auto* p : {&sub.index, &sub.lo, &sub.hi, &sub.step})
          if (*p) memo[p->get()];
  // An assignment inside a fn the value calls (inlined) has its own, and gives these back.
  struct Restore {
    Tracer& t;
    const Expr* target;
    std::map<const Expr*, std::optional<TV>>* memo;
    ~Restore() { t.assignTarget_ = target, t.subMemo_ = memo; }
  } restore{*this, assignTarget_, subMemo_};
  assignTarget_ = &target;
  subMemo_ = memo.empty() ? nullptr : &memo;
  TV changed = replacedPart(cur, target, compound, s.assignOp != '=', s.loc);
  assignSlot(root->ref.index, changed, s.loc, root->str);
}

// `whole` (the value of place e's base chain) with the part that e names replaced by f(its old
// value); the old value is looked up only where f needs it (a compound assignment) or where
// a deeper part is replaced.
auto Tracer::replacedPart(const TV& whole, const Expr& e, const std::function<TV(const TV&)>& f, bool needOld,
                          const Loc& loc) -> TV {
  if (e.kind == ExprKind::Name) return f(whole);
  const Expr& base = *e.kids[0];
  auto here = [&](const TV& b) -> TV {
    if (e.kind == ExprKind::Field) {
      TV r = expandStatic(b);
      if (r.k != TV::Rec) failEager(e.loc, fmt::format("a {} has no field '{}'", describe(b), e.str));
      auto it = std::find(r.names->begin(), r.names->end(), e.str);
      if (it == r.names->end())
        failEager(e.loc, fmt::format("record has no field '{}'{}", e.str, didYouMean(e.str, *r.names)));
      size_t k = static_cast<size_t>(it - r.names->begin());
      r.items[k] = f(r.items[k]);
      return r;
    }
    // NumPy's `...`: whole slices for the axes the others leave, while this runs.
    std::optional<WithoutEllipsis> ellipsis;
    if (hasEllipsis(e)) {
      if (!isNumeric(b)) failEager(loc, ellipsisTypeError(describe(b)));
      ellipsis.emplace(e, ellipsisFill(e, typeOf(b).rank(), loc));
    }
    // x[k] = v on a tensor: k evaluated once, after v; x[k] op= v: k, the read, v, the store
    // (eager mode's order; assign() has k traced once).
    if (isNumeric(b) && std::any_of(e.subs.begin(), e.subs.end(), [](const Subscript& q) {
          return !q.isSlice && q.index->kind == ExprKind::None;
        }))
      return newAxesUpdate(b, e, f, needOld, loc);
    const bool one = e.subs.size() == 1 && !e.subs[0].isSlice && isNumeric(b);
    TV value, k;
    if (one && !needOld) value = f(TV());
    if (one) {
      k = eval(*e.subs[0].index);
      if (isNumeric(k) && typeOf(k).dtype == DType::Bool && typeOf(k).rank() > 0) {  // x[mask] = v, x[mask] op= v
        if (&e != assignTarget_)  // y[m][0] = v: a part of the selection, whose size only the run knows
          fail(loc, "assigning into a part of a boolean mask's selection (x[mask][i] = v) is not supported in graph "
                    "fns: index first, or use where(mask, v, x)");
        if (!needOld) return maskedUpdateTV(b, k, value, value, loc);
        assignRhs_ = nullptr;
        value = f(b);  // x op v over all of x, kept where the mask holds
        return maskedUpdateTV(b, k, assignRhs_ ? *assignRhs_ : value, value, loc);
      }
    }
    if (!one || needOld) value = f(needOld ? indexTV(b, e, e.loc, one ? &k : nullptr) : TV());  // x[i, j] = v
    return updateTV(b, e, value, loc, one && !needOld ? &k : nullptr);
  };
  return replacedPart(whole, base, here, true, loc);
}

// NumPy's x[..., none, ...] = v (and op=), as eager mode's assignWithNewAxes: the subscripts
// without the new axes select the part (lent to the expression for the read and the store,
// and given back; assign() has each traced once); the value (an op='s read has the new axes)
// must broadcast to the part's shape with the new axes put in, and is stored as that.
auto Tracer::newAxesUpdate(const TV& b, const Expr& e, const std::function<TV(const TV&)>& f, bool needOld, const Loc& loc)
    -> TV {
  if (&e != assignTarget_)
    fail(loc, "assigning into a part of an indexing with `none` (x[:, none][0] = v) is not supported: index without `none`");
  WithoutNewAxes lend(e);
  const std::vector<int64_t>& at = lend.at;
  auto& subs = lend.subs;
  TV value;
  if (!needOld) value = f(TV());  // x[i, none] = v: v first, as eagerly (Python's order)
  TV part = subs.empty() ? b : indexTV(b, e, loc);
  std::vector<Dim> dims = typeOf(part).dims, wide = dims;
  for (int64_t a : at) wide.insert(wide.begin() + a, Dim::known(1));
  TV old;
  if (needOld) {
    ir::Value* p = materialize(part, loc);
    setLoc(loc);
    old = TV::dyn(guarded(loc, [&] { return b_.reshape(p, wide); }));
  }
  if (needOld) value = f(old);
  ir::Value* v = storedValue(value, typeOf(b).dtype, loc);
  setLoc(loc);
  ir::Value* placed = guarded(loc, [&] { return b_.reshape(b_.broadcast_to(v, wide), dims); });
  if (subs.empty()) return TV::dyn(placed);
  return updateTV(b, e, TV::dyn(placed), loc);
}

}  // namespace tdl::vm::trace
