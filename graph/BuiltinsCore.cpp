// The builtins of functions, tapes, printing, checks, ranges and trees in graph fns.
// One handler per builtin (or family); the dispatch by builtin id is graph/Builtins.cpp.
#include "graph/Tracer.h"

#include "runtime/Create.h"
#include "runtime/Print.h"

namespace tdl::vm::trace {

auto Tracer::bi_tape(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  if (!args.empty()) failEager(loc, "tape() takes no arguments");
  TV t;
  t.k = TV::Tape;
  t.tape = static_cast<int>(tapes_.size());
  tapes_.emplace_back();
  return t;
}

auto Tracer::bi_grad(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV f = bc.need(0, "f");
  if (f.k != TV::Fn && f.k != TV::GradFn && !(f.isStatic() && f.sv.isCallable()))
    failEager(loc, fmt::format("{}: 'f' must be a function", nm));
  TV g;
  g.k = TV::GradFn;
  g.items.push_back(f);
  g.withValue = nm == "value_and_grad";
  TV* an = bc.arg(1, "argnums");
  if (!an || (an->isStatic() && an->sv.isNone())) {
    g.argnums = {0};
  } else {
    TV x = expandStatic(*an);
    if (x.k == TV::Seq) {
      g.tupleArgs = true;
      for (auto& it : x.items) g.argnums.push_back(bc.staticInt(it, "argnums"));
    } else {
      g.argnums = {bc.staticInt(*an, "argnums")};
    }
  }
  return g;
}

// The items a `for` would bind, when their number is known at trace time: a list or tuple's,
// a static range's, or the rows of a tensor whose first axis is known.
auto Tracer::itemsOf(const TV& v, const std::string& nm, const Loc& loc) -> std::vector<TV> {
  if (v.isStatic() && !v.sv.isNumeric()) {
    Value x = v.sv;
    return guarded(loc, [&] {
      std::vector<TV> out;
      for (int64_t i = 0, n = iterLength(x); i < n; ++i) out.push_back(TV::of(iterItem(x, i)));
      return out;
    });
  }
  TV x = expandStatic(v);
  if (x.k == TV::Seq) return x.items;
  if (isNumeric(x)) {
    TensorType t = typeOf(x);
    if (t.rank() < 1) failEager(loc, fmt::format("{}(): cannot iterate over a scalar", nm));
    if (!t.dims[0].is_known())
      fail(loc, fmt::format("{}(): the first axis of {} must have a size known at trace time in a graph fn", nm,
                            describe(x)));
    std::vector<TV> out;
    for (int64_t i = 0; i < t.dims[0].size; ++i) out.push_back(indexInt(x, TV::of(Value::i64(i, true)), loc));
    return out;
  }
  fail(loc, fmt::format("{}(): cannot iterate over a {} in a graph fn", nm, describe(x)));
}

auto Tracer::bi_sequence(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  std::vector<TV> out;
  if (nm == "enumerate") {
    TV* st = bc.arg(1, "start");
    int64_t start = st ? bc.staticInt(*st, "start") : 0;
    std::vector<TV> items = itemsOf(bc.need(0, "xs"), nm, loc);
    for (size_t i = 0; i < items.size(); ++i)
      out.push_back(makeSeq(Tag::Tuple, {TV::of(Value::i64(start + static_cast<int64_t>(i), true)), items[i]}));
  } else if (nm == "reversed") {
    out = itemsOf(bc.need(0, "xs"), nm, loc);
    std::reverse(out.begin(), out.end());
  } else if (nm == "list" || nm == "tuple") {
    if (TV* xs = bc.arg(0, "xs")) out = itemsOf(*xs, nm, loc);
    if (nm == "tuple") return makeSeq(Tag::Tuple, std::move(out));
  } else {  // zip
    if (!kw.empty()) failEager(loc, "zip() takes no keyword arguments");
    std::vector<std::vector<TV>> cols;
    size_t n = SIZE_MAX;
    for (auto& x : a.pos) cols.push_back(itemsOf(x, nm, loc)), n = std::min(n, cols.back().size());
    for (size_t k = 0; k < (cols.empty() ? 0 : n); ++k) {
      std::vector<TV> row;
      for (auto& c : cols) row.push_back(c[k]);
      out.push_back(makeSeq(Tag::Tuple, std::move(row)));
    }
  }
  return makeSeq(Tag::List, std::move(out));
}

auto Tracer::bi_len(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV x = expandStatic(bc.need(0, "x"));
  if (x.k == TV::Seq || x.k == TV::Rec) return TV::of(Value::i64(static_cast<int64_t>(x.items.size())));
  if (x.isStatic() && x.sv.isStr()) return TV::of(Value::i64(x.sv.as<StrObj>()->length()));  // code points
  if (isNumeric(x)) return dimTV(x, 0, loc);
  if (x.k == TV::Range) return rangeLength(x, loc);
  failEager(loc, fmt::format("len of a {}", describe(x)));
}

// sorted(xs, key=none, reverse=false): the items in the order of their keys (eager's rule,
// orderValues), which must be known at trace time; key is called on each item as a call in
// the graph fn (inlined), so the items themselves may be known only at run time.
auto Tracer::bi_sorted(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  if (a.pos.size() > 1) failEager(loc, sortedKeywordsOnly(static_cast<int>(a.pos.size())));
  std::vector<TV> items = itemsOf(bc.need(0, "xs"), nm, loc);
  TV* key = bc.arg(1, "key");
  TV* rev = bc.arg(2, "reverse");
  bool reverse = false;
  if (rev) {
    if (!rev->isStatic() || !rev->sv.isScalar() || rev->sv.dtype() != DType::Bool)
      fail(loc, fmt::format("sorted(): 'reverse' must be true or false known at trace time, got {}", describe(*rev)));
    reverse = rev->sv.asInt() != 0;
  }
  const bool byKey = key && !(key->isStatic() && key->sv.isNone());
  std::vector<Value> itemVals, keys;
  for (TV& item : items) {
    TV k = item;
    if (byKey) {
      std::vector<TV> one{item};
      k = callTV(*key, one, {}, loc);
    }
    // A tensor (not a number) is no key eagerly whatever its values: one of its type stands in,
    // so that the order fails with eager's words.
    std::optional<rt::Shape> shape = isNumeric(k) && typeOf(k).rank() > 0 ? typeOf(k).static_shape() : std::nullopt;
    if (!k.isStatic() && !shape)
      fail(loc, fmt::format("sorted(): the values it orders must be known at trace time in a graph fn, got {} (sort(x) "
                            "sorts a tensor's elements at run time)",
                            describe(k)));
    keys.push_back(k.isStatic() ? k.sv : fromTensor(rt::Tensor::zeros(typeOf(k).dtype, *shape)));
    itemVals.push_back(Value::i64(static_cast<int64_t>(itemVals.size())));  // the item's place
  }
  std::vector<Value> order = guarded(loc, [&] { return sortedItems(itemVals, keys, reverse); });
  std::vector<TV> out;
  for (const Value& i : order) out.push_back(items[static_cast<size_t>(i.asInt())]);
  return makeSeq(Tag::List, std::move(out));
}

// A string's methods (_str_*) with every argument known ran eagerly (builtin()). A string of
// run-time values (str or format of a run-time number, an f-string) has no methods in a graph
// fn, and the other arguments must be known at trace time.
auto Tracer::bi_strMethod(BuiltinCall& bc) -> TV {
  std::string method = bc.nm.substr(5);  // _str_NAME
  std::function<const TV*(const TV&)> runTimeString = [&](const TV& v) -> const TV* {
    if (v.k == TV::Fmt) return &v;
    if (v.k == TV::Seq)
      for (const TV& item : v.items)
        if (const TV* f = runTimeString(item)) return f;
    return nullptr;
  };
  if (!bc.args.empty() && bc.args[0].k == TV::Fmt) fail(bc.loc, fmt::format("{}() of a {}", method, describe(bc.args[0])));
  if (method == "join" && bc.args.size() == 2) {  // an item that is no string: eager's words
    TV xs = expandStatic(bc.args[1]);
    if (xs.k == TV::Seq)
      for (size_t i = 0; i < xs.items.size(); ++i)
        if (isNumeric(xs.items[i]) && !xs.items[i].isStatic())
          failEager(bc.loc, fmt::format("join(): item {} is a {}, not a string (str(x) makes one)", i,
                                        describe(xs.items[i])));
  }
  for (const TV& v : bc.args)
    if (const TV* f = runTimeString(v)) fail(bc.loc, fmt::format("{}(): an argument holds a {}", method, describe(*f)));
  for (const TV& v : bc.args)
    if (!v.isStatic())
      fail(bc.loc, fmt::format("the arguments of a string's {}() must be known at trace time in a graph fn, got {}",
                               method, describe(v)));
  fail(bc.loc, fmt::format("{}(): unexpected arguments", method));
}

auto Tracer::bi_range(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV r; r.k = TV::Range;
  TV one = TV::of(Value::i64(1, true)), zero = TV::of(Value::i64(0, true));
  if (a.pos.size() == 1) r.items = {zero, a.pos[0], one};
  else if (a.pos.size() == 2) r.items = {a.pos[0], a.pos[1], one};
  else if (a.pos.size() == 3) r.items = {a.pos[0], a.pos[1], a.pos[2]};
  else failEager(loc, "range takes 1 to 3 arguments");
  for (auto& i : r.items)
    if (!isNumeric(i) || typeOf(i).rank() != 0) failEager(loc, "range: bounds must be integer scalars");
  static const char* const names[] = {"start", "stop", "step"};  // by position, as eager's Args
  for (size_t i = 0; i < a.pos.size(); ++i)
    if (rt::is_float(typeOf(a.pos[i]).dtype))
      failEager(loc, fmt::format("range(): '{}' must be an integer, got {}", names[a.pos.size() == 1 ? 1 : i],
                                 describe(a.pos[i])));
  if (r.items[2].isStatic() && r.items[2].sv.asInt() == 0) failEager(loc, "range(): 'step' must not be zero");
  if (!r.items[2].isStatic()) {  // checked when it runs, as eagerly
    TV nz = binop(rt::BinaryOp::Ne, r.items[2], zero, loc);
    ir::Value* c = materialize(nz, loc, DType::Bool);
    setLoc(loc);
    b_.assert_true(c, "range(): 'step' must not be zero");
  }
  return r;
}

auto Tracer::bi_print(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  std::string sep = " ", end = "\n";
  if (auto it = a.kw.find("sep"); it != a.kw.end()) sep = staticString(it->second, "sep", loc);
  if (auto it = a.kw.find("end"); it != a.kw.end()) end = staticString(it->second, "end", loc);
  bool allRanks = false;
  if (auto it = a.kw.find("all_ranks"); it != a.kw.end()) {
    if (!it->second.isStatic() || !it->second.sv.isScalar() || it->second.sv.dtype() != DType::Bool)
      fail(loc, "print(): 'all_ranks' must be true or false, known at trace time");
    allRanks = it->second.sv.asInt() != 0;
  }
  std::string format;
  std::vector<ir::Value*> holes;
  for (size_t i = 0; i < a.pos.size(); ++i) {
    if (i) format += escapeBraces(sep);
    format += formatOf(a.pos[i], holes, loc, true);
  }
  format += escapeBraces(end);
  setLoc(loc);
  b_.print(holes, format, allRanks);
  return TV::of(Value());
}

// str(x) and format(x, spec) of run-time values: strings of run-time values (as f-strings
// are), formatted when printed, by the runtime's functions that eager mode calls.
auto Tracer::bi_str(BuiltinCall& bc) -> TV {
  std::vector<ir::Value*> holes;
  std::string format = formatOf(bc.need(0, "x"), holes, bc.loc, bc.nm == "str");  // repr: as inside a list
  std::vector<TV> hs;
  for (ir::Value* h : holes) hs.push_back(TV::dyn(h));
  return TV::fmtOf(makeStr(format), std::move(hs));
}

auto Tracer::bi_format(BuiltinCall& bc) -> TV {
  TV* specArg = bc.arg(1, "spec");
  if (!specArg) return bi_str(bc);
  if (TV& x0 = bc.need(0, "x"); x0.isStatic() && x0.sv.isStr() && !(specArg->isStatic() && specArg->sv.isStr()))
    failEager(bc.loc, std::string("format(): ") + kStrFormatHint);
  std::string spec = staticString(*specArg, "spec", bc.loc);
  TV& x = bc.need(0, "x");
  if (spec.empty()) return bi_str(bc);
  if (!x.isDyn()) failEager(bc.loc, fmt::format("format(): a format spec needs a number or tensor, got {}", describe(x)));
  if (spec.find_first_of("{}") != std::string::npos) failEager(bc.loc, "a format spec cannot contain braces");
  // A bad spec is eager's error, now: tried on a scalar of x's dtype.
  guarded(bc.loc, [&] { return rt::format_with_spec(rt::zeros({}, x.dv->type.dtype), spec); });
  return TV::fmtOf(makeStr(fmt::format("{{:{}}}", spec)), {asArg(x, bc.loc)});  // a weak float: its f32
}

auto Tracer::bi_assert(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV c = bc.need(0, "cond");
  std::string msg = "assertion failed";
  std::vector<ir::Value*> holes;
  if (TV* m = bc.arg(1, "message")) {
    // A string, or one of run-time values (an f-string, str(x)): formatted only if it fails.
    // The run-time assert formats its message only when it has values.
    if (m->k == TV::Fmt) {
      std::string format = formatOf(*m, holes, loc, true);
      msg += ": " + (holes.empty() ? rt::fill_format(format, {}) : format);  // no value after all: its text
    } else {
      msg += ": " + staticString(*m, "message", loc);
    }
  }
  b_.assert_true(materialize(assertHolds(c, loc), loc, DType::Bool), msg, holes);
  return TV::of(Value());
}

// Whether assert's cond holds, as eagerly: a bool, or a bool tensor whose elements must all
// hold; a bool scalar, known now when c is.
auto Tracer::assertHolds(const TV& c, const Loc& loc) -> TV {
  if (!isNumeric(c) || typeOf(c).dtype != DType::Bool)
    failEager(loc, fmt::format("assert(): 'cond' must be a bool, got {}", describe(c)));
  if (c.isStatic())
    return TV::of(Value::boolean(c.sv.isScalar() ? c.sv.rawInt() != 0
                                                 : rt::all(c.sv.as<TensorObj>()->t).scalar_as_bool()));
  ir::Value* cv = materialize(c, loc, DType::Bool);
  setLoc(loc);
  if (!cv->type.is_scalar()) {
    ir::IntList axes;
    for (int64_t i = 0; i < cv->type.rank(); ++i) axes.push_back(i);
    cv = b_.reduce(rt::ReduceOp::All, cv, axes, false);
  }
  return TV::dyn(cv);
}

// The assert statement's test (eager's _assert_holds).
auto Tracer::bi_assertHolds(BuiltinCall& bc) -> TV { return assertHolds(bc.need(0, "cond"), bc.loc); }

// A random tensor whose sizes are known only at run time (rand([n, 2]) of an argument n):
// the runtime draws it in the shape of a tensor of those sizes (BroadcastDyn), from the one
// generator in program order, as rt::rand/randn/randint eagerly.
auto Tracer::randomShaped(const std::string& dist, DType d, const std::vector<Dim>& dims,
                          const std::vector<ir::Value*>& sizes, const std::vector<ir::Value*>& bounds, const Loc& loc)
    -> TV {
  ir::Value* shaped = broadcastShaped(b_.constant(rt::full({}, 0, d)), dims, sizes, loc);
  std::vector<ir::Value*> ops{shaped};
  ops.insert(ops.end(), bounds.begin(), bounds.end());
  setLoc(loc);
  return TV::dyn(b_.create(ir::OpKind::CallRuntime, ops, {shaped->type},
                           ir::AttrMap{{"callee", std::string("random_shaped")}, {"dist", dist}, {"where", whereText(loc)}})
                     .result());
}

auto Tracer::bi_rand(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  std::vector<ir::Value*> sizes;
  std::vector<Dim> dims = shapeDims(bc.need(0, "shape"), loc, false, &sizes, nm.c_str());
  DType d = bc.dtypeArg(1, "dtype", DType::F32);
  const std::string dist = nm == "rand" ? "uniform" : "normal";
  if (anyComputed(dims)) return randomShaped(dist, d, dims, sizes, {}, loc);
  setLoc(loc);
  return TV::dyn(b_.random(dist, TensorType(d, dims)));
}

// file:line:col of loc, for a runtime call's errors.
auto Tracer::whereText(const Loc& loc) -> std::string {
  return loc.valid() && loc.file < vm_.sources().size()
             ? fmt::format("{}:{}:{}", vm_.sources().file(loc.file).path, loc.line, loc.col)
             : "?";
}

// seed(n) and permutation(n) in a graph fn: the runtime's, called when the fn runs (in
// program order with its random draws), on the one generator eager code uses.
auto Tracer::bi_seed(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  ir::Value* n = integerArg(bc.need(0, "n"), "seed", "n", loc);
  setLoc(loc);
  b_.create(ir::OpKind::CallRuntime, {n}, {}, ir::AttrMap{{"callee", std::string("seed")}, {"where", whereText(loc)}});
  return TV::of(Value());
}

auto Tracer::bi_permutation(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV nv = bc.need(0, "n");
  ir::Value* n = integerArg(nv, "permutation", "n", loc);
  setLoc(loc);
  b_.assert_true(b_.binary(rt::BinaryOp::Ge, n, b_.constant(rt::Tensor::scalar_of(DType::I64, 0))),
                 "permutation(): 'n' must not be negative");
  std::optional<Dim> known = countDim(nv);
  Dim size = known ? *known : Dim::symbolic(f_.fresh_sym());
  return TV::dyn(b_.create(ir::OpKind::CallRuntime, {n}, {TensorType(DType::I64, {size})},
                           ir::AttrMap{{"callee", std::string("permutation")}, {"where", whereText(loc)}})
                     .result());
}

auto Tracer::bi_randint(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  ir::Value* lo = integerArg(bc.need(0, "lo"), "randint", "lo", loc);
  ir::Value* hi = integerArg(bc.need(1, "hi"), "randint", "hi", loc);
  std::vector<ir::Value*> sizes;
  std::vector<Dim> dims = shapeDims(bc.need(2, "shape"), loc, false, &sizes, nm.c_str());
  if (anyComputed(dims)) return randomShaped("int", DType::I64, dims, sizes, {lo, hi}, loc);
  setLoc(loc);
  return TV::dyn(b_.random("int", TensorType(DType::I64, dims), {lo, hi}));
}

auto Tracer::bi_tree_leaves(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  // Every leaf, as eager's collectLeaves: tensors and scalars, and also none, strings and
  // functions (only records, lists and tuples are taken apart).
  std::vector<TV> ls;
  std::function<void(const TV&)> all = [&](const TV& t) {
    TV x = expandStatic(t);
    if (x.k == TV::Seq || x.k == TV::Rec) {
      for (auto& i : x.items) all(i);
    } else {
      ls.push_back(x);
    }
  };
  all(bc.need(0, "tree"));
  return makeSeq(Tag::List, ls);
}

auto Tracer::bi_tree_map(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV f = bc.need(0, "f");
  std::vector<TV> trees(args.begin() + 1, args.end() - static_cast<long>(kw.size()));
  if (trees.empty()) failEager(loc, "tree_map needs a tree");
  std::function<TV(std::vector<TV>)> rec = [&](std::vector<TV> ts) -> TV {
    TV x = expandStatic(ts[0]);
    if (x.k == TV::Seq || x.k == TV::Rec) {
      TV r = x;
      for (size_t i = 0; i < x.items.size(); ++i) {
        std::vector<TV> sub;
        for (auto& t : ts) {
          TV y = expandStatic(t);
          if (y.k != x.k || y.seqTag != x.seqTag || y.items.size() != x.items.size() ||
              (x.k == TV::Rec && *y.names != *x.names)) {
            // Eager's words (vm/BuiltinsCore.cpp treeMap): what differs.
            std::string why = fmt::format("{} and {}", describe(x), describe(y));
            if (y.k == x.k && y.seqTag == x.seqTag && x.k == TV::Seq)
              why = fmt::format("{}s of {} and {} items", tagName(x.seqTag), x.items.size(), y.items.size());
            else if (y.k == x.k && y.seqTag == x.seqTag)
              why = fmt::format("{} and {}", structureTextTV(x), structureTextTV(y));
            failEager(loc, fmt::format("tree_map(): the trees have different structures ({})", why));
          }
          sub.push_back(y.items[i]);
        }
        r.items[i] = rec(sub);
      }
      return normalize(r);
    }
    std::vector<std::string> nokw;
    return callTV(f, ts, nokw, loc);
  };
  return rec(trees);
}

}  // namespace tdl::vm::trace
