// Helpers of the builtins: print formats, static strings and integer lists, shapes (with
// sizes known at run time) and reshapes. (graph/Tracer.h)
#include "graph/Tracer.h"

namespace tdl::vm::trace {

auto Tracer::escapeBraces(const std::string& s) -> std::string {
  std::string r;
  for (char c : s) {
    if (c == '{' || c == '}') r += c;
    r += c;
  }
  return r;
}

auto Tracer::staticString(const TV& t, const char* what, const Loc& loc) -> std::string {
  if (!t.isStatic() || !t.sv.isStr()) fail(loc, fmt::format("'{}' must be a string known at trace time", what));
  return t.sv.as<StrObj>()->s;
}

auto Tracer::formatOf(const TV& t, std::vector<ir::Value*>& holes, const Loc& loc, bool top) -> std::string {
  if (t.isStatic()) {
    try {
      return escapeBraces(top ? str(t.sv) : repr(t.sv));
    } catch (const rt::Error& e) {
      failEager(loc, e.what());
    }
  }
  if (t.isDyn()) {
    holes.push_back(materialize(t, loc));  // a weak float prints as f32, as eagerly
    return "{}";
  }
  if (t.k == TV::Fmt) {
    for (const TV& h : t.items) holes.push_back(h.dv);
    const std::string& f = t.sv.as<StrObj>()->s;
    return top ? f : "\"" + f + "\"";
  }
  if (t.k == TV::Seq) {
    std::string s = t.seqTag == Tag::List ? "[" : "(";
    for (size_t i = 0; i < t.items.size(); ++i) {
      if (i) s += ", ";
      s += formatOf(t.items[i], holes, loc, false);
    }
    if (t.seqTag == Tag::Tuple && t.items.size() == 1) s += ",";
    return s + (t.seqTag == Tag::List ? "]" : ")");
  }
  // Records and dicts: their fields between the layout directives of rt::fill_format, which
  // lays them out as the eager VM's print does (rt::TextLayout).
  if (t.k == TV::Rec) {
    std::string s = "{{{<}";
    for (size_t i = 0; i < t.items.size(); ++i) {
      if (i) s += "{,}";
      std::string name = t.seqTag == Tag::Dict ? "\"" + (*t.names)[i] + "\"" : (*t.names)[i];
      s += escapeBraces(name) + ": " + formatOf(t.items[i], holes, loc, false);
    }
    return s + "{>}}}";
  }
  fail(loc, fmt::format("cannot print a {} in a graph fn", describe(t)));
}

auto Tracer::ints(const Value& v, const Loc& loc) -> ir::IntList {
  ir::IntList r;
  try {
    if (v.isSeq()) for (auto& x : v.as<SeqObj>()->items) r.push_back(x.asInt());
    else if (v.isTensor()) {
      const rt::Tensor& t = v.as<TensorObj>()->t;
      for (int64_t i = 0; i < t.numel(); ++i) r.push_back(t.item_int64(i));
    } else r.push_back(v.asInt());
  } catch (const rt::Error& e) {
    failEager(loc, e.what());
  }
  return r;
}

auto Tracer::shapeDims(const TV& s, const Loc& loc, bool allowMinusOne, std::vector<ir::Value*>* sizes, const char* fn)
    -> std::vector<Dim> {
  std::vector<Dim> dims;
  if (fn && s.isStatic()) {
    // A shape known at trace time: eager's own rule and words (a list of integers, an
    // integer vector; no negative size, except reshape's -1).
    CallArgs call{&s.sv, 1, nullptr};
    guarded(loc, [&] {
      Args a(fn, call, {"shape"}, 1);
      return allowMinusOne ? a.ints(0) : a.shape(0);
    });
  }
  TV x = expandStatic(s);
  auto one = [&](const TV& d) {
    if (d.isStatic()) {
      int64_t n = d.sv.asInt();
      if (n < 0 && !(allowMinusOne && n == -1)) failEager(loc, fmt::format("negative dimension {}", n));
      dims.push_back(Dim::known(n));
      if (sizes) sizes->push_back(nullptr);
      return;
    }
    if (d.isDyn() && d.dv->def() && d.dv->def()->kind() == ir::OpKind::Constant && d.dv->type.is_scalar()) {
      int64_t n = d.dv->def()->tensor_attr("value").item_int64(0);  // x.shape's known dims
      if (n < 0 && !(allowMinusOne && n == -1)) failEager(loc, fmt::format("negative dimension {}", n));
      dims.push_back(Dim::known(n));
      if (sizes) sizes->push_back(nullptr);
      return;
    }
    if (d.isDyn() && d.dv->def() && d.dv->def()->kind() == ir::OpKind::Dim) {
      const ir::Op* op = d.dv->def();
      dims.push_back(op->operand(0)->type.dims.at(static_cast<size_t>(op->int_attr("axis"))));
      if (sizes) sizes->push_back(dims.back().is_known() ? nullptr : d.dv);
      return;
    }
    if (sizes && isNumeric(d) && typeOf(d).is_scalar()) {
      sizes->push_back(integerIndex(d, loc));
      dims.push_back(Dim::symbolic(ir::kAnyDim));
      return;
    }
    fail(loc, "a shape inside a graph fn must be known at trace time or made of the dims of tensors");
  };
  if (x.k == TV::Seq) {
    for (auto& i : x.items) one(i);
    // Sizes known only at run time: checked there with eager mode's words (vm/Builtins.cpp).
    if (fn && sizes && !allowMinusOne) {
      std::string format = fmt::format("{}(): 'shape' has a negative size in [", fn);
      std::vector<ir::Value*> holes;
      ir::Value* ok = nullptr;
      for (size_t i = 0; i < dims.size(); ++i) {
        if (i) format += ", ";
        ir::Value* n = i < sizes->size() ? (*sizes)[i] : nullptr;
        if (!n) {
          format += dims[i].is_known() ? std::to_string(dims[i].size) : std::string("?");
          continue;
        }
        format += "{}";
        holes.push_back(n);
        if (n->def() && n->def()->kind() == ir::OpKind::Dim) continue;  // a tensor's dim: never negative
        setLoc(loc);
        ir::Value* nonneg = b_.binary(rt::BinaryOp::Ge, n, b_.constant(rt::Tensor::scalar_of(n->type.dtype, 0)));
        ok = ok ? b_.binary(rt::BinaryOp::LogicalAnd, ok, nonneg) : nonneg;
      }
      format += "]";
      if (ok) b_.assert_true(ok, format, holes);
    }
    return dims;
  }
  if (x.isStatic()) {
    for (int64_t n : ints(x.sv, loc)) one(TV::of(Value::i64(n)));
    return dims;
  }
  if (x.isDyn() && x.dv->type.rank() == 1 && x.dv->type.dims[0].is_known()) {
    // x.shape of a symbolic tensor: a concat of dims
    const ir::Op* op = x.dv->def();
    if (op && op->kind() == ir::OpKind::Concat) {
      for (ir::Value* part : op->operands()) {
        const ir::Op* rs = part->def();
        if (rs && rs->kind() == ir::OpKind::Reshape) one(TV::dyn(rs->operand(0)));
        else if (rs && rs->kind() == ir::OpKind::Constant) one(TV::of(Value::i64(rs->tensor_attr("value").item_int64(0))));
        else fail(loc, "a shape inside a graph fn must be known at trace time");
      }
      return dims;
    }
  }
  fail(loc, "a shape inside a graph fn must be known at trace time or made of the dims of tensors");
}

auto Tracer::dynShaped(ir::OpKind kind, ir::Value* x, std::vector<Dim> dims, const std::vector<ir::Value*>& sizes, const Loc& loc) -> ir::Value* {
  ir::IntList shape;
  std::vector<ir::Value*> ops{x};
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i < sizes.size() && sizes[i]) {
      shape.push_back(-2);
      ops.push_back(sizes[i]);
    } else if (dims[i].is_known() && dims[i].size == -1) {
      shape.push_back(-1);
      dims[i] = Dim::symbolic(ir::kAnyDim);
    } else if (dims[i].is_known()) {
      shape.push_back(dims[i].size);
    } else {
      fail(loc, "internal: a symbolic dim without its size");
    }
  }
  setLoc(loc);
  for (Dim& d : dims)
    if (ir::is_any_dim(d)) d = Dim::symbolic(f_.fresh_sym());
  TensorType t(x->type.dtype, dims);
  return guarded(loc, [&] { return b_.create(kind, ops, {t}, {{"shape", shape}}).result(); });
}

