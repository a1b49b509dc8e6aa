// The math builtins in graph fns: elementwise ops, where, casts, reductions, products.
// One handler per builtin (or family); the dispatch by builtin id is graph/Builtins.cpp.
#include "graph/Tracer.h"
#include "runtime/Print.h"

namespace tdl::vm::trace {

auto Tracer::bi_unaryOp(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  auto u = rt::unary_by_name(nm);
  return unop(*u, bc.numeric(bc.need(0, "x"), "x"), loc);
}

auto Tracer::bi_binaryOp(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  auto bop = rt::binary_by_name(nm);
  rt::BinaryParams p = rt::binary_params(*bop);
  TV* second = bc.arg(1, p.b.c_str());
  TV x = bc.numeric(bc.need(0, p.a.c_str()), p.a.c_str());
  TV y = second ? bc.numeric(*second, p.b.c_str()) : TV::of(Value::weakFloat(p.b_default.value_or(0)));
  // Weak numbers only: each its default dtype (a weak float f32), as eagerly; with a strong
  // operand a weak one takes its dtype exactly (0.1 with an f64 tensor is 0.1: binop).
  if (weakOf(x) && weakOf(y)) x = asArg(x, loc), y = asArg(y, loc);
  return binop(*bop, x, y, loc);
}

auto Tracer::bi_clip(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV x = bc.need(0, "x"), lo = bc.need(1, "lo"), hi = bc.need(2, "hi");
  // NumPy's: one bound may be none (no limit on that side), not both (eager's words).
  auto none = [](const TV& v) { return v.isStatic() && v.sv.isNone(); };
  if (none(lo) && none(hi)) failEager(loc, "clip(): 'lo' and 'hi' cannot both be none");
  bc.numeric(x, "x");
  if (!none(lo)) bc.numeric(lo, "lo", "a tensor or none");
  if (!none(hi)) bc.numeric(hi, "hi", "a tensor or none");
  const bool open = none(lo) || none(hi);
  if (open) {
    TV& bound = none(lo) ? hi : lo;
    if (weakOf(x) && weakOf(bound)) x = asArg(x, loc), bound = asArg(bound, loc);  // as bi_binaryOp
    return binop(none(lo) ? rt::BinaryOp::Minimum : rt::BinaryOp::Maximum, x, bound, loc);
  }
  if (weakOf(x) && weakOf(lo) && weakOf(hi)) x = asArg(x, loc), lo = asArg(lo, loc), hi = asArg(hi, loc);  // as bi_binaryOp
  return binop(rt::BinaryOp::Minimum, binop(rt::BinaryOp::Maximum, x, lo, loc), hi, loc);
}

auto Tracer::bi_where(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV c = bc.need(0, "cond"), x = bc.need(1, "a"), y = bc.need(2, "b");
  for (const TV* v : {&x, &y})
    if (!isNumeric(*v)) failEager(loc, fmt::format("where(): 'a' and 'b' must be numbers or tensors, got {}", describe(*v)));
  DType d = commonDtype({x, y}, loc);  // weak scalars take the other's dtype; bools stay bool
  ir::Value* cv = materialize(c, loc, DType::Bool);
  ir::Value *xv = weakOperand(x, d, loc), *yv = weakOperand(y, d, loc);
  setLoc(loc);
  return TV::dyn(guarded(loc, [&] { return b_.select(cv, xv, yv); }), weakOf(x) && weakOf(y));
}

auto Tracer::bi_cast(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  return castTV(bc.need(0, "x"), bc.dtypeArg(1, "dtype", DType::F32), loc);
}

auto Tracer::bi_int(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  // of a number (a rank-0 tensor), as eagerly
  TV& x = bc.need(0, "x");
  if (!x.isStatic() && !(isNumeric(x) && typeOf(x).is_scalar()))
    failEager(loc, fmt::format("{}(): 'x' must be a number, got {}", nm, describe(x)));
  TV xa = asArg(x, loc);  // a weak float: its f32 first, as eagerly
  // NaN, an infinity or a float beyond i64: eager's error, when the fn runs (a constant one
  // too: it may be in a branch that never runs).
  if (nm == "int" && isNumeric(xa) && rt::is_float(usedDtype(xa)) &&
      !(xa.isStatic() && xa.sv.isScalar() && floatFitsI64(strong(xa.sv).asDouble()))) {  // a fitting constant stays one
    ir::Value* xv = materialize(xa, loc);
    DType fd = xv->type.dtype;
    setLoc(loc);
    ir::Value* ok = b_.binary(
        rt::BinaryOp::BitAnd, b_.binary(rt::BinaryOp::Ge, xv, b_.constant(rt::Tensor::scalar_of(fd, kI64FloatLow))),
        b_.binary(rt::BinaryOp::Lt, xv, b_.constant(rt::Tensor::scalar_of(fd, kI64FloatHigh))));  // floatFitsI64; false for NaN
    b_.assert_true(ok, kIntOfFloatError, {xv});
    xa = TV::dyn(xv);
  }
  TV r = castTV(xa, nm == "int" ? DType::I64 : DType::F32, loc);
  if (nm == "int" || !r.isDyn()) return r;
  // float(x) is a number, not a tensor a tape follows (eager's Python float; PyTorch's
  // float(t) detaches): no gradient flows through it.
  setLoc(loc);
  return TV::dyn(b_.create(ir::OpKind::CallRuntime, {r.dv}, {r.dv->type},
                           ir::AttrMap{{"callee", std::string("detach")}, {"where", whereText(loc)}})
                     .result());
}

// argmax / argmin over several axes (a tuple, not all of them) or none (`axis=()`), as
// eagerly: the flat index within each block of the reduced axes, in x's axis order (the kept
// axes first, the reduced ones merged last); over no axis, zeros.
auto Tracer::argOverAxes(const std::string& nm, ir::Value* xv, ir::IntList axes, bool keep, const Loc& loc) -> TV {
  int64_t rank = xv->type.rank();
  std::sort(axes.begin(), axes.end());
  std::vector<Dim> keptDims;
  std::vector<ir::Value*> keptSizes;
  ir::IntList perm;
  bool symbolic = false;
  int64_t block = 1;
  for (int64_t a = 0; a < rank; ++a) {
    const Dim& d = xv->type.dims[static_cast<size_t>(a)];
    if (std::binary_search(axes.begin(), axes.end(), a)) {
      if (d.is_known()) block *= d.size;
      else symbolic = true;
      continue;
    }
    perm.push_back(a);
    keptDims.push_back(d);
    setLoc(loc);
    keptSizes.push_back(d.is_known() ? nullptr : b_.dim(xv, a));
    symbolic = symbolic || !d.is_known();
  }
  setLoc(loc);
  if (axes.empty()) {  // nothing reduced: index 0 everywhere, x's shape
    ir::Value* zero = b_.constant(rt::Tensor::scalar(int64_t{0}));
    return TV::dyn(broadcastShaped(zero, keptDims, keptSizes, loc));
  }
  if (block == 0) failEager(loc, fmt::format("cannot take {} over an empty axis (shape {})", nm, ir::dims_str(xv->type.dims)));
  perm.insert(perm.end(), axes.begin(), axes.end());
  ir::Value* xt = guarded(loc, [&] { return b_.transpose(xv, perm); });
  std::vector<Dim> merged = keptDims;
  merged.push_back(Dim::known(symbolic ? -1 : block));
  ir::Value* x2 = symbolic ? dynShaped(ir::OpKind::ReshapeDyn, xt, merged, keptSizes, loc)
                           : guarded(loc, [&] { return b_.reshape(xt, merged); });
  int64_t last = static_cast<int64_t>(keptDims.size());
  setLoc(loc);
  TV r = TV::dyn(guarded(loc, [&] { return nm == "argmax" ? b_.argmax(x2, last, false) : b_.argmin(x2, last, false); }));
  if (keep)
    for (int64_t a : axes) {
      std::vector<TV> args{r, TV::of(Value::i64(a))};
      r = builtin(builtinId("expand_dims"), args, {}, loc);
    }
  return r;
}

auto Tracer::bi_sum(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV x = bc.need(0, "x");
  TV* ax = bc.arg(1, "axis");
  const bool python = reducesSequence(nm) && !(ax && !(ax->isStatic() && ax->sv.isNone()));
  if (python && x.isStatic() && x.sv.tag() == Tag::Range) x = TV::of(guarded(loc, [&] { return rangeTensor(*x.sv.as<RangeObj>()); }));
  if (python && x.k == TV::Range) {  // bounds known only at run time: arange's vector
    std::vector<TV> bounds = x.items;
    x = builtin(builtinId("arange"), bounds, {}, loc);
  }
  if (!isNumeric(x)) {
    TV e = expandStatic(x);
    if (e.k == TV::Seq && python) {
      // Python's sum/max/min/any/all of a list (vm/ValueOps.h reducesSequence): eager's rule
      bool strings = !e.items.empty();
      for (const TV& item : e.items) strings = strings && item.isStatic() && item.sv.isStr();
      if (strings) {
        std::vector<Value> values;
        for (const TV& item : e.items) values.push_back(item.sv);
        return TV::of(guarded(loc, [&] { return extremeOfStrings(nm, values); }));
      }
      std::string bad;
      bool badTensor = false;
      for (const TV& item : e.items)
        if (!isNumeric(item) || typeOf(item).rank() != 0) {
          bad = describe(item);
          badTensor = isNumeric(item);
          break;
        }
      if (std::string m = sequenceReduceError(nm, e.items.size(), bad, badTensor); !m.empty()) failEager(loc, m);
      if (e.items.empty()) return TV::of(emptySequenceReduce(nm));
      std::vector<TV> one{e};
      std::vector<TV> rest{builtin(builtinId("stack"), one, {}, loc)};
      std::vector<std::string> names;  // of the keyword arguments, the last of rest
      if (TV* kd = bc.arg(2, "keepdims")) rest.push_back(*kd), names.push_back("keepdims");
      return builtin(builtinId(nm), rest, names, loc);
    }
    failEager(loc, tensorParamError(nm, "x", describe(x), e.k == TV::Seq));
  }
  ir::Value* xv = materialize(x, loc);
  int64_t rank = xv->type.rank();
  if (std::string m = extremeOfNumberError(nm, rank, ax && !(ax->isStatic() && ax->sv.isNone())); !m.empty()) failEager(loc, m);
  TV* kd = bc.arg(2, "keepdims");
  bool keep = false;
  if (kd) {
    if (!kd->isStatic()) fail(loc, fmt::format("{}: keepdims must be known at trace time", nm));
    keep = kd->sv.asBool();
  }
  ir::IntList axes;
  bool all = !ax || (ax->isStatic() && ax->sv.isNone());
  if (all) for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  else {
    std::vector<int64_t> given = bc.staticAxes(*ax, "axis");
    guarded(loc, [&] { return rt::reduction_mask(given, rank); });  // eager's check and words (a repeated axis)
    for (int64_t k : given) axes.push_back(guarded(loc, [&] { return rt::normalize_axis(k, rank); }));
  }
  setLoc(loc);
  if (nm == "argmax" || nm == "argmin") {
    if (!all && axes.size() != 1 && rank > 0) return argOverAxes(nm, xv, axes, keep, loc);
    if (axes.size() != 1) {
      if (rank == 0) axes = {0};
      else {
        std::vector<Dim> flat{Dim::known(1)};
        bool symbolic = false;
        for (auto& d : xv->type.dims) {
          if (!d.is_known()) symbolic = true;
          else flat[0].size *= d.size;
        }
        // Eager's error for an empty x, naming its shape (not the flattened one): now where
        // the shape is known, else a run-time check with its sizes.
        if (!symbolic && flat[0].size == 0)
          failEager(loc, fmt::format("cannot take {} over an empty axis (shape {})", nm, ir::dims_str(xv->type.dims)));
        if (symbolic && flat[0].size != 0) {
          setLoc(loc);
          std::string format = fmt::format("cannot take {} over an empty axis (shape [", nm);
          std::vector<ir::Value*> holes;
          ir::Value* count = b_.constant(rt::Tensor::scalar(int64_t{1}));
          for (size_t i = 0; i < xv->type.dims.size(); ++i) {
            const Dim& d = xv->type.dims[i];
            if (i) format += ", ";
            if (d.is_known()) {
              format += std::to_string(d.size);
              continue;
            }
            format += "{}";
            holes.push_back(b_.dim(xv, static_cast<int64_t>(i)));
            count = b_.binary(rt::BinaryOp::Mul, count, holes.back());
          }
          b_.assert_true(b_.binary(rt::BinaryOp::Ne, count, b_.constant(rt::Tensor::scalar(int64_t{0}))), format + "])",
                         holes);
        }
        // flattened (its size known at run time when dims are symbolic)
        xv = symbolic ? dynShaped(ir::OpKind::ReshapeDyn, xv, {Dim::known(-1)}, {}, loc) : b_.reshape(xv, flat);
        axes = {0};
      }
    }
    if (rank == 0) return TV::of(Value::i64(0));
    ir::Value* r = guarded(loc, [&] { return nm == "argmax" ? b_.argmax(xv, axes[0], keep) : b_.argmin(xv, axes[0], keep); });
    // over every axis with keepdims: a 1 for each axis of x (NumPy's shape), not the flattened one
    if (keep && all && rank > 1) r = b_.reshape(r, std::vector<Dim>(static_cast<size_t>(rank), Dim::known(1)));
    return TV::dyn(r);
  }
  rt::ReduceOp op = *ir::reduce_kind_from_name(nm);
  return TV::dyn(guarded(loc, [&] { return b_.reduce(op, xv, axes, keep); }));
}

auto Tracer::bi_matmul(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  TV av = bc.need(0, "a"), bv = bc.need(1, "b");
  if (nm == "dot" && isNumeric(av) && isNumeric(bv)) {
    // NumPy's dot where it is not matmul (rt::dot, eager's): a scalar operand multiplies;
    // a[..., k] . b[B..., k, n] is a.shape[:-1] + B + [n], a matrix product of a's rows and b
    // with its k axis first, flattened.
    int64_t ra = typeOf(av).rank(), rb = typeOf(bv).rank();
    if (ra == 0 || rb == 0) return binop(rt::BinaryOp::Mul, av, bv, loc);
    if (rb >= 2 && (ra > 2 || rb > 2)) {
      auto call = [&](const char* f, std::vector<TV> xs) { return builtin(builtinId(f), xs, {}, loc); };
      auto ints = [&](const std::vector<int64_t>& v) {
        std::vector<TV> items;
        for (int64_t i : v) items.push_back(TV::of(Value::i64(i)));
        return makeSeq(Tag::List, items);
      };
      std::vector<int64_t> perm{rb - 2};
      for (int64_t d = 0; d < rb; ++d)
        if (d != rb - 2) perm.push_back(d);
      TV k = dimTV(bv, rb - 2, loc), ka = dimTV(av, ra - 1, loc);
      // Eager's error names the operands' shapes (not the reshaped ones the product sees):
      // now where both sizes are known, else checked when it runs.
      ir::Value *xa = materialize(av, loc), *xb = materialize(bv, loc);
      const Dim &da = xa->type.dims.back(), &db = xb->type.dims[static_cast<size_t>(rb - 2)];
      if (da.is_known() && db.is_known() && da.size != db.size)
        failEager(loc, fmt::format("cannot multiply shapes {} and {} ({} != {})", ir::dims_str(xa->type.dims),
                                   ir::dims_str(xb->type.dims), da.size, db.size));
      if (!(da == db)) {
        std::vector<ir::Value*> holes;
        auto shape = [&](ir::Value* x) {
          std::vector<std::string> parts;
          for (size_t i = 0; i < x->type.dims.size(); ++i) {
            if (x->type.dims[i].is_known()) {
              parts.push_back(std::to_string(x->type.dims[i].size));
              continue;
            }
            parts.push_back("{}");
            setLoc(loc);
            holes.push_back(b_.dim(x, static_cast<int64_t>(i)));
          }
          return fmt::format("[{}]", fmt::join(parts, ", "));
        };
        std::string sa = shape(xa), sb = shape(xb);  // in order: the holes follow the text
        std::string format = fmt::format("cannot multiply shapes {} and {} ({{}} != {{}})", sa, sb);
        ir::Value *ia = integerIndex(ka, loc), *ib = integerIndex(k, loc);
        holes.push_back(ia);
        holes.push_back(ib);
        setLoc(loc);
        b_.assert_true(b_.binary(rt::BinaryOp::Eq, ia, ib), format, holes);
      }
      TV b2 = call("reshape", {call("transpose", {bv, ints(perm)}), makeSeq(Tag::List, {k, TV::of(Value::i64(-1))})});
      TV a2 = call("reshape", {av, makeSeq(Tag::List, {TV::of(Value::i64(-1)), ka})});
      std::vector<TV> out;
      for (int64_t d = 0; d + 1 < ra; ++d) out.push_back(dimTV(av, d, loc));
      for (int64_t d = 0; d + 2 < rb; ++d) out.push_back(dimTV(bv, d, loc));
      out.push_back(dimTV(bv, rb - 1, loc));
      return call("reshape", {call("matmul", {a2, b2}), makeSeq(Tag::List, out)});
    }
  }
  ir::Value *x = materialize(av, loc), *y = materialize(bv, loc);
  setLoc(loc);
  return TV::dyn(guarded(loc, [&] { return b_.matmul(x, y); }));
}

auto Tracer::bi_outer(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
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
  return binop(rt::BinaryOp::Mul, flatTo(bc.need(0, "a"), true), flatTo(bc.need(1, "b"), false), loc);
}

}  // namespace tdl::vm::trace
