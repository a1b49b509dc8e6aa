// The builtins that make and reshape tensors in graph fns.
// One handler per builtin (or family); the dispatch by builtin id is graph/Builtins.cpp.
#include "graph/Tracer.h"
#include "runtime/ShapeOps.h"

namespace tdl::vm::trace {

auto Tracer::bi_transpose(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  ir::Value* x = materialize(bc.need(0, "x"), loc);
  ir::IntList perm;
  TV* p = bc.arg(1, "perm");
  if (p && !(p->isStatic() && p->sv.isNone())) {
    if (!p->isStatic()) fail(loc, "transpose: perm must be known at trace time");
    perm = ints(p->sv, loc);
    int64_t r = x->type.rank();
    for (int64_t& k : perm)  // negative axes count from the end, as eagerly (NumPy's rule)
      if (k < 0 && k >= -r) k += r;
  } else {
    for (int64_t i = x->type.rank(); i-- > 0;) perm.push_back(i);
  }
  setLoc(loc);
  return TV::dyn(guarded(loc, [&] { return b_.transpose(x, perm); }));
}

auto Tracer::bi_zeros(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  std::vector<ir::Value*> sizes;
  TV& shape = bc.need(0, "shape");
  if (isNumeric(shape) && !shape.isStatic() && rt::is_float(typeOf(shape).dtype))  // eager's words
    failEager(loc, fmt::format("{}(): 'shape' must be an integer vector, got {}", nm, describe(shape)));
  std::vector<Dim> dims = shapeDims(shape, loc, false, &sizes, nm.c_str());
  DType d = bc.dtypeArg(nm == "full" ? 2 : 1, "dtype", DType::F32);
  TV fill = nm == "full" ? bc.need(1, "value") : TV::of(Value::weakFloat(nm == "ones" ? 1.0 : 0.0));
  if (nm == "full" && isNumeric(fill) && typeOf(fill).rank() != 0)
    failEager(loc, fmt::format("full(): 'value' must be a scalar, got {}", describe(fill)));
  if (nm == "full" && !bc.arg(2, "dtype")) d = weakOf(fill) ? (fill.isStatic() ? fill.sv.dtype() : usedDtype(fill)) : typeOf(fill).dtype;
  return TV::dyn(broadcastShaped(materialize(fill, loc, d), dims, sizes, loc));
}

auto Tracer::bi_zeros_like(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  ir::Value* x = materialize(bc.need(0, "x"), loc);
  DType d = bc.dtypeArg(1, "dtype", x->type.dtype);
  ir::Value* v = b_.constant(rt::Tensor::scalar_of(d, nm == "ones_like" ? 1 : 0));
  setLoc(loc);
  return TV::dyn(x->type.is_scalar() ? v : b_.broadcast_to(v, x->type.dims));
}

auto Tracer::bi_arange(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  // some bound known only at run time (static calls ran eagerly)
  TV start = TV::of(Value::i64(0, true)), stop = bc.need(0, "start"), step = TV::of(Value::i64(1, true));
  if (TV* hi = bc.arg(1, "stop"); hi && !(hi->isStatic() && hi->sv.isNone())) {
    start = stop;
    stop = *hi;
  }
  if (TV* st = bc.arg(2, "step")) step = *st;
  bool ints = true;
  for (const TV* v : {&start, &stop, &step}) {
    if (!isNumeric(*v) || !typeOf(*v).is_scalar())
      failEager(loc, fmt::format("arange(): bounds must be numbers, got {}", describe(*v)));
    ints = ints && !rt::is_float(typeOf(*v).dtype);
  }
  DType dt = bc.dtypeArg(3, "dtype", ints ? DType::I64 : DType::F32);
  // arange(x.shape[i]) has the size of that dim; otherwise the run time knows it.
  Dim size = Dim::symbolic(f_.fresh_sym());
  if (start.isStatic() && start.sv.asInt() == 0 && step.isStatic() && step.sv.asInt() == 1 && stop.isDyn())
    if (std::optional<Dim> d = countDim(stop)) size = *d;
  DType bt = ints ? DType::I64 : DType::F64;  // the runtime's arange computes in int64 or double
  std::vector<ir::Value*> ops{materialize(start, loc, bt), materialize(stop, loc, bt), materialize(step, loc, bt)};
  setLoc(loc);
  return TV::dyn(guarded(loc, [&] { return b_.create(ir::OpKind::Arange, ops, {TensorType(dt, {size})}, {}).result(); }));
}

auto Tracer::bi_broadcast_to(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  ir::Value* x = materialize(bc.need(0, "x"), loc);
  std::vector<ir::Value*> sizes;
  std::vector<Dim> dims = shapeDims(bc.need(1, "shape"), loc, false, &sizes, nm.c_str());
  return TV::dyn(broadcastShaped(x, dims, sizes, loc));
}

auto Tracer::bi_reshape(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  ir::Value* x = materialize(bc.need(0, "x"), loc);
  if (nm == "reshape" && x->type.is_static()) {  // the runtime's rule and words when both are known
    TV& sh = bc.need(1, "shape");
    if (sh.isStatic()) {
      CallArgs call{&sh.sv, 1, nullptr};
      std::vector<int64_t> spec = guarded(loc, [&] { return Args(nm.c_str(), call, {"shape"}, 1).ints(0); });
      guarded(loc, [&] { return rt::reshape_shape(*x->type.static_shape(), spec); });
    }
  }
  std::vector<ir::Value*> sizes;
  std::vector<Dim> dims =
      nm == "flatten" ? std::vector<Dim>{Dim::known(-1)} : shapeDims(bc.need(1, "shape"), loc, true, &sizes, nm.c_str());
  // Sizes known only at run time, or a -1 over symbolic dims: the run time reshapes.
  if (anyComputed(dims) || !resolveMinusOne(x->type.dims, dims, loc))
    return TV::dyn(dynShaped(ir::OpKind::ReshapeDyn, x, dims, sizes, loc));
  setLoc(loc);
  return TV::dyn(guarded(loc, [&] { return b_.reshape(x, dims); }));
}

auto Tracer::bi_expand_dims(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  ir::Value* x = materialize(bc.need(0, "x"), loc);
  TV& av = bc.need(1, "axis");
  // One axis, or several (NumPy's): positions in the result (rt::expand_dims_positions).
  std::vector<int64_t> axes;
  if (av.isStatic() && (av.sv.isSeq() || av.sv.isTensor())) {
    axes = guarded(loc, [&] {  // eager's reading and words (Args::ints)
      CallArgs one{&av.sv, 1, nullptr};
      return Args("expand_dims", one, {"axis"}, 1).ints(0);
    });
  } else {
    axes = {bc.staticInt(av, "axis")};
  }
  std::vector<Dim> dims = x->type.dims;
  for (int64_t a : guarded(loc, [&] { return rt::expand_dims_positions(static_cast<int64_t>(dims.size()), axes); }))
    dims.insert(dims.begin() + a, Dim::known(1));
  setLoc(loc);
  return TV::dyn(b_.reshape(x, dims));
}

auto Tracer::bi_squeeze(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  ir::Value* x = materialize(bc.need(0, "x"), loc);
  TV* ax = bc.arg(1, "axis");
  std::vector<Dim> dims;
  int64_t r = x->type.rank();
  std::set<int64_t> only;  // the axes asked for (all size-1 axes when none)
  if (ax && !(ax->isStatic() && ax->sv.isNone())) {
    std::vector<int64_t> given = bc.staticAxes(*ax, "axis");
    // The runtime's own rule decides when the shape is known (same checks, same words).
    bool known = true;
    rt::Shape shape;
    for (const Dim& d : x->type.dims) known = known && d.is_known(), shape.push_back(d.is_known() ? d.size : 1);
    if (known) guarded(loc, [&] { return rt::squeeze_shape(shape, rt::Axes(given)); });
    for (int64_t g : given) {
      int64_t k = guarded(loc, [&] { return rt::normalize_axis(g, r); });
      const Dim& d = x->type.dims[static_cast<size_t>(k)];
      if (!d.is_known())
        fail(loc, fmt::format("squeeze: axis {} has a size known only at run time ({})", g, x->type.str()));
      if (d.size != 1) failEager(loc, fmt::format("cannot squeeze axis {} of size {} (shape {})", g, d.size, x->type.str()));
      if (!only.insert(k).second) failEager(loc, fmt::format("axis {} appears twice in squeeze", g));
    }
  } else {
    // Every size-1 axis: which they are must be known (a dim known only at run time may be 1).
    for (const Dim& d : x->type.dims)
      if (!d.is_known())
        fail(loc, fmt::format("squeeze: which axes of {} have size 1 is known only at run time; give the axis", x->type.str()));
  }
  for (int64_t i = 0; i < r; ++i) {
    const Dim& d = x->type.dims[static_cast<size_t>(i)];
    bool one = d.is_known() && d.size == 1;
    if (one && (only.empty() || only.count(i))) continue;
    dims.push_back(d);
  }
  setLoc(loc);
  return TV::dyn(b_.reshape(x, dims));
}

auto Tracer::bi_concat(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV xs = expandStatic(bc.need(0, "xs"));
  if (xs.k != TV::Seq)  // eager's words (vm/BuiltinsTensor.cpp tensorList)
    failEager(loc, fmt::format("{}(): 'xs' must be a list or tuple of tensors, got {}", nm, describe(xs)));
  int64_t axis = bc.arg(1, "axis") ? bc.staticInt(*bc.arg(1, "axis"), "axis") : 0;
  if (xs.items.empty()) failEager(loc, fmt::format("{}: needs at least one tensor", nm));
  for (size_t k = 0; k < xs.items.size(); ++k)
    if (!isNumeric(xs.items[k]))
      failEager(loc, fmt::format("{}(): 'xs' must be a list or tuple of tensors, but item {} is a {}{}", nm, k,
                                 describe(xs.items[k]),
                                 expandStatic(xs.items[k]).k == TV::Seq && xs.items[k].seqTag == Tag::List
                                     ? " (a bracket literal with other than number literals is a list: make it a "
                                       "tensor with stack([...]))"
                                     : ""));
  DType common = commonDtype(xs.items, loc);  // their shapes are the concat op's to check
  if (nm == "stack")  // eager's words for shapes that differ now (not the concat's of [1, ...])
    for (auto& it : xs.items) {
      const ir::TensorType t0 = typeOf(xs.items[0]), ti = typeOf(it);
      bool differ = t0.rank() != ti.rank();
      for (size_t i = 0; !differ && i < t0.dims.size(); ++i)
        differ = t0.dims[i].is_known() && ti.dims[i].is_known() && t0.dims[i].size != ti.dims[i].size;
      if (differ) failEager(loc, fmt::format("cannot stack shapes {} and {}", ir::dims_str(t0.dims), ir::dims_str(ti.dims)));
    }
  std::vector<ir::Value*> parts;
  for (auto& it : xs.items) {
    ir::Value* v = materialize(it, loc, common);
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
  if (r == 0) failEager(loc, "cannot concatenate scalars (rank 0 tensors)");  // eager's words (rt::concat), before the axis's
  if (axis < 0) axis += r;
  setLoc(loc);
  return TV::dyn(guarded(loc, [&] { return b_.concat(parts, axis); }));
}

auto Tracer::bi_tile(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  // NumPy tile: reshape to [1, s0, 1, s1, ...], broadcast to [r0, s0, r1, s1, ...], merge pairs.
  ir::Value* x = materialize(bc.need(0, "x"), loc);
  ir::IntList reps = bc.staticInts(bc.need(1, "reps"), "reps");
  for (int64_t r : reps)  // rt::tile's words
    if (r < 0) failEager(loc, fmt::format("tile: repetitions must be >= 0, got [{}]", fmt::join(reps, ", ")));
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
    else if (int64_t m; dims[i].is_known()) {
      if (__builtin_mul_overflow(dims[i].size, reps[i], &m)) failEager(loc, "tile: the result is too large");
      out.push_back(Dim::known(m));
    }
    else fail(loc, "tile: repeating a dim of unknown size is not supported in graph fns yet");
  }
  // More elements than an i64 counts: eager's words (its allocation of the repeated
  // [r0, s0, r1, s1, ...] fails first).
  rt::Shape wideShape;
  for (const Dim& d : wide) wideShape.push_back(d.is_known() ? d.size : 1);
  if (!rt::checked_numel(wideShape)) guarded(loc, [&] { return rt::Tensor::empty(x->type.dtype, wideShape); });
  setLoc(loc);
  return TV::dyn(guarded(loc, [&] { return b_.reshape(b_.broadcast_to(b_.reshape(x, spread), wide), out); }));
}

auto Tracer::bi_pad(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  // Constant blocks concatenated before and after along each axis.
  ir::Value* x = materialize(bc.need(0, "x"), loc);
  // The widths as eager reads and checks them (padWidthsArg, rt::pad_widths; a size known
  // only at run time counts 0 here, its sum is checked when the result is made, and the
  // shape is named by its dims: a symbol becomes the call's size in a run-time error).
  TV& wv = bc.need(1, "widths");
  bc.requireStatic(wv, "widths");
  rt::Shape sizes;
  for (const Dim& d : x->type.dims) sizes.push_back(d.is_known() ? d.size : 0);
  ir::IntList w;
  for (auto [before, after] : guarded(loc, [&] {
         return rt::pad_widths(sizes, padWidthsArg(wv.sv), nullptr, ir::dims_str(x->type.dims));
       }))
    w.push_back(before), w.push_back(after);
  size_t rank = static_cast<size_t>(x->type.rank());
  // The value in x's dtype (eager's scalarTensor): a number known now, or one known only at
  // run time (a tape follows it: its gradient is the upstream gradient over the padding).
  TV* v = bc.arg(2, "value");
  if (v && !(v->isStatic() && v->sv.isScalar()) && !(v->isDyn() && v->dv->type.rank() == 0))
    failEager(loc, fmt::format("pad(): 'value' must be a scalar, got {}", describe(*v)));
  setLoc(loc);
  ir::Value* fill = nullptr;
  if (!v || v->isStatic()) {
    fill = b_.constant(rt::full({}, v ? v->sv.asDouble() : 0.0, x->type.dtype));
  } else {
    fill = materialize(*v, loc);
    setLoc(loc);
    if (fill->type.dtype != x->type.dtype) fill = b_.cast(fill, x->type.dtype);
  }
  return TV::dyn(guarded(loc, [&] {
    ir::Value* y = x;
    for (size_t ax = 0; ax < rank; ++ax) {
      if (w[2 * ax] == 0 && w[2 * ax + 1] == 0) continue;
      std::vector<ir::Value*> parts;
      auto block = [&](int64_t n) {
        std::vector<Dim> d = y->type.dims;
        d[ax] = Dim::known(n);
        return b_.broadcast_to(fill, d);
      };
      if (w[2 * ax] > 0) parts.push_back(block(w[2 * ax]));
      parts.push_back(y);
      if (w[2 * ax + 1] > 0) parts.push_back(block(w[2 * ax + 1]));
      y = b_.concat(parts, static_cast<int64_t>(ax));
    }
    return y;
  }));
}

auto Tracer::bi_take(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV* ax = bc.arg(2, "axis");
  int64_t axis = ax ? bc.staticInt(*ax, "axis") : 0;
  TV& idx = bc.need(1, "idx");
  if (!isNumeric(idx)) failEager(loc, fmt::format("take(): 'idx' must be a tensor, got {}", annotationText(idx)));
  return gatherTV(bc.need(0, "x"), idx, axis, loc);
}

// The dim a count names where the trace knows it: a non-negative integer known at trace
// time, or the size of a tensor's axis (x.shape[k], maybe symbolic); nullopt otherwise.
auto Tracer::countDim(const TV& nv) -> std::optional<Dim> {
  if (nv.isDyn() && nv.dv->def() && nv.dv->def()->kind() == ir::OpKind::Dim) {
    const ir::Op* op = nv.dv->def();
    return op->operand(0)->type.dims.at(static_cast<size_t>(op->int_attr("axis")));
  }
  if (nv.isStatic() && nv.sv.isScalar() && !nv.sv.isFloatScalar() && nv.sv.dtype() != DType::Bool && nv.sv.asInt() >= 0)
    return Dim::known(nv.sv.asInt());
  return std::nullopt;
}

// 0, 1, ..., n - 1 (i64) for a count n: its countDim, or an integer known only at run time
// (then checked there not to be negative, with `negative` as the message, a {} in it the
// count).
auto Tracer::iotaOf(const TV& nv, const char* negative, const char* fn, const char* param, const Loc& loc) -> ir::Value* {
  if (std::optional<Dim> d = countDim(nv)) {
    setLoc(loc);
    return b_.iota(TensorType(DType::I64, {*d}), 0);
  }
  ir::Value* n = integerArg(nv, fn, param, loc);
  setLoc(loc);
  ir::Value* zero = b_.constant(rt::Tensor::scalar_of(DType::I64, 0));
  b_.assert_true(b_.binary(rt::BinaryOp::Ge, n, zero), negative,
                 std::string(negative).find("{}") == std::string::npos ? std::vector<ir::Value*>{} : std::vector<ir::Value*>{n});
  ir::Value* one = b_.constant(rt::Tensor::scalar_of(DType::I64, 1));
  return b_.create(ir::OpKind::Arange, {zero, n, one}, {TensorType(DType::I64, {Dim::symbolic(f_.fresh_sym())})}, {})
      .result();
}

// eye(n, m=none, dtype=f32) with a size known only at run time (known sizes ran at trace
// time): rows' and columns' indices compared, as many ones as eager's.
auto Tracer::bi_eye(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV nv = bc.need(0, "n");
  TV* mp = bc.arg(1, "m");
  bool square = !mp || (mp->isStatic() && mp->sv.isNone());
  DType d = bc.dtypeArg(2, "dtype", DType::F32);
  ir::Value* rows = iotaOf(nv, "eye(): 'n' must not be negative", "eye", "n", loc);
  ir::Value* cols = square ? rows : iotaOf(*mp, "eye(): 'm' must not be negative", "eye", "m", loc);
  setLoc(loc);
  ir::Value* r = b_.reshape(rows, {rows->type.dims[0], Dim::known(1)});
  return TV::dyn(b_.cast(guarded(loc, [&] { return b_.binary(rt::BinaryOp::Eq, r, cols); }), d));
}

// linspace(start, stop, num, dtype=f32) with a count or bound known only at run time: eager's
// arithmetic (rt::linspace) in f64, start + i * step with step = (stop - start) / (num - 1),
// the last value stop itself, then converted.
auto Tracer::bi_linspace(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV lo = bc.need(0, "start"), hi = bc.need(1, "stop"), nv = bc.need(2, "num");
  for (const TV* v : {&lo, &hi})
    if (!isNumeric(*v) || !typeOf(*v).is_scalar())
      failEager(loc, fmt::format("linspace(): '{}' must be a number, got {}", v == &lo ? "start" : "stop", describe(*v)));
  DType d = bc.dtypeArg(3, "dtype", DType::F32);
  ir::Value* i = iotaOf(nv, "linspace(): 'num' must not be negative", "linspace", "num", loc);
  ir::Value* n = integerArg(nv, "linspace", "num", loc);
  ir::Value* a0 = materialize(lo, loc, DType::F64);
  ir::Value* b0 = materialize(hi, loc, DType::F64);
  setLoc(loc);
  auto c64 = [&](double x) { return b_.constant(rt::Tensor::scalar_of(DType::F64, x)); };
  auto ci = [&](int64_t x) { return b_.constant(rt::Tensor::scalar_of(DType::I64, x)); };
  ir::Value* many = b_.binary(rt::BinaryOp::Gt, n, ci(1));
  ir::Value* last = b_.binary(rt::BinaryOp::Sub, n, ci(1));
  ir::Value* step = b_.select(many, b_.binary(rt::BinaryOp::Div, b_.binary(rt::BinaryOp::Sub, b0, a0), b_.cast(last, DType::F64)),
                              c64(0.0));
  ir::Value* v = b_.binary(rt::BinaryOp::Add, a0, b_.binary(rt::BinaryOp::Mul, b_.cast(i, DType::F64), step));
  ir::Value* isLast = b_.binary(rt::BinaryOp::LogicalAnd, b_.binary(rt::BinaryOp::Eq, i, last), many);
  return TV::dyn(b_.cast(b_.select(isLast, b_.broadcast_to(b0, v->type.dims), v), d));
}

auto Tracer::bi_one_hot(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV iv = bc.need(0, "idx");
  if (!isNumeric(iv) || (typeOf(iv).dtype != DType::I32 && typeOf(iv).dtype != DType::I64))
    failEager(loc, fmt::format("one_hot: indices must be integers, got {}", describe(iv)));  // eager's words
  ir::Value* idx = materialize(iv, loc, DType::I64);
  // n: known at trace time, or the size of a tensor's axis (maybe symbolic: x.shape[k]).
  TV nv = bc.need(1, "n");
  if (nv.isStatic()) {
    int64_t n = bc.staticInt(nv, "n");
    if (n < 0) failEager(loc, fmt::format("one_hot: the depth must be >= 0, got {}", n));
  }
  DType d = bc.dtypeArg(2, "dtype", DType::F32);
  ir::Value* io = iotaOf(nv, "one_hot: the depth must be >= 0, got {}", "one_hot", "n", loc);
  std::vector<Dim> ed = idx->type.dims;
  ed.push_back(Dim::known(1));
  ir::Value* e = b_.reshape(idx, ed);
  return TV::dyn(b_.cast(guarded(loc, [&] { return b_.binary(rt::BinaryOp::Eq, e, io); }), d));
}

}  // namespace tdl::vm::trace
