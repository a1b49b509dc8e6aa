// Calls of builtins. (graph/Tracer.h)
#include "graph/Tracer.h"

namespace tdl::vm::trace {

auto Tracer::builtin(int id, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc) -> TV {
    std::string nm = builtinName(id);
    bool effect = nm == "print" || nm == "assert" || nm == "rand" || nm == "randn" || nm == "randint" ||
                  nm == "permutation" || nm == "seed" || nm == "time" || nm == "exit" || nm == "save" ||
                  nm == "save_npy" || nm == "load" || nm == "load_npy" || nm == "load_csv" || nm == "args" ||
                  nm == "progress" || nm == "plot" || nm == "tape" || nm == "grad" || nm == "value_and_grad";
    bool allStatic = true;
    for (auto& a : args) allStatic = allStatic && a.isStatic() && !tapedStatic(a);
    if (allStatic && !effect && nm != "tree_map") {
      std::vector<Value> vals;
      for (auto& a : args) vals.push_back(a.sv);
      auto names = std::make_shared<std::vector<std::string>>(kw);
      CallArgs ca{vals.data(), static_cast<int>(vals.size()), kw.empty() ? nullptr : names.get()};
      return staticCall(loc, [&] { return builtinFn(id)(vm_, ca); });
    }
    // The one binder (eager's, with the parameter lists the builtins declare): unknown or
    // repeated keywords, too many or missing arguments are eager's errors, word for word.
    if (const BuiltinParams* ps = builtinParams(vm_, id)) {
      try {
        (void)bindBuiltinArgs(ps->fn.c_str(), ps->params, ps->required, static_cast<int>(args.size() - kw.size()),
                              kw.empty() ? nullptr : &kw);
      } catch (const rt::Error& e) {
        fail(loc, e.what());
      }
    }
    // Bind by name.
    BArgs a;
    size_t npos = args.size() - kw.size();
    for (size_t i = 0; i < npos; ++i) a.pos.push_back(args[i]);
    for (size_t k = 0; k < kw.size(); ++k) a.kw[kw[k]] = args[npos + k];
    auto arg = [&](size_t i, const char* key) -> TV* {
      if (i < a.pos.size()) return &a.pos[i];
      auto it = a.kw.find(key);
      return it == a.kw.end() ? nullptr : &it->second;
    };
    auto need = [&](size_t i, const char* key) -> TV& {
      TV* p = arg(i, key);
      if (!p) fail(loc, fmt::format("{}: missing argument '{}'", nm, key));
      return *p;
    };
    auto staticInt = [&](const TV& t, const char* what) -> int64_t {
      if (!t.isStatic() || !t.sv.isScalar()) fail(loc, fmt::format("{}: '{}' must be known at trace time in a graph fn", nm, what));
      return t.sv.asInt();
    };
    auto dtypeArg = [&](size_t i, const char* key, DType dflt) -> DType {
      TV* p = arg(i, key);
      if (!p || (p->isStatic() && p->sv.isNone())) return dflt;
      if (!p->isStatic() || p->sv.tag() != Tag::DType)
        fail(loc, fmt::format("{}(): '{}' must be a dtype (bool, i32, i64, f32, f64), got {}", nm, key, describe(*p)));
      return p->sv.dtype();
    };
    if (nm == "tape") {
      if (!args.empty()) fail(loc, "tape() takes no arguments");
      TV t;
      t.k = TV::Tape;
      t.tape = static_cast<int>(tapes_.size());
      tapes_.emplace_back();
      return t;
    }
    if (nm == "grad" || nm == "value_and_grad") {
      TV f = need(0, "f");
      if (f.k != TV::Fn && f.k != TV::GradFn && !(f.isStatic() && f.sv.isCallable()))
        fail(loc, fmt::format("{}: 'f' must be a function", nm));
      TV g;
      g.k = TV::GradFn;
      g.items.push_back(f);
      g.withValue = nm == "value_and_grad";
      TV* an = arg(1, "argnums");
      if (!an || (an->isStatic() && an->sv.isNone())) {
        g.argnums = {0};
      } else {
        TV x = expandStatic(*an);
        if (x.k == TV::Seq) {
          g.tupleArgs = true;
          for (auto& it : x.items) g.argnums.push_back(staticInt(it, "argnums"));
        } else {
          g.argnums = {staticInt(*an, "argnums")};
        }
      }
      return g;
    }
    if (auto u = unaryBuiltinByName(nm)) return unop(*u, need(0, "x"), loc);
    if (auto bop = binaryBuiltinByName(nm)) {
      rt::BinaryParams p = rt::binary_params(*bop);
      TV* second = arg(1, p.b.c_str());
      return binop(*bop, need(0, p.a.c_str()), second ? *second : TV::of(Value::weakFloat(p.b_default.value_or(0))), loc);
    }
    if (nm == "clip") {
      TV lo = binop(rt::BinaryOp::Maximum, need(0, "x"), need(1, "lo"), loc);
      return binop(rt::BinaryOp::Minimum, lo, need(2, "hi"), loc);
    }
    if (nm == "where") {
      TV c = need(0, "cond"), x = need(1, "a"), y = need(2, "b");
      // promote a and b by the operator rules (weak scalars take the other's dtype)
      TV probe = binop(rt::BinaryOp::Add, x, y, loc);
      DType d = typeOf(probe).dtype;
      ir::Value* cv = materialize(c, loc, DType::Bool);
      ir::Value *xv = materialize(x, loc, d), *yv = materialize(y, loc, d);
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.select(cv, xv, yv); }), weakOf(x) && weakOf(y));
    }
    if (nm == "cast") return castTV(need(0, "x"), dtypeArg(1, "dtype", DType::F32), loc);
    if (nm == "int" || nm == "float") {  // of a number (a rank-0 tensor), as eagerly
      TV& x = need(0, "x");
      if (!x.isStatic() && !(isNumeric(x) && typeOf(x).is_scalar()))
        fail(loc, fmt::format("{}(): 'x' must be a number, got {}", nm, describe(x)));
      return castTV(x, nm == "int" ? DType::I64 : DType::F32, loc);
    }
    if (nm == "sum" || nm == "mean" || nm == "max" || nm == "min" || nm == "prod" || nm == "all" || nm == "any" ||
        nm == "logsumexp" || nm == "argmax" || nm == "argmin") {
      TV x = need(0, "x");
      ir::Value* xv = materialize(x, loc);
      int64_t rank = xv->type.rank();
      TV* ax = arg(1, "axis");
      TV* kd = arg(2, "keepdims");
      bool keep = false;
      if (kd) {
        if (!kd->isStatic()) fail(loc, fmt::format("{}: keepdims must be known at trace time", nm));
        keep = kd->sv.asBool();
      }
      ir::IntList axes;
      bool all = !ax || (ax->isStatic() && ax->sv.isNone());
      if (all) for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
      else {
        if (!ax->isStatic()) fail(loc, fmt::format("{}: axis must be known at trace time", nm));
        std::vector<Value> items = ax->sv.isSeq() ? ax->sv.as<SeqObj>()->items : std::vector<Value>{ax->sv};
        for (auto& v : items) {
          int64_t k = v.asInt();
          axes.push_back(guarded(loc, [&] { return rt::normalize_axis(k, rank); }));
        }
      }
      setLoc(loc);
      if (nm == "argmax" || nm == "argmin") {
        if (axes.size() != 1) {
          if (rank == 0) axes = {0};
          else {
            std::vector<Dim> flat{Dim::known(1)};
            bool symbolic = false;
            for (auto& d : xv->type.dims) {
              if (!d.is_known()) symbolic = true;
              else flat[0].size *= d.size;
            }
            // flattened (its size known at run time when dims are symbolic)
            xv = symbolic ? dynShaped(ir::OpKind::ReshapeDyn, xv, {Dim::known(-1)}, {}, loc) : b_.reshape(xv, flat);
            axes = {0};
          }
        }
        if (rank == 0) return TV::of(Value::i64(0));
        return TV::dyn(guarded(loc, [&] { return nm == "argmax" ? b_.argmax(xv, axes[0], keep) : b_.argmin(xv, axes[0], keep); }));
      }
      rt::ReduceOp op = *ir::reduce_kind_from_name(nm);
      return TV::dyn(guarded(loc, [&] { return b_.reduce(op, xv, axes, keep); }));
    }
    if (nm == "matmul" || nm == "dot") {
      ir::Value *x = materialize(need(0, "a"), loc), *y = materialize(need(1, "b"), loc);
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.matmul(x, y); }));
    }
    if (nm == "transpose") {
      ir::Value* x = materialize(need(0, "x"), loc);
      ir::IntList perm;
      TV* p = arg(1, "perm");
      if (p && !(p->isStatic() && p->sv.isNone())) {
        if (!p->isStatic()) fail(loc, "transpose: perm must be known at trace time");
        perm = staticCall(loc, [&] { return p->sv; }).sv.isSeq() ? ints(p->sv, loc) : ints(p->sv, loc);
      } else {
        for (int64_t i = x->type.rank(); i-- > 0;) perm.push_back(i);
      }
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.transpose(x, perm); }));
    }
    if (nm == "zeros" || nm == "ones" || nm == "full") {
      std::vector<ir::Value*> sizes;
      std::vector<Dim> dims = shapeDims(need(0, "shape"), loc, false, &sizes);
      DType d = dtypeArg(nm == "full" ? 2 : 1, "dtype", DType::F32);
      TV fill = nm == "full" ? need(1, "value") : TV::of(Value::weakFloat(nm == "ones" ? 1.0 : 0.0));
      if (nm == "full" && !arg(2, "dtype")) d = weakOf(fill) ? (fill.isStatic() ? fill.sv.dtype() : typeOf(fill).dtype) : typeOf(fill).dtype;
      ir::Value* v = materialize(fill, loc, d);
      if (anyComputed(dims)) return TV::dyn(dynShaped(ir::OpKind::BroadcastDyn, v, dims, sizes, loc));
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.broadcast_to(v, dims); }));
    }
    if (nm == "zeros_like" || nm == "ones_like") {
      ir::Value* x = materialize(need(0, "x"), loc);
      DType d = dtypeArg(1, "dtype", x->type.dtype);
      ir::Value* v = b_.constant(rt::Tensor::scalar_of(d, nm == "ones_like" ? 1 : 0));
      setLoc(loc);
      return TV::dyn(x->type.is_scalar() ? v : b_.broadcast_to(v, x->type.dims));
    }
    if (nm == "arange") {  // some bound known only at run time (static calls ran eagerly)
      TV start = TV::of(Value::i64(0, true)), stop = need(0, "start"), step = TV::of(Value::i64(1, true));
      if (TV* hi = arg(1, "stop"); hi && !(hi->isStatic() && hi->sv.isNone())) {
        start = stop;
        stop = *hi;
      }
      if (TV* st = arg(2, "step")) step = *st;
      bool ints = true;
      for (const TV* v : {&start, &stop, &step}) {
        if (!isNumeric(*v) || !typeOf(*v).is_scalar())
          fail(loc, fmt::format("arange(): bounds must be numbers, got {}", describe(*v)));
        ints = ints && !rt::is_float(typeOf(*v).dtype);
      }
      DType dt = dtypeArg(3, "dtype", ints ? DType::I64 : DType::F32);
      // arange(x.shape[i]) has the size of that dim; otherwise the run time knows it.
      Dim size = Dim::symbolic(f_.fresh_sym());
      if (start.isStatic() && start.sv.asInt() == 0 && step.isStatic() && step.sv.asInt() == 1 && stop.isDyn() &&
          stop.dv->def() && stop.dv->def()->kind() == ir::OpKind::Dim) {
        const ir::Op* d = stop.dv->def();
        size = d->operand(0)->type.dims.at(static_cast<size_t>(d->int_attr("axis")));
      }
      DType bt = ints ? DType::I64 : DType::F64;  // the runtime's arange computes in int64 or double
      std::vector<ir::Value*> ops{materialize(start, loc, bt), materialize(stop, loc, bt), materialize(step, loc, bt)};
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.create(ir::OpKind::Arange, ops, {TensorType(dt, {size})}, {}).result(); }));
    }
    if (nm == "broadcast_to") {
      ir::Value* x = materialize(need(0, "x"), loc);
      std::vector<ir::Value*> sizes;
      std::vector<Dim> dims = shapeDims(need(1, "shape"), loc, false, &sizes);
      if (anyComputed(dims)) return TV::dyn(dynShaped(ir::OpKind::BroadcastDyn, x, dims, sizes, loc));
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.broadcast_to(x, dims); }));
    }
    if (nm == "reshape" || nm == "flatten") {
      ir::Value* x = materialize(need(0, "x"), loc);
      std::vector<ir::Value*> sizes;
      std::vector<Dim> dims =
          nm == "flatten" ? std::vector<Dim>{Dim::known(-1)} : shapeDims(need(1, "shape"), loc, true, &sizes);
      // Sizes known only at run time, or a -1 over symbolic dims: the run time reshapes.
      if (anyComputed(dims) || !resolveMinusOne(x->type.dims, dims, loc))
        return TV::dyn(dynShaped(ir::OpKind::ReshapeDyn, x, dims, sizes, loc));
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.reshape(x, dims); }));
    }
    if (nm == "expand_dims") {
      ir::Value* x = materialize(need(0, "x"), loc);
      int64_t axis = staticInt(need(1, "axis"), "axis");
      std::vector<Dim> dims = x->type.dims;
      int64_t r = static_cast<int64_t>(dims.size()) + 1;
      axis = guarded(loc, [&] { return rt::normalize_axis(axis, r); });
      dims.insert(dims.begin() + axis, Dim::known(1));
      setLoc(loc);
      return TV::dyn(b_.reshape(x, dims));
    }
    if (nm == "squeeze") {
      ir::Value* x = materialize(need(0, "x"), loc);
      TV* ax = arg(1, "axis");
      std::vector<Dim> dims;
      int64_t r = x->type.rank();
      int64_t only = -1;
      if (ax && !(ax->isStatic() && ax->sv.isNone())) {
        int64_t given = staticInt(*ax, "axis");
        // The runtime's own rule decides when the shape is known (same checks, same words).
        bool known = true;
        rt::Shape shape;
        for (const Dim& d : x->type.dims) known = known && d.is_known(), shape.push_back(d.is_known() ? d.size : 1);
        if (known) guarded(loc, [&] { return rt::squeeze_shape(shape, rt::Axes(std::vector<int64_t>{given})); });
        only = guarded(loc, [&] { return rt::normalize_axis(given, r); });
        const Dim& d = x->type.dims[static_cast<size_t>(only)];
        if (d.is_known() && d.size != 1)
          fail(loc, fmt::format("cannot squeeze axis {} of size {} (shape {})", given, d.size, x->type.str()));
      }
      for (int64_t i = 0; i < r; ++i) {
        const Dim& d = x->type.dims[static_cast<size_t>(i)];
        bool one = d.is_known() && d.size == 1;
        if (one && (only < 0 || only == i)) continue;
        dims.push_back(d);
      }
      setLoc(loc);
      return TV::dyn(b_.reshape(x, dims));
    }
    if (nm == "concat" || nm == "stack") {
      TV xs = expandStatic(need(0, "xs"));
      if (xs.k != TV::Seq) fail(loc, fmt::format("{}: expected a list of tensors", nm));
      int64_t axis = arg(1, "axis") ? staticInt(*arg(1, "axis"), "axis") : 0;
      TV probe = xs.items.at(0);
      for (size_t i = 1; i < xs.items.size(); ++i) probe = binop(rt::BinaryOp::Add, probe, xs.items[i], loc);
      (void)probe;
      std::vector<ir::Value*> parts;
      for (auto& it : xs.items) {
        ir::Value* v = materialize(it, loc);
        if (nm == "stack") {
          std::vector<Dim> dims = v->type.dims;
          int64_t r = static_cast<int64_t>(dims.size()) + 1;
          int64_t ax2 = guarded(loc, [&] { return rt::normalize_axis(axis, r); });
          dims.insert(dims.begin() + ax2, Dim::known(1));
          setLoc(loc);
          v = b_.reshape(v, dims);
        }
        parts.push_back(v);
      }
      int64_t r = parts[0]->type.rank();
      if (axis < 0) axis += r;
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.concat(parts, axis); }));
    }
    if (nm == "outer") {
      // a.flat[i] * b.flat[j]: a column times a row (broadcasting), so it differentiates.
      auto flatTo = [&](const TV& v, bool column) {
        ir::Value* x = materialize(v, loc);
        Dim n = Dim::known(1);
        if (x->type.rank() == 1) n = x->type.dims[0];
        else if (auto s = x->type.static_shape()) n = Dim::known(rt::numel_of(*s));
        else if (x->type.rank() != 0) fail(loc, "outer: an operand of rank >= 2 with a dim of unknown size");
        std::vector<Dim> d = column ? std::vector<Dim>{n, Dim::known(1)} : std::vector<Dim>{Dim::known(1), n};
        setLoc(loc);
        return TV::dyn(guarded(loc, [&] { return b_.reshape(x, d); }));
      };
      return binop(rt::BinaryOp::Mul, flatTo(need(0, "a"), true), flatTo(need(1, "b"), false), loc);
    }
    if (nm == "tile") {
      // NumPy tile: reshape to [1, s0, 1, s1, ...], broadcast to [r0, s0, r1, s1, ...], merge pairs.
      ir::Value* x = materialize(need(0, "x"), loc);
      TV rv = need(1, "reps");
      if (!rv.isStatic()) fail(loc, "tile: 'reps' must be known at trace time in a graph fn");
      ir::IntList reps = ints(rv.sv, loc);
      for (int64_t r : reps)
        if (r < 0) fail(loc, fmt::format("tile: negative repetition {}", r));
      size_t rank = std::max(static_cast<size_t>(x->type.rank()), reps.size());
      std::vector<Dim> dims(rank - static_cast<size_t>(x->type.rank()), Dim::known(1));
      dims.insert(dims.end(), x->type.dims.begin(), x->type.dims.end());
      reps.insert(reps.begin(), rank - reps.size(), 1);
      std::vector<Dim> spread, wide, out;
      for (size_t i = 0; i < rank; ++i) {
        spread.push_back(Dim::known(1));
        spread.push_back(dims[i]);
        wide.push_back(Dim::known(reps[i]));
        wide.push_back(dims[i]);
        if (reps[i] == 1) out.push_back(dims[i]);
        else if (dims[i].is_known()) out.push_back(Dim::known(dims[i].size * reps[i]));
        else fail(loc, "tile: repeating a dim of unknown size is not supported in graph fns yet");
      }
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.reshape(b_.broadcast_to(b_.reshape(x, spread), wide), out); }));
    }
    if (nm == "pad") {
      // Constant blocks concatenated before and after along each axis.
      ir::Value* x = materialize(need(0, "x"), loc);
      TV wv = need(1, "widths");
      if (!wv.isStatic()) fail(loc, "pad: 'widths' must be known at trace time in a graph fn");
      ir::IntList w = ints(wv.sv, loc);
      size_t rank = static_cast<size_t>(x->type.rank());
      if (w.size() == 2 && rank != 1) {
        ir::IntList all;
        for (size_t i = 0; i < rank; ++i) all.push_back(w[0]), all.push_back(w[1]);
        w = all;
      }
      if (w.size() != 2 * rank) fail(loc, "pad: 'widths' must be (before, after) pairs, one per axis or one for all");
      double value = 0;
      if (TV* v = arg(2, "value")) {
        if (!v->isStatic() || !v->sv.isScalar()) fail(loc, "pad: 'value' must be a number known at trace time in a graph fn");
        value = v->sv.asDouble();
      }
      for (int64_t k : w)
        if (k < 0) fail(loc, fmt::format("pad: negative width {}", k));
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] {
        ir::Value* y = x;
        for (size_t ax = 0; ax < rank; ++ax) {
          if (w[2 * ax] == 0 && w[2 * ax + 1] == 0) continue;
          if (!y->type.dims[ax].is_known()) throw rt::Error("pad: padding an axis of unknown size is not supported in graph fns yet");
          std::vector<ir::Value*> parts;
          auto block = [&](int64_t n) {
            std::vector<Dim> d = y->type.dims;
            d[ax] = Dim::known(n);
            return b_.broadcast_to(b_.constant(rt::full({}, value, y->type.dtype)), d);
          };
          if (w[2 * ax] > 0) parts.push_back(block(w[2 * ax]));
          parts.push_back(y);
          if (w[2 * ax + 1] > 0) parts.push_back(block(w[2 * ax + 1]));
          y = b_.concat(parts, static_cast<int64_t>(ax));
        }
        return y;
      }));
    }
    if (nm == "take") {
      TV* ax = arg(2, "axis");
      int64_t axis = ax ? staticInt(*ax, "axis") : 0;
      TV& idx = need(1, "idx");
      if (!isNumeric(idx)) fail(loc, fmt::format("take(): 'idx' must be a tensor, got {}", annotationText(idx)));
      return gatherTV(need(0, "x"), idx, axis, loc);
    }
    if (nm == "one_hot") {
      ir::Value* idx = materialize(need(0, "idx"), loc, DType::I64);
      // n: known at trace time, or the size of a tensor's axis (maybe symbolic: x.shape[k]).
      TV nv = need(1, "n");
      Dim nd;
      if (nv.isDyn() && nv.dv->def() && nv.dv->def()->kind() == ir::OpKind::Dim) {
        const ir::Op* op = nv.dv->def();
        nd = op->operand(0)->type.dims.at(static_cast<size_t>(op->int_attr("axis")));
      } else {
        int64_t n = staticInt(nv, "n");
        if (n < 0) fail(loc, fmt::format("one_hot: 'n' must not be negative, got {}", n));
        nd = Dim::known(n);
      }
      DType d = dtypeArg(2, "dtype", DType::F32);
      setLoc(loc);
      ir::Value* io = b_.iota(TensorType(DType::I64, {nd}), 0);
      std::vector<Dim> ed = idx->type.dims;
      ed.push_back(Dim::known(1));
      ir::Value* e = b_.reshape(idx, ed);
      return TV::dyn(b_.cast(guarded(loc, [&] { return b_.binary(rt::BinaryOp::Eq, e, io); }), d));
    }
    if (nm == "len") {
      TV x = expandStatic(need(0, "x"));
      if (x.k == TV::Seq || x.k == TV::Rec) return TV::of(Value::i64(static_cast<int64_t>(x.items.size())));
      if (isNumeric(x)) return dimTV(x, 0, loc);
      fail(loc, fmt::format("len of a {}", describe(x)));
    }
    if (nm == "range") {
      TV r; r.k = TV::Range;
      TV one = TV::of(Value::i64(1, true)), zero = TV::of(Value::i64(0, true));
      if (a.pos.size() == 1) r.items = {zero, a.pos[0], one};
      else if (a.pos.size() == 2) r.items = {a.pos[0], a.pos[1], one};
      else if (a.pos.size() == 3) r.items = {a.pos[0], a.pos[1], a.pos[2]};
      else fail(loc, "range takes 1 to 3 arguments");
      for (auto& i : r.items)
        if (!isNumeric(i) || typeOf(i).rank() != 0) fail(loc, "range: bounds must be integer scalars");
      if (r.items[2].isStatic() && r.items[2].sv.asInt() == 0) fail(loc, "range(): 'step' must not be zero");
      if (!r.items[2].isStatic()) {  // checked when it runs, as eagerly
        TV nz = binop(rt::BinaryOp::Ne, r.items[2], zero, loc);
        ir::Value* c = materialize(nz, loc, DType::Bool);
        setLoc(loc);
        b_.assert_true(c, "range(): 'step' must not be zero");
      }
      return r;
    }
    if (nm == "print") {
      std::string sep = " ", end = "\n";
      if (auto it = a.kw.find("sep"); it != a.kw.end()) sep = staticString(it->second, "sep", loc);
      if (auto it = a.kw.find("end"); it != a.kw.end()) end = staticString(it->second, "end", loc);
      std::string format;
      std::vector<ir::Value*> holes;
      for (size_t i = 0; i < a.pos.size(); ++i) {
        if (i) format += escapeBraces(sep);
        format += formatOf(a.pos[i], holes, loc, true);
      }
      format += escapeBraces(end);
      setLoc(loc);
      b_.print(holes, format);
      return TV::of(Value());
    }
    if (nm == "assert") {
      TV c = need(0, "cond");
      std::string msg = "assertion failed";
      if (TV* m = arg(1, "message")) msg = "assertion failed: " + staticString(*m, "message", loc);
      // As eagerly: a bool, or a bool tensor whose elements must all hold.
      if (!isNumeric(c) || typeOf(c).dtype != DType::Bool)
        fail(loc, fmt::format("assert(): 'cond' must be a bool, got {}", describe(c)));
      ir::Value* cv = materialize(c, loc, DType::Bool);
      setLoc(loc);
      if (!cv->type.is_scalar()) {
        ir::IntList axes;
        for (int64_t i = 0; i < cv->type.rank(); ++i) axes.push_back(i);
        cv = b_.reduce(rt::ReduceOp::All, cv, axes, false);
      }
      b_.assert_true(cv, msg);
      return TV::of(Value());
    }
    if (nm == "rand" || nm == "randn") {
      std::vector<Dim> dims = shapeDims(need(0, "shape"), loc);
      DType d = dtypeArg(1, "dtype", DType::F32);
      setLoc(loc);
      return TV::dyn(b_.random(nm == "rand" ? "uniform" : "normal", TensorType(d, dims)));
    }
    if (nm == "randint") {
      ir::Value* lo = integerArg(need(0, "lo"), "randint", "lo", loc);
      ir::Value* hi = integerArg(need(1, "hi"), "randint", "hi", loc);
      std::vector<Dim> dims = shapeDims(need(2, "shape"), loc);
      setLoc(loc);
      return TV::dyn(b_.random("int", TensorType(DType::I64, dims), {lo, hi}));
    }
    if (nm == "tree_leaves") {
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
      all(need(0, "tree"));
      return makeSeq(Tag::List, ls);
    }
    if (nm == "tree_map") {
      TV f = need(0, "f");
      std::vector<TV> trees(args.begin() + 1, args.end() - static_cast<long>(kw.size()));
      if (trees.empty()) fail(loc, "tree_map needs a tree");
      std::function<TV(std::vector<TV>)> rec = [&](std::vector<TV> ts) -> TV {
        TV x = expandStatic(ts[0]);
        if (x.k == TV::Seq || x.k == TV::Rec) {
          TV r = x;
          for (size_t i = 0; i < x.items.size(); ++i) {
            std::vector<TV> sub;
            for (auto& t : ts) {
              TV y = expandStatic(t);
              if (y.items.size() != x.items.size()) fail(loc, "tree_map: trees of different structure");
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
    fail(loc, fmt::format("'{}' is not supported inside graph fns yet", nm));
  }

}  // namespace tdl::vm::trace
