// Calls (inlined), and annotations of graph fn parameters and results (SPEC §3). (graph/Tracer.h)
#include "graph/Tracer.h"

namespace tdl::vm::trace {

auto Tracer::call(const Expr& e) -> TV {
  const Expr& ce = *e.kids[0];
  std::vector<TV> args;
  std::vector<std::string> kw;
  size_t nargs = e.kids.size() - 1;
  TV callee;
  bool method = false;
  if (ce.kind == ExprKind::Field && isListMutator(ce.str)) {
    const Expr& place = *ce.kids[0];
    const Expr* root = &place;
    while (root->kind == ExprKind::Index || root->kind == ExprKind::Field) root = root->kids[0].get();
    if (root->kind == ExprKind::Name && root->ref.kind != RefKind::Module) {
      if (root->ref.kind != RefKind::Local)
        fail(e.loc, fmt::format("{}() in a graph fn works on a local variable or its elements and fields (not on a "
                                "global)",
                                ce.str));
      for (size_t i = 0; i < nargs; ++i) {
        if (i < e.names.size() && !e.names[i].empty())
          failEager(e.kids[i + 1]->loc, fmt::format("{}() takes no keyword arguments", ce.str));
        args.push_back(eval(*e.kids[i + 1]));
      }
      // xs.append(v), or l[0].append(v), q.w.pop(): the list at that place changes, and with
      // it each container up to the local (as an assignment there would).
      TV r;
      TV whole = fr().st.slots.at(static_cast<size_t>(root->ref.index));
      TV changed = replacedPart(whole, place, [&](const TV& old) {
        TV xs = expandStatic(old);
        r = listMethodTV(xs, ce.str, args, e.loc);
        return xs;
      }, true, e.loc);
      assignSlot(root->ref.index, changed, e.loc, root->str);
      return r;
    }
    if (root->kind != ExprKind::Name) {  // f().pop(): a temporary changed where it stands (as eagerly)
      TV xs = expandStatic(eval(place));
      for (size_t i = 0; i < nargs; ++i) {
        if (i < e.names.size() && !e.names[i].empty())
          failEager(e.kids[i + 1]->loc, fmt::format("{}() takes no keyword arguments", ce.str));
        args.push_back(eval(*e.kids[i + 1]));
      }
      return listMethodTV(xs, ce.str, args, e.loc);
    }
  }
  if (ce.kind == ExprKind::Field && !(ce.kids[0]->kind == ExprKind::Name && ce.kids[0]->ref.kind == RefKind::Module)) {
    // x.f(args): a record field f holding a function, else f(x, args).
    TV self = eval(*ce.kids[0]);
    TV x = expandStatic(self);
    if (x.k == TV::Rec && x.seqTag == Tag::Dict) return dictMethodTV(x, ce.str, e);
    bool isField = false;
    if (x.k == TV::Rec)
      for (size_t i = 0; i < x.names->size(); ++i)
        if ((*x.names)[i] == ce.str) callee = x.items[i], isField = true;
    if (!isField && self.k == TV::Tape) {
      if (ce.str != "gradient") failEager(e.loc, fmt::format("tape has no field or method '{}'", ce.str));  // eager's
      for (size_t i = 0; i < nargs; ++i) {
        args.push_back(eval(*e.kids[i + 1]));
        const std::string& k = i < e.names.size() ? e.names[i] : std::string();
        if (!k.empty()) kw.push_back(k);
      }
      TV* target = nullptr;
      TV* sources = nullptr;
      size_t npos = args.size() - kw.size();
      if (npos > 0) target = &args[0];
      if (npos > 1) sources = &args[1];
      for (size_t k = 0; k < kw.size(); ++k) {
        if (kw[k] == "target") target = &args[npos + k];
        else if (kw[k] == "sources") sources = &args[npos + k];
        else failEager(e.loc, fmt::format("gradient has no parameter '{}'", kw[k]));
      }
      if (!target || !sources) failEager(e.loc, "gradient takes (target, sources)");
      return tapeGradient(tapes_.at(static_cast<size_t>(self.tape)), *target, *sources, e.loc);
    }
    if (!isField && self.isStatic() && self.sv.tag() == Tag::Native) {  // a loaded model's fn: m.predict(x)
      Value fv = self.sv.as<NativeObj>()->member(self.sv, ce.str);
      if (fv.tag() == Tag::Native && dynamic_cast<const OpaqueFnObj*>(fv.as<NativeObj>()))
        callee = TV::of(fv), isField = true;
    }
    if (!isField && self.isStatic() && self.sv.tag() == Tag::Native)
      fail(ce.loc, fmt::format("a {} cannot be called inside a graph fn (its '{}' runs outside the trace): call it "
                               "outside the graph fn and pass the result in",
                               self.sv.as<NativeObj>()->typeName(), ce.str));
    int strMethod = (self.isStatic() && self.sv.isStr()) || self.k == TV::Fmt ? strMethodId(ce.str) : -1;
    if (!isField && strMethod >= 0) {  // a string's own methods first, as eagerly
      callee = TV::of(Value::builtin(strMethod));
      args.push_back(self);
      method = true;
    } else if (!isField) {
      int mod = frames_.back()->decl ? frames_.back()->decl->module : 0;
      callee = lookupMethod(ce.str, mod, e.loc, self);
      args.push_back(self);
      method = true;
    }
  } else {
    callee = eval(ce);
  }
  (void)method;
  for (size_t i = 0; i < nargs; ++i) {
    args.push_back(eval(*e.kids[i + 1]));
    const std::string& k = i < e.names.size() ? e.names[i] : std::string();
    if (!k.empty()) kw.push_back(k);
    else if (!kw.empty()) failEager(e.kids[i + 1]->loc, "positional argument after a keyword argument");
  }
  return callTV(callee, args, kw, e.loc);
}

// The list methods (vm/ValueOps.h's rules): a list's items are known at trace time, so the
// list changes as the trace runs (a traced loop must keep its length: the merge checks).
auto Tracer::listMethodTV(TV& xs, const std::string& name, const std::vector<TV>& args, const Loc& loc) -> TV {
  try {
    if (xs.k == TV::Rec && xs.seqTag == Tag::Dict && name == "pop") {  // d.pop(key, default)
      if (args.empty() || args.size() > 2)
        throw rt::Error(fmt::format("a dict's pop() takes 1 to 2 arguments ({} given)", args.size()));
      if (!args[0].isStatic() || !args[0].sv.isStr())
        fail(loc, fmt::format("a dict key in a graph fn must be a string known at trace time, got {}", describe(args[0])));
      const std::string& key = args[0].sv.as<StrObj>()->s;
      std::vector<std::string> keys = *xs.names;
      auto it = std::find(keys.begin(), keys.end(), key);
      if (it == keys.end()) {
        if (args.size() == 2) return args[1];
        throw rt::Error(missingKeyText(keys, key));
      }
      size_t i = static_cast<size_t>(it - keys.begin());
      TV r = xs.items[i];
      xs.items.erase(xs.items.begin() + static_cast<long>(i));
      keys.erase(it);
      xs.names = std::make_shared<const std::vector<std::string>>(std::move(keys));
      return r;
    }
    bool numeric = xs.isDyn() || (xs.isStatic() && xs.sv.isNumeric());
    if (xs.k != TV::Seq || xs.seqTag != Tag::List) throw rt::Error(notAList(name, describe(xs), numeric));
    checkListMethod(name, static_cast<int>(args.size()));
    auto position = [&](const TV& i) {
      if (!i.isStatic() || !i.sv.isScalar() || rt::is_float(i.sv.dtype()) || i.sv.dtype() == DType::Bool)
        fail(loc, fmt::format("{}() index must be an integer known at trace time, got {}", name, describe(i)));
      return i.sv.asInt();
    };
    int64_t size = static_cast<int64_t>(xs.items.size());
    if (name == "append") {
      xs.items.push_back(args[0]);
      return TV::of(Value());
    }
    if (name == "extend") {
      TV ys = expandStatic(args[0]);
      if (ys.k == TV::Seq) {
        for (const TV& y : ys.items) xs.items.push_back(y);
      } else if (ys.isStatic() && ys.sv.tag() == Tag::Range) {
        for (int64_t i = 0, k = iterLength(ys.sv); i < k; ++i) xs.items.push_back(TV::of(iterItem(ys.sv, i)));
      } else if (isNumeric(ys) && typeOf(ys).rank() >= 1) {  // a tensor: its first axis
        const ir::Dim d = typeOf(ys).dims[0];
        if (!d.is_known())
          fail(loc, fmt::format("extend() in a graph fn needs a tensor whose first axis is known at trace time, got {}",
                                      describe(ys)));
        for (int64_t i = 0; i < d.size; ++i) xs.items.push_back(indexInt(ys, TV::of(Value::i64(i, true)), loc));
      } else {
        throw rt::Error(fmt::format("extend() needs a list, tuple, range or tensor, got {}", describe(ys)));
      }
      return TV::of(Value());
    }
    if (name == "insert") {
      xs.items.insert(xs.items.begin() + listPosition(name, position(args[0]), size), args[1]);
      return TV::of(Value());
    }
    int64_t i = listPosition(name, args.empty() ? size - 1 : position(args[0]), size);
    TV r = xs.items[static_cast<size_t>(i)];
    xs.items.erase(xs.items.begin() + i);
    return r;
  } catch (const rt::Error& err) {
    failEager(loc, err.what());
  }
}

// A dict's reading methods (eager's dictMethod): its keys are known at trace time.
auto Tracer::dictMethodTV(const TV& d, const std::string& name, const Expr& e) -> TV {
  std::vector<TV> args;
  std::vector<std::string> kw;
  for (size_t i = 0; i + 1 < e.kids.size(); ++i) {
    args.push_back(eval(*e.kids[i + 1]));
    const std::string& k = i < e.names.size() ? e.names[i] : std::string();
    if (!k.empty()) kw.push_back(k);
  }
  try {
    checkDictMethod(name, static_cast<int>(args.size()), &kw);
  } catch (const rt::Error& err) {
    failEager(e.loc, err.what());
  }
  if (name != "get") {  // keys, values, items
    std::vector<TV> out;
    for (size_t i = 0; i < d.items.size(); ++i) {
      TV key = TV::of(makeStr((*d.names)[i]));
      if (name == "keys") out.push_back(key);
      else if (name == "values") out.push_back(d.items[i]);
      else out.push_back(makeSeq(Tag::Tuple, {key, d.items[i]}));
    }
    return makeSeq(Tag::List, std::move(out));
  }
  if (!args[0].isStatic() || !args[0].sv.isStr())
    fail(e.loc, fmt::format("a dict key in a graph fn must be a string known at trace time, got {}", describe(args[0])));
  for (size_t i = 0; i < d.names->size(); ++i)
    if ((*d.names)[i] == args[0].sv.as<StrObj>()->s) return d.items[i];
  return args.size() > 1 ? args[1] : TV::of(Value());
}

auto Tracer::lookupMethod(const std::string& nm, int module, const Loc& loc, const TV& self) -> TV {
  auto& mods = vm_.modules();
  const Module& m = *mods.at(static_cast<size_t>(module));
  for (size_t i = m.globalNames.size(); i-- > 0;)
    if (m.globalNames[i] == nm) {
      const Value& g = vm_.globalValue(module, static_cast<int>(i));
      if (!g.isUndef()) return TV::of(g);
    }
  int id = builtinId(nm);
  if (id < 0 && self.isStatic() && self.sv.isStr()) failEager(loc, strNoMethod(nm));
  if (id < 0 && isNumeric(self))
    if (std::string m = tensorFieldCalled(nm); !m.empty()) failEager(loc, m);
  if (id < 0) failEager(loc, fmt::format("{} has no field or method '{}'", describe(self), nm));  // eager's words
  return TV::of(Value::builtin(id));
}

auto Tracer::callTV(const TV& callee, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc) -> TV {
  if (callee.k == TV::Fn) return inlineCall(callee, args, kw, loc, callee.fn->name.empty() ? "<lambda>" : callee.fn->name);
  if (callee.k == TV::GradFn) return callGradFn(callee, args, kw, loc);
  if (callee.isStatic()) {
    const Value& f = callee.sv;
    if (f.tag() == Tag::Builtin) return builtin(f.builtinId(), args, kw, loc);
    if (f.tag() == Tag::Native)
      if (auto* o = dynamic_cast<const OpaqueFnObj*>(f.as<NativeObj>())) return opaqueCall(*o, args, kw, loc);
    if (f.tag() == Tag::DType) {
      if (args.size() != 1) failEager(loc, "a dtype call takes one argument");
      return castTV(args[0], f.dtype(), loc);
    }
    if (GradFnParts gp; gradFnParts(f, gp)) {  // `let g = grad(loss)` at the top level, or an argument
      TV g;
      g.k = TV::GradFn;
      g.items.push_back(TV::of(gp.f));
      g.argnums = gp.argnums;
      g.tupleArgs = gp.tupleOfArgs;
      g.withValue = gp.withValue;
      return callGradFn(g, args, kw, loc);
    }
    if (f.tag() == Tag::Closure) {
      auto* c = f.as<ClosureObj>();
      TV fnv; fnv.k = TV::Fn; fnv.fn = c->proto->decl;
      for (auto& v : c->captures) fnv.items.push_back(TV::of(v));
      fnv.defaults = c->defaults;
      return inlineCall(fnv, args, kw, loc, c->proto->name);
    }
  }
  // Eager's words for a value that is not a function (vm/Interpreter.cpp).
  if (callee.isStatic()) failEager(loc, fmt::format("a {} is not callable", tagName(callee.sv.tag())));
  if (callee.isDyn()) failEager(loc, fmt::format("a {} is not callable", callee.dv->type.rank() == 0 ? "scalar" : "tensor"));
  if (callee.k == TV::Seq || callee.k == TV::Rec) failEager(loc, fmt::format("a {} is not callable", tagName(callee.seqTag)));
  fail(loc, fmt::format("a {} cannot be called in a graph fn", describe(callee)));
}

namespace {

std::string leafText(const OpaqueLeaf& l) {
  std::vector<std::string> dims;
  for (size_t d = 0; d < l.sizes.size(); ++d) dims.push_back(l.syms[d].empty() ? std::to_string(l.sizes[d]) : l.syms[d]);
  return fmt::format("{}[{}]", rt::dtype_name(l.dtype), fmt::join(dims, ", "));
}

}  // namespace

// The tensor leaves of a loaded model fn's arguments (vm::walkOpaqueArg over trace values), with
// eager's words (tools/ModelValue.cpp) for what the trace knows is wrong; dtypes and sizes are
// checked where the op runs (model::checkInputs), as eagerly.
struct Tracer::OpaqueLeaves {
  Tracer& t;
  const OpaqueSig& s;
  const Loc& loc;
  std::vector<ir::Value*> out;
  TV expand(const TV& v) const { return expandStatic(v); }
  const std::vector<TV>* items(const TV& v) const {
    return v.k == TV::Seq && (v.seqTag == Tag::Tuple || v.seqTag == Tag::List) ? &v.items : nullptr;
  }
  bool isRecord(const TV& v) const { return v.k == TV::Rec && v.seqTag != Tag::Dict; }
  const TV* field(const TV& v, const std::string& name) const {
    for (size_t k = 0; k < v.names->size(); ++k)
      if ((*v.names)[k] == name) return &v.items[k];
    return nullptr;
  }
  size_t fieldCount(const TV& v) const { return v.items.size(); }
  std::string describe(const TV& v) const { return t.describe(v); }
  size_t leaves() const { return out.size(); }
  [[noreturn]] void fail(const std::string& msg) const { t.failEager(loc, msg); }
  void leaf(const TV& v, const OpaqueLeaf& spec) {
    if (!t.isNumeric(v)) fail(fmt::format("{}: '{}' must be {}, got {}", s.name, spec.name, leafText(spec), describe(v)));
    bool weak = v.isDyn() ? v.weak : v.sv.weak();
    if (weak) {
      // A number takes the parameter's dtype where it keeps its value (vm::weakTarget, as
      // eagerly): 1.5 is no i64.
      std::string got;
      if (v.isStatic()) {
        DType d = spec.dtype;
        try {
          d = weakTarget(v.sv, spec.dtype);
        } catch (const rt::Error& e) {
          fail(fmt::format("{}: '{}': {}", s.name, spec.name, e.what()));
        }
        if (d != spec.dtype) got = typeText(v.sv);
      } else if (numberKind(v.dv->type.dtype) > numberKind(spec.dtype)) {
        got = fmt::format("{}[]", rt::dtype_name(t.usedDtype(v)));
      }
      if (!got.empty()) fail(fmt::format("{}: '{}' must be {}, got {}", s.name, spec.name, leafText(spec), got));
    }
    out.push_back(weak ? t.materialize(v, loc, spec.dtype) : t.materialize(v, loc));
    // Compiled code a tape cannot see into: a gradient through it would be silently zero.
    if (!t.recording_.empty() && rt::is_float(out.back()->type.dtype))
      fail(fmt::format("{}: '{}' is recorded on a tape, but a loaded model's functions are not "
                       "differentiable (its gradient would be zero); call it outside the tape, or on "
                       "a value the tape does not track",
                       s.name, spec.name));
  }
};

auto Tracer::opaqueCall(const OpaqueFnObj& fo, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc)
    -> TV {
  const OpaqueSig& s = fo.opaqueSig();
  std::vector<size_t> at =
      bindOpaqueArgs(s, args.size() - kw.size(), kw, [&](const std::string& msg) { failEager(loc, msg); });
  OpaqueLeaves w{*this, s, loc, {}};
  size_t p = 0;
  for (size_t i = 0; i < at.size(); ++i) walkOpaqueArg(s, w, args[at[i]], p, s.params[i]);
  std::vector<ir::Value*>& in = w.out;
  // The results' types: the signature's, its symbols the sizes the arguments give them
  // where they fit it (else the op's error comes first), other symbols fresh.
  std::map<std::string, Dim> syms;
  for (size_t k = 0; k < in.size(); ++k) {
    const OpaqueLeaf& l = s.inputs[k];
    const TensorType& t = in[k]->type;
    if (t.dtype != l.dtype || t.dims.size() != l.sizes.size()) continue;
    for (size_t d = 0; d < l.sizes.size(); ++d)
      if (!l.syms[d].empty()) syms.emplace(l.syms[d], t.dims[d]);
  }
  std::vector<TensorType> types;
  for (const OpaqueLeaf& l : s.outputs) {
    std::vector<Dim> dims;
    for (size_t d = 0; d < l.sizes.size(); ++d) {
      if (l.syms[d].empty()) {
        dims.push_back(Dim::known(l.sizes[d]));
        continue;
      }
      auto it = syms.find(l.syms[d]);
      if (it == syms.end()) it = syms.emplace(l.syms[d], Dim::symbolic(f_.fresh_sym())).first;
      dims.push_back(it->second);
    }
    types.emplace_back(l.dtype, dims);
  }
  setLoc(loc);
  ir::Op& op = b_.create(ir::OpKind::CallRuntime, in, types,
                         ir::AttrMap{{"callee", std::string("extern")}, {"key", s.key}, {"name", s.name},
                                     {"where", whereText(loc)}});
  size_t q = 0, k = 0;
  auto leaf = [&] { return TV::dyn(op.result(k++)); };
  auto tuple = [](std::vector<TV> items) {
    TV r;
    r.k = TV::Seq;
    r.items = std::move(items);
    return r;
  };
  auto record = [](std::vector<std::string> names, std::vector<TV> items) {
    TV r;
    r.k = TV::Rec;
    r.items = std::move(items);
    r.names = std::make_shared<const std::vector<std::string>>(std::move(names));
    return r;
  };
  return rebuildOpaque<TV>(s.outStructure, q, leaf, tuple, record);
}

auto Tracer::inlineCall(const TV& fnv, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc, const std::string& nm) -> TV {
  const FnDecl* d = fnv.fn;
  if (!d) fail(loc, "this function cannot be traced");
  for (Frame* f : frames_)
    if (f->decl == d) {
      const std::string& top = frames_.front()->name;  // the graph fn traced
      if (top == nm) fail(loc, fmt::format("recursion is not supported in graph fn '{}'", nm));
      fail(loc, fmt::format("recursion is not supported in graph fn '{}': fn '{}' calls itself", top, nm));
    }
  if (frames_.size() >= kMaxInlineDepth) fail(loc, "calls nest too deeply in a graph fn");
  Frame f;
  f.inst = ++instances_;
  f.decl = d;
  f.name = nm;
  f.callLoc = loc;
  f.captures = fnv.items;
  size_t n = static_cast<size_t>(std::max<int>(d->numLocals, static_cast<int>(d->params.size())));
  f.st.slots.resize(n);
  f.slotNames.resize(n);
  f.assignLocs.resize(n);
  f.st.retFlag = f.st.brk = f.st.cont = staticBool(false);
  size_t npos = args.size() - kw.size();
  // Eager mode's words (vm/Interpreter.cpp, binding a call's arguments).
  if (npos > d->params.size()) failEager(loc, tooManyArgumentsText(fmt::format("fn '{}'", nm), d->params.size(), npos));
  std::vector<bool> bound(d->params.size(), false);
  for (size_t i = 0; i < npos; ++i) f.st.slots[i] = args[i], bound[i] = true;
  for (size_t k = 0; k < kw.size(); ++k) {
    size_t i = 0;
    while (i < d->params.size() && d->params[i].name != kw[k]) ++i;
    if (i == d->params.size()) {
      std::vector<std::string> names;
      for (const auto& p : d->params) names.push_back(p.name);
      failEager(loc, fmt::format("fn '{}' has no parameter named '{}'{}", nm, kw[k], didYouMean(kw[k], names)));
    }
    if (bound[i]) failEager(loc, fmt::format("fn '{}' got two values for parameter '{}'", nm, kw[k]));
    f.st.slots[i] = args[npos + k];
    bound[i] = true;
  }
  for (size_t i = 0; i < d->params.size(); ++i) {
    f.slotNames[i] = d->params[i].name;
    if (bound[i]) continue;
    if (i < fnv.defaults.size() && d->params[i].deflt && !fnv.defaults[i].isUndef()) {
      f.st.slots[i] = TV::of(fnv.defaults[i]);
      continue;
    }
    if (i < fnv.traceDefaults.size() && fnv.traceDefaults[i].defined()) {
      f.st.slots[i] = fnv.traceDefaults[i];
      continue;
    }
    failEager(loc, fmt::format("fn '{}' is missing its argument '{}'", nm, d->params[i].name));
  }
  checkParamAnnotations(*d, f, nm, loc);
  if (d->ret && namesDims(*d->ret)) f.entryArgs.assign(f.st.slots.begin(), f.st.slots.begin() + static_cast<long>(d->params.size()));
  frames_.push_back(&f);
  struct Pop {
    std::vector<Frame*>& v;
    ~Pop() { v.pop_back(); }
  } pop{frames_};
  execBody(*d->body);
  if (isStaticFalse(f.st.retFlag)) return checkReturn(*d, TV::of(Value()), nm, d->loc);
  if (f.st.retFlag.isDyn()) {
    // Paths known only at run time may reach the end, which gives none (as eagerly).
    if (!f.st.ret.defined() || isStaticNone(f.st.ret)) return checkReturn(*d, TV::of(Value()), nm, d->loc);
    // Where the others return a value, one graph fn cannot give none too: reaching the end
    // is an error at run time (a loop that only ends by `return` never does), never a
    // made-up value.
    ir::Value* returned = materialize(f.st.retFlag, d->loc, DType::Bool);
    setLoc(d->loc);
    b_.assert_true(returned, fmt::format("fn '{}' reached its end without `return` (giving none) where its other paths "
                                         "return a value; in a graph fn every path returns alike: end it with a "
                                         "`return`",
                                         nm));
  }
  if (!f.st.ret.defined()) fail(loc, fmt::format("{} does not return a value on every path", nm));
  return f.st.ret;  // checked at each `return`
}

auto Tracer::checkReturn(const FnDecl& d, TV r, const std::string& nm, const Loc& loc) -> TV {
  if (!d.ret) return r;
  TraceDims dims;
  const Loc& at = loc;
  // Named dims the parameters bound (checked at the call), then the result's against them.
  if (!frames_.empty() && fr().decl == &d)
    for (size_t i = 0; i < fr().entryArgs.size(); ++i)
      if (d.params[i].type) {
        TV p = fr().entryArgs[i];
        matchTV(p, *d.params[i].type, dims, at);
      }
  dims.equal.clear();
  TV before = r;
  std::string head = fmt::format("fn '{}' must return {}, got ", nm, d.ret->str());
  if (!matchTV(r, *d.ret, dims, at)) failEager(at, head + structureTextTV(before));
  checkDims(dims, head, before, at);
  return r;
}

auto Tracer::matchTV(TV& v, const TypeExpr& t, TraceDims& dims, const Loc& loc) -> bool {
  if (v.isStatic() && (v.sv.tag() == Tag::Record || v.sv.tag() == Tag::Tuple)) v = expandStatic(v);
  switch (t.kind) {
    case TypeExpr::Alias: throw std::logic_error("internal: a type alias Sema did not resolve");
    case TypeExpr::Tensor: {
      auto dt = rt::dtype_from_name(t.dtype);
      if (!dt || !isNumeric(v)) return false;
      if (v.isStatic()) {
        if (v.sv.isScalar() || t.anyShape) {
          DimBindings none;
          Value x = v.sv;
          if (!matchesAnnotation(x, t, none)) return false;
          v = TV::of(x);
          return true;
        }
      }
      TensorType ty = typeOf(v);
      if (weakOf(v) && ty.rank() == 0) {
        if (!t.anyShape && !t.dims.empty()) return false;
        bool fits = rt::is_float(*dt) ? ty.dtype != DType::Bool
                    : *dt == DType::Bool ? ty.dtype == DType::Bool
                                         : !rt::is_float(ty.dtype) && ty.dtype != DType::Bool;
        if (!fits) return false;
        v = TV::dyn(materialize(v, loc, *dt), false);
        return true;
      }
      if (ty.dtype != *dt) return false;
      if (t.anyShape) return true;
      if (static_cast<size_t>(ty.rank()) != t.dims.size()) return false;
      auto dimValue = [&](size_t i) {
        setLoc(loc);
        return b_.dim(materialize(v, loc), static_cast<int64_t>(i));
      };
      for (size_t i = 0; i < t.dims.size(); ++i) {
        const tdl::Dim& d = t.dims[i];
        const ir::Dim& have = ty.dims[i];
        if (d.kind == tdl::Dim::Fixed) {
          if (have.is_known()) {
            if (have.size != d.size) return false;
          } else {
            dims.equal.emplace_back(dimValue(i), b_.constant(rt::Tensor::scalar(d.size)));
          }
        } else if (d.kind == tdl::Dim::Named) {
          auto it = dims.named.find(d.name);
          if (it == dims.named.end()) {
            dims.named.emplace(d.name, have.is_known() ? std::make_pair(have.size, static_cast<ir::Value*>(nullptr))
                                                       : std::make_pair(int64_t{-1}, dimValue(i)));
          } else if (have.is_known() && it->second.first >= 0) {
            if (have.size != it->second.first) return false;
          } else {
            ir::Value* a = have.is_known() ? b_.constant(rt::Tensor::scalar(have.size)) : dimValue(i);
            ir::Value* e = it->second.first >= 0 ? b_.constant(rt::Tensor::scalar(it->second.first)) : it->second.second;
            dims.equal.emplace_back(a, e);
          }
        }
      }
      return true;
    }
    case TypeExpr::Record: {
      if (v.k != TV::Rec || !v.names || v.names->size() != t.names.size()) return false;
      for (size_t i = 0; i < t.names.size(); ++i) {
        size_t k = 0;
        while (k < v.names->size() && (*v.names)[k] != t.names[i]) ++k;
        if (k == v.names->size() || !matchTV(v.items[k], *t.elems[i], dims, loc)) return false;
      }
      return true;
    }
    case TypeExpr::Tuple: {
      if (v.k != TV::Seq || v.seqTag != Tag::Tuple || v.items.size() != t.elems.size()) return false;
      for (size_t i = 0; i < t.elems.size(); ++i)
        if (!matchTV(v.items[i], *t.elems[i], dims, loc)) return false;
      return true;
    }
  }
  return false;
}

auto Tracer::checkDims(TraceDims& dims, const std::string& head, const TV& v, const Loc& loc) -> void {
  if (dims.equal.empty()) return;
  std::string format = escapeBraces(head);
  std::vector<ir::Value*> holes;
  if (v.isDyn()) {
    const ir::TensorType& ty = v.dv->type;
    format += std::string(rt::dtype_name(ty.dtype)) + "[";
    for (size_t i = 0; i < ty.dims.size(); ++i) {
      if (i) format += ", ";
      if (ty.dims[i].is_known()) {
        format += std::to_string(ty.dims[i].size);
      } else {
        format += "{}";
        setLoc(loc);
        holes.push_back(b_.dim(v.dv, static_cast<int64_t>(i)));
      }
    }
    format += "]";
  } else {
    format += escapeBraces(annotationText(v));
  }
  for (auto& [a, e] : dims.equal) {
    setLoc(loc);
    b_.assert_true(b_.binary(rt::BinaryOp::Eq, a, e), format, holes);
  }
  dims.equal.clear();
}

auto Tracer::annotationText(const TV& v) -> std::string {
  if (v.k == TV::Rec) return "record";
  if (v.k == TV::Seq) return v.seqTag == Tag::List ? "list" : "tuple";
  return describe(v);
}

// A value's type with its structure, as eager mode's structureText (vm/Value.h) writes it.
auto Tracer::structureTextTV(const TV& v, int depth) -> std::string {
  TV x = v.isStatic() && (v.sv.tag() == Tag::Record || v.sv.tag() == Tag::Tuple || v.sv.tag() == Tag::List ||
                          v.sv.tag() == Tag::Dict)
             ? expandStatic(v)
             : v;
  if (x.k != TV::Rec && x.k != TV::Seq) return x.isStatic() ? structureText(x.sv) : describe(x);
  std::string r;
  size_t n = std::min<size_t>(x.items.size(), 8);
  for (size_t i = 0; i < n; ++i) {
    if (i) r += ", ";
    if (x.k == TV::Rec) r += x.seqTag == Tag::Dict ? "\"" + (*x.names)[i] + "\": " : (*x.names)[i] + ": ";
    r += depth >= 4 ? std::string("...") : structureTextTV(x.items[i], depth + 1);
  }
  if (x.items.size() > n) r += ", ...";
  if (x.k == TV::Rec) return "{" + r + "}";
  if (x.seqTag == Tag::List) return "[" + r + "]";
  return "(" + r + (x.items.size() == 1 ? ",)" : ")");
}

auto Tracer::checkParamAnnotations(const FnDecl& d, Frame& f, const std::string& nm, const Loc& loc) -> void {
  TraceDims dims;
  for (size_t i = 0; i < d.params.size(); ++i) {
    if (!d.params[i].type) continue;
    TV& v = f.st.slots[i];
    TV before = v;
    std::string head = fmt::format("argument '{}' of fn '{}' must be {}, got ", d.params[i].name, nm,
                                   d.params[i].type->str());
    if (!matchTV(v, *d.params[i].type, dims, loc)) failEager(loc, head + structureTextTV(before));
    checkDims(dims, head, before, loc);
  }
}

}  // namespace tdl::vm::trace