auto Tracer::broadcastShaped(ir::Value* x, const std::vector<Dim>& dims, const std::vector<ir::Value*>& sizes,
                             const Loc& loc) -> ir::Value* {
  if (anyComputed(dims)) return dynShaped(ir::OpKind::BroadcastDyn, x, dims, sizes, loc);
  setLoc(loc);
  return guarded(loc, [&] { return b_.broadcast_to(x, dims); });
}

auto Tracer::anyComputed(const std::vector<Dim>& dims) -> bool {
  for (const Dim& d : dims)
    if (ir::is_any_dim(d)) return true;
  return false;
}

auto Tracer::resolveMinusOne(const std::vector<Dim>& from, std::vector<Dim>& to, const Loc& loc) -> bool {
  int minus = -1;
  int64_t known = 1;
  for (size_t i = 0; i < to.size(); ++i) {
    if (to[i].is_known() && to[i].size == -1) {
      if (minus >= 0) failEager(loc, "reshape: only one -1 is allowed");
      minus = static_cast<int>(i);
    } else if (to[i].is_known()) known *= to[i].size;
  }
  if (minus < 0) return true;
  int64_t total = 1;
  for (auto& d : from) {
    if (!d.is_known()) {
      // x of shape [N, 4] to [-1] etc.: only when the symbolic dims match one to one
      std::vector<Dim> rest;
      for (auto& e : to) if (!(e.is_known() && e.size == -1)) rest.push_back(e);
      std::vector<Dim> fsym;
      int64_t fk = 1;
      for (auto& e : from) if (e.is_known()) fk *= e.size; else fsym.push_back(e);
      bool tosym = false;
      for (auto& e : rest) tosym = tosym || !e.is_known();
      if (fsym.size() == 1 && !tosym && known != 0 && fk % known == 0 && fk / known == 1) {
        to[static_cast<size_t>(minus)] = fsym[0];
        return true;
      }
      return false;
    }
    total *= d.size;
  }
  if (known == 0 || total % known != 0) failEager(loc, fmt::format("cannot reshape {} into the requested shape", ir::dims_str(from)));
  to[static_cast<size_t>(minus)] = Dim::known(total / known);
  return true;
}

}  // namespace tdl::vm::trace
