// Reverse-mode autodiff on the IR: one case per GradRules.def entry.
#include "ir/autodiff/Grad.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <map>
#include <set>
#include <stdexcept>

#include "ir/Parser.h"
#include "runtime/Create.h"
#include "runtime/Adjoint.h"
#include "runtime/OpMath.h"
#include "runtime/Reduce.h"

namespace tdl::ir::autodiff {

bool has_grad_rule(OpKind kind) {
  if (auto b = as_binary(kind)) return (rt::props(*b) & rt::kDiff) != 0;
  if (auto u = as_unary(kind)) return (rt::props(*u) & rt::kDiff) != 0;
  switch (kind) {
#define IR_GRAD(k, f) case OpKind::k:
#include "ir/autodiff/GradRules.def"
    return true;
    default: return false;
  }
}

namespace {

using Adj = std::map<Value*, Value*>;

bool isFloat(const Value* v) { return rt::is_float(v->type.dtype); }

// The float values read inside op's regions (skipping region `skip`) and defined outside.
void freeValues(const Op& op, Block& b, std::vector<Value*>& out, std::set<Value*>& seen) {
  for (size_t i = 0; i < b.size(); ++i) {
    Op& o = b.op(i);
    for (Value* v : o.operands())
      if (isFloat(v) && !defined_inside(v, &op) && seen.insert(v).second) out.push_back(v);
    for (size_t r = 0; r < o.num_regions(); ++r) freeValues(op, o.region(r).block(), out, seen);
  }
}

}  // namespace

// g (a slice x[start:stop:step, ...] of a tensor with dims `dims`) placed back into zeros
// of those dims, one axis at a time (known dims; any step).
Value* scatter_slice(Builder& b_, Value* g, const std::vector<Dim>& xdims, const IntList& start, const IntList& stop,
                     const IntList& step) {
  auto zeros = [&](const TensorType& t) -> Value* {
    if (auto s = t.static_shape()) return b_.constant(rt::zeros(*s, t.dtype));
    return b_.broadcast_to(b_.constant(rt::zeros({}, t.dtype)), t.dims);
  };
  auto withOne = [](std::vector<Dim> d, size_t at) {
    d.insert(d.begin() + static_cast<std::ptrdiff_t>(at), Dim::known(1));
    return d;
  };
  for (size_t ax = 0; ax < start.size(); ++ax) {
    const Dim& d = xdims[ax];
    int64_t s = start[ax], e = stop[ax], st = step[ax];
    if (s == 0 && e == INT64_MAX && st == 1) continue;
    const Dim& gd = g->type.dims[ax];
    if (!d.is_known() || !gd.is_known() || st == 0)
      throw ShapeError("a slice of a symbolic dim cannot be scattered (its gradient, or a slice assignment) yet");
    int64_t n = d.size, m = gd.size;
    int64_t first = 0;  // x index of g's first element along ax (after reversing a negative step)
    if (st > 0) {
      first = s < 0 ? std::max<int64_t>(s + n, 0) : std::min(s, n);
    } else {
      int64_t s0 = s == INT64_MAX ? n - 1 : (s < 0 ? std::max<int64_t>(s + n, -1) : std::min(s, n - 1));
      first = s0 + (m - 1) * st;
      IntList rs(g->type.dims.size(), 0), re(g->type.dims.size(), INT64_MAX), rp(g->type.dims.size(), 1);
      rs[ax] = INT64_MAX;
      re[ax] = INT64_MIN;
      rp[ax] = -1;
      if (m > 1) g = b_.slice(g, rs, re, rp);
      st = -st;
    }
    auto dimsWith = [&](std::vector<Dim> dims, size_t at, int64_t k) {
      dims[at] = Dim::known(k);
      return dims;
    };
    if (m == 0) {
      g = zeros(TensorType(g->type.dtype, dimsWith(g->type.dims, ax, n)));
      continue;
    }
    if (st > 1) {  // interleave st - 1 zeros after each element
      std::vector<Dim> d1 = withOne(g->type.dims, ax + 1);
      Value* g1 = b_.reshape(g, d1);
      Value* z = zeros(TensorType(g->type.dtype, dimsWith(d1, ax + 1, st - 1)));
      Value* c = b_.concat({g1, z}, static_cast<int64_t>(ax + 1));
      g = b_.reshape(c, dimsWith(g->type.dims, ax, m * st));
      int64_t len = std::min(m * st, n - first);
      IntList ss(g->type.dims.size(), 0), se(g->type.dims.size(), INT64_MAX), sp(g->type.dims.size(), 1);
      se[ax] = len;
      if (len != m * st) g = b_.slice(g, ss, se, sp);
    }
    int64_t len = g->type.dims[ax].size;
    std::vector<Value*> parts;
    if (first > 0) parts.push_back(zeros(TensorType(g->type.dtype, dimsWith(g->type.dims, ax, first))));
    parts.push_back(g);
    if (n - first - len > 0) parts.push_back(zeros(TensorType(g->type.dtype, dimsWith(g->type.dims, ax, n - first - len))));
    if (parts.size() > 1) g = b_.concat(parts, static_cast<int64_t>(ax));
  }
  return g;
}

namespace {

namespace adjoint = rt::adjoint;

rt::ReduceOp reduceOpNamed(const std::string& kind) {
  for (int i = 0; i <= static_cast<int>(rt::ReduceOp::LogSumExp); ++i)
    if (rt::reduce_op_name(static_cast<rt::ReduceOp>(i)) == kind) return static_cast<rt::ReduceOp>(i);
  throw std::logic_error("internal: reduce kind " + kind);
}


// The run-time sizes of a forward value's symbolic dims, where the backward region cannot
// read them from the symbol table: inside a loop's backward, a symbol that the forward body
// binds anew each iteration (a tensor growing or shrinking in the loop) holds its last
// iteration's size. Empty: the table's sizes are right.
using DynDims = std::vector<Value*>;

// broadcast_dyn / reshape_dyn of g to `to`'s dims: attr shape -2 at its symbolic dims, whose
// sizes `dyn` gives in order.
Value* toDynShape(Builder& b, OpKind kind, Value* g, const TensorType& to, const DynDims& dyn) {
  IntList shape;
  for (const Dim& d : to.dims) shape.push_back(d.is_known() ? d.size : -2);
  std::vector<Value*> ops{g};
  ops.insert(ops.end(), dyn.begin(), dyn.end());
  return b.create(kind, ops, {TensorType(g->type.dtype, to.dims)}, AttrMap{{"shape", shape}}).result();
}

// g broadcast to `to`'s dims; `dyn`: the sizes of its symbolic dims, in order.
Value* broadcastTo(Builder& b, Value* g, const TensorType& to, const DynDims& dyn) {
  return dyn.empty() ? b.broadcast_to(g, to.dims) : toDynShape(b, OpKind::BroadcastDyn, g, to, dyn);
}

Value* zerosOf(Builder& b, const TensorType& t, const DynDims& dyn = {}) {
  if (auto s = t.static_shape()) return b.constant(rt::zeros(*s, t.dtype));
  return broadcastTo(b, b.constant(rt::zeros({}, t.dtype)), t, dyn);
}

// rt::sum_to at run time: g summed to `to`'s shape, once its symbols are known (from the
// table, or `dyn`: operands after g, the sizes of to's symbolic dims in order).
Value* sumTo(Builder& b, Value* g, const TensorType& to, const DynDims& dyn) {
  std::vector<Value*> ops{g};
  ops.insert(ops.end(), dyn.begin(), dyn.end());
  return b.create(OpKind::CallRuntime, ops, {TensorType(g->type.dtype, to.dims)},
                  AttrMap{{"callee", std::string("sum_to")}, {"where", std::string()}})
      .result();
}

// g summed over the axes broadcasting added to `to`, cast to its dtype.
Value* fitTo(Builder& b, Value* g, const TensorType& to, const DynDims& dyn = {}) {
  if (g->type.dtype != to.dtype) g = b.cast(g, to.dtype);
  if (g->type.dims == to.dims) return g;
  int64_t lead = g->type.rank() - to.rank();
  if (lead > 0) {
    IntList axes;
    for (int64_t i = 0; i < lead; ++i) axes.push_back(i);
    g = b.reduce(rt::ReduceOp::Sum, g, axes, false);
  }
  IntList axes;
  for (int64_t i = 0; i < to.rank() && i < g->type.rank(); ++i) {
    const Dim& d = to.dims[static_cast<size_t>(i)];
    const Dim& e = g->type.dims[static_cast<size_t>(i)];
    if (d.is_known() && d.size == 1 && !(e.is_known() && e.size == 1)) axes.push_back(i);
  }
  if (!axes.empty()) g = b.reduce(rt::ReduceOp::Sum, g, axes, true);
  if (g->type.dims != to.dims) {
    bool symbolic = false;  // a dim of `to` known only at run time, maybe 1 where g's is not
    for (const Dim& d : to.dims) symbolic = symbolic || d.is_symbolic();
    if (g->type.rank() < to.rank()) g = broadcastTo(b, g, to, dyn);
    else if (symbolic) g = sumTo(b, g, to, dyn);
    else g = b.reshape(g, to.dims);
  }
  return g;
}

std::vector<Dim> withOne(std::vector<Dim> d, size_t at) {
  d.insert(d.begin() + static_cast<std::ptrdiff_t>(at), Dim::known(1));
  return d;
}

IntList inverse(const IntList& perm) {
  IntList inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
  return inv;
}

// The IR adjoint builder for the rules of runtime/ops.def and runtime/Adjoint.h. The
// forward values a rule reads (x, out) are lazy: only what the rule uses is made available
// to the backward region (saved on stacks inside loops); their types are known without.
struct IrAdjoint {
  struct State {
    std::function<Value*()> make;
    Value* v = nullptr;
    Value* typed = nullptr;  // a value of the same type (the forward value itself)
  };
  struct V {
    std::shared_ptr<State> s;
    Value* get() const {
      if (!s->v) s->v = s->make();
      return s->v;
    }
    const TensorType& type() const { return (s->v ? s->v : s->typed)->type; }
  };
  Builder& b;
  // update(zeros, g, idx) results, for the loops that accumulate them in place.
  std::map<Value*, std::pair<Value*, std::vector<Value*>>>* sparse = nullptr;
  // The run-time sizes of a forward value's symbolic dims where the table's are stale (Grad::dynDims).
  std::function<DynDims(Value*)> dynOf;
  std::set<Value*> zeros_;

  DynDims dynFor(const V& x) const { return x.s->typed && dynOf ? dynOf(x.s->typed) : DynDims{}; }

  static V now(Value* x) {
    auto st = std::make_shared<State>();
    st->v = x;
    return V{st};
  }
  template <class F>
  static V lazy(F f, Value* typed) {
    auto st = std::make_shared<State>();
    st->make = f;
    st->typed = typed;
    return V{st};
  }
  template <rt::UnaryOp Op>
  V unary(const V& x) {
    return now(b.unary(Op, x.get()));
  }
  template <rt::BinaryOp Op>
  V binary(const V& x, const V& y) {
    return now(b.binary(Op, x.get(), y.get()));
  }
  V k(double c, const V& like) { return now(b.constant(rt::full({}, c, like.type().dtype))); }
  V select(const V& c, const V& x, const V& y) { return now(b.select(c.get(), x.get(), y.get())); }
  int64_t rank(const V& x) { return x.type().rank(); }
  V fit(const V& g, const V& x) { return now(fitTo(b, g.get(), x.type(), dynFor(x))); }
  V zerosLike(const V& x, const V& g) {
    Value* z = zerosOf(b, x.type().with_dtype(g.type().dtype), dynFor(x));
    zeros_.insert(z);
    return now(z);
  }
  V reshapeLike(const V& g, const V& x) {
    DynDims dyn = dynFor(x);
    return now(dyn.empty() ? b.reshape(g.get(), x.type().dims) : toDynShape(b, OpKind::ReshapeDyn, g.get(), x.type(), dyn));
  }
  V broadcastLike(const V& g, const V& x) { return now(broadcastTo(b, g.get(), x.type(), dynFor(x))); }
  V expandDims(const V& v, int64_t a) { return now(b.reshape(v.get(), withOne(v.type().dims, static_cast<size_t>(a)))); }
  V squeeze(const V& v, int64_t a) {
    std::vector<Dim> d = v.type().dims;
    d.erase(d.begin() + static_cast<std::ptrdiff_t>(a));
    return now(b.reshape(v.get(), d));
  }
  V transpose(const V& v, const IntList& perm) { return now(b.transpose(v.get(), perm)); }
  V matmul(const V& x, const V& y) { return now(b.matmul(x.get(), y.get())); }
  V im2col(const V& g, const IntList& w) {
    return now(b.create_inferred(OpKind::Im2col, {g.get()}, {{"window", w}, {"pad", 0.0}}).result());
  }
  V col2im(const V& g, int64_t h, int64_t wd, const IntList& w) {
    return now(b.create_inferred(OpKind::Col2im, {g.get()}, {{"window", w}, {"size", IntList{h, wd}}}).result());
  }
  V scan(const V& g, int64_t axis, bool reverse, bool prod = false) {
    return now(b.create_inferred(OpKind::Scan, {g.get()},
                                 {{"axis", axis}, {"kind", std::string(prod ? "prod" : "sum")}, {"reverse", reverse}})
                   .result());
  }
  V reduceKeep(rt::ReduceOp op, const V& x, const IntList& axes) { return now(b.reduce(op, x.get(), axes, true)); }
  // The number of elements over `axes`: known dims folded into one constant.
  V count(const V& x, const IntList& axes, const V& g) {
    DType dt = g.type().dtype;
    Value* n = nullptr;
    int64_t known = 1;
    for (int64_t a : axes) {
      const Dim& d = x.type().dims[static_cast<size_t>(a)];
      if (d.is_known()) known *= d.size;
      else {
        Value* dv = b.cast(b.dim(x.get(), a), dt);
        n = n ? b.binary(rt::BinaryOp::Mul, n, dv) : dv;
      }
    }
    Value* kc = b.constant(rt::full({}, static_cast<double>(known), dt));
    return now(n ? b.binary(rt::BinaryOp::Mul, n, kc) : kc);
  }
  // An offset along an axis: known now, or an i64 scalar the run computes (v).
  struct Off {
    int64_t k = 0;
    Value* v = nullptr;
  };
  int64_t dim(const V& x, int64_t a) {
    const Dim& d = x.type().dims[static_cast<size_t>(a)];
    if (!d.is_known()) throw ShapeError("a gradient that needs a dim known while tracing got a symbolic one");
    return d.size;
  }
  Off offsetDim(const V& x, int64_t a) {
    const Dim& d = x.type().dims[static_cast<size_t>(a)];
    if (d.is_known()) return Off{d.size, nullptr};
    return Off{0, b.dim(x.get(), a)};
  }
  Off zeroOffset() { return Off{}; }
  Value* offValue(const Off& o) { return o.v ? o.v : b.constant(rt::Tensor::scalar(o.k)); }
  Off addOffset(const Off& a, const Off& c) {
    if (!a.v && !c.v) return Off{a.k + c.k, nullptr};
    return Off{0, b.binary(rt::BinaryOp::Add, offValue(a), offValue(c))};
  }
  V sliceAxis(const V& g, int64_t axis, const Off& off, const Off& len) {
    size_t r = static_cast<size_t>(g.type().rank());
    IntList start(r, 0), stop(r, INT64_MAX), step(r, 1);
    if (!off.v && !len.v) {
      start[static_cast<size_t>(axis)] = off.k;
      stop[static_cast<size_t>(axis)] = off.k + len.k;
      return now(b.slice(g.get(), start, stop, step));
    }
    // Bounds the run knows: a dyn_slice along the axis (a concat along a symbolic dim).
    IntList dyn(r, 0);
    dyn[static_cast<size_t>(axis)] = 1;
    Value* lo = offValue(off);
    Value* hi = b.binary(rt::BinaryOp::Add, lo, offValue(len));
    return now(b.create_inferred(OpKind::DynSlice, {g.get(), lo, hi},
                                 {{"start", start}, {"stop", stop}, {"step", step}, {"dynamic", dyn}})
                   .result());
  }
  V take(const V& g, const V& idx, int64_t axis) {
    return now(b.create_inferred(OpKind::Take, {g.get(), idx.get()}, {{"axis", axis}}).result());
  }
  V indexAdd(const V& base, const V& idx, const V& src, int64_t axis) {
    return now(b.create_inferred(OpKind::IndexAdd, {base.get(), idx.get(), src.get()}, {{"axis", axis}}).result());
  }
  V getIndex(const V& g, const std::vector<Value*>& idx) { return now(b.index(g.get(), idx)); }
  V setIndex(const V& base, const std::vector<Value*>& idx, const V& v) {
    Value* u = b.update(base.get(), v.get(), idx);
    if (sparse && zeros_.count(base.get())) (*sparse)[u] = {v.get(), idx};
    return now(u);
  }
};

class Grad {
 public:
  explicit Grad(Builder& b) : b_(b) {}

  std::vector<Value*> run(const std::vector<Op*>& tape, Value* target, const std::vector<Value*>& sources) {
    Adj adj;
    saved_.emplace_back(&b_.block(), b_.pos());  // [0]: where adjoint stacks are created
    for (Op* op : tape) collectPushes(*op);
    for (Value* v : sources) active_.insert(v), sources_.insert(v);
    for (Op* op : tape) markActive(*op);
    // A non-scalar target is summed first (SPEC §7): its adjoint is ones of its shape.
    adj[target] = target->type.is_scalar() ? cst(1.0, target->type) : b_.broadcast_to(cst(1.0, target->type), target->type.dims);
    backprop(tape, adj);
    std::vector<Value*> out;
    for (Value* s : sources) {
      auto it = adj.find(s);
      out.push_back(it != adj.end() ? fit(it->second, s->type) : zeros(s->type));
    }
    return out;
  }

 private:
  // A backward region being emitted for a forward region (a cond branch, a while body).
  struct Ctx {
    Op* fwdOp;
    Block* fwdBlock;
    Block* bwdBlock;
    size_t popPos = 0;
    std::map<Value*, Value*> popped;
  };

  Builder& b_;
  std::set<Value*> sources_;
  std::vector<Ctx> ctxs_;
  // Second order: the adjoints of values popped from the stacks of stack_new h (a
  // first-order backward being differentiated) go on stack adjStack_[h], popped again at
  // the matching stack_push. h is the origin of the handle (see origin()): one adjoint
  // stack serves every run-time stack that stack_new creates (one per iteration of the
  // loops around it), because the backward pops them in the exact reverse of their pushes.
  std::map<Value*, Value*> adjStack_;
  // The stack_push ops of the tape (nested regions included), and the memo of origin().
  std::vector<Op*> pushes_;
  std::map<Value*, Value*> origin_;
  // The stack_pop ops (of the tape) whose adjoints go on adjStack_[origin].
  std::map<Value*, std::vector<Op*>> adjPops_;
  // The values that depend on a source: only they get adjoints (so only what their rules
  // read is saved).
  std::set<Value*> active_;
  // Adjoints `update(zeros, g, idx)` of an index: a loop accumulates them in place.
  std::map<Value*, std::pair<Value*, std::vector<Value*>>> sparse_;
  // Saved emission points (block, position) of enclosing backward regions.
  std::vector<std::pair<Block*, size_t>> saved_;
  // The `dim` ops made beside forward values for dynDims, by (value, axis).
  std::map<std::pair<Value*, size_t>, Value*> fwdDims_;
  std::set<std::string> paramSyms_;
  bool paramSymsKnown_ = false;

  // ---------------------------------------------------------------- emission helpers

  // Creates an op at (blk, i) and keeps every emission point after it in place.
  Op& insertAt(Block& blk, size_t i, OpKind kind, const std::vector<Value*>& operands,
               const std::vector<TensorType>& results, AttrMap attrs = {}) {
    Block* curB = &b_.block();
    size_t curP = b_.pos();
    for (auto& [sb, sp] : saved_)
      if (sb == &blk && sp >= i) ++sp;
    if (curB == &blk && curP >= i) ++curP;
    b_.set_insertion(blk, i);
    Op& op = b_.create(kind, operands, results, std::move(attrs));
    b_.set_insertion(*curB, curP);
    return op;
  }

  // The forward value v as seen from the backward region being emitted: itself where it
  // is in scope, else popped from a stack it is pushed on in its forward region.
  Value* fwd(Value* v) { return fwdFrom(v, ctxs_.size()); }

  Value* fwdFrom(Value* v, size_t levels) {
    Block* db = v->block();
    size_t k = levels;
    while (k > 0 && ctxs_[k - 1].fwdBlock != db) --k;
    if (k == 0) return v;
    Ctx& c = ctxs_[k - 1];
    if (auto it = c.popped.find(v); it != c.popped.end()) return it->second;
    Block* pb = c.fwdOp->parent();
    Value* h = insertAt(*pb, pb->index_of(c.fwdOp), OpKind::StackNew, {}, {TensorType::scalar(DType::I64)}).result();
    insertAt(*c.fwdBlock, c.fwdBlock->size() - 1, OpKind::StackPush, {h, v}, {});
    Value* hb = fwdFrom(h, k - 1);
    Ctx& c2 = ctxs_[k - 1];  // (stable: ctxs_ is not resized here)
    Value* r = insertAt(*c2.bwdBlock, c2.popPos, OpKind::StackPop, {hb}, {v->type}).result();
    ++c2.popPos;
    c2.popped[v] = r;
    return r;
  }

  Value* cst(double x, const TensorType& like) {
    Value* s = b_.constant(rt::full({}, x, like.dtype));
    return s;
  }

  Value* zeros(const TensorType& t) { return zerosOf(b_, t); }
  // Zeros of the forward value v's type, of its run-time shape where the table's is stale.
  Value* zerosFor(Value* v, DType dt) { return zerosOf(b_, v->type.with_dtype(dt), dynDims(v)); }
  // g fitted to the forward value v's type (fitTo), of its run-time shape likewise.
  Value* fitFor(Value* g, Value* v) { return fitTo(b_, g, v->type, dynDims(v)); }
  // v's adjoint in `adj` fitted to it, else zeros of it.
  Value* adjointOrZeros(const Adj& adj, Value* v) {
    auto it = adj.find(v);
    return it != adj.end() ? fitFor(it->second, v) : zerosFor(v, v->type.dtype);
  }

  // Whether symbol `sym` is the function's parameters' (bound once per call).
  bool paramSym(const std::string& sym) {
    if (!paramSymsKnown_) {
      paramSymsKnown_ = true;
      for (Value* a : b_.function().params())
        for (const Dim& d : a->type.dims)
          if (d.is_symbolic()) paramSyms_.insert(d.sym);
    }
    return paramSyms_.count(sym) > 0;
  }

  // (see DynDims) The sizes of v's symbolic dims, as seen from the backward region being
  // emitted, where v is defined inside a loop being reversed and one of its symbols is not a
  // parameter's: `dim` ops beside v in its forward region, saved for the backward like any
  // forward value it reads. Empty where the symbol table's sizes are right.
  DynDims dynDims(Value* v) {
    if (ctxs_.empty() || v->type.static_shape()) return {};
    Block* db = v->block();
    size_t k = ctxs_.size();
    while (k > 0 && ctxs_[k - 1].fwdBlock != db) --k;
    bool inLoop = false;
    for (size_t j = 0; j < k; ++j) inLoop = inLoop || ctxs_[j].fwdOp->kind() == OpKind::While;
    if (!inLoop) return {};
    bool varying = false;
    for (const Dim& d : v->type.dims) varying = varying || (d.is_symbolic() && !paramSym(d.sym));
    if (!varying) return {};
    DynDims out;
    for (size_t a = 0; a < v->type.dims.size(); ++a) {
      if (v->type.dims[a].is_known()) continue;
      Value*& fd = fwdDims_[{v, a}];
      if (!fd) {
        size_t pos = v->is_block_arg() ? 0 : db->index_of(v->def()) + 1;
        fd = insertAt(*db, pos, OpKind::Dim, {v}, {TensorType::scalar(DType::I64)},
                      AttrMap{{"axis", static_cast<int64_t>(a)}})
                 .result();
      }
      out.push_back(fwd(fd));
    }
    return out;
  }

  Value* add(Value* a, Value* b) { return b_.binary(rt::BinaryOp::Add, a, b); }

  Value* fit(Value* g, const TensorType& to) { return fitTo(b_, g, to); }

  // Activity: forward through the tape; a cond/while reading an active value anywhere makes
  // all its region arguments and results active (conservative).
  void markActive(Op& op) {
    if (op.kind() == OpKind::StackPush) {
      if (active_.count(op.operand(1))) active_.insert(op.operand(0));
      return;
    }
    bool any = false;
    for (Value* v : op.operands()) any = any || active_.count(v) > 0;
    if (op.num_regions() > 0) {
      if (!any) {
        std::vector<Value*> free;
        std::set<Value*> seen;
        for (size_t r = 0; r < op.num_regions(); ++r) freeValuesAll(op, op.region(r).block(), free, seen);
        for (Value* v : free) any = any || active_.count(v) > 0;
      }
      if (!any) return;
      for (size_t r = 0; r < op.num_regions(); ++r) {
        Block& b = op.region(r).block();
        for (Value* a : b.args()) active_.insert(a);
        for (size_t i = 0; i < b.size(); ++i) markActive(b.op(i));
      }
    }
    if (any)
      for (Value* r : op.results()) active_.insert(r);
  }

  // Like freeValues, of any dtype (stack handles included).
  static void freeValuesAll(const Op& op, Block& b, std::vector<Value*>& out, std::set<Value*>& seen) {
    for (size_t i = 0; i < b.size(); ++i) {
      Op& o = b.op(i);
      for (Value* v : o.operands())
        if (!defined_inside(v, &op) && seen.insert(v).second) out.push_back(v);
      for (size_t r = 0; r < o.num_regions(); ++r) freeValuesAll(op, o.region(r).block(), out, seen);
    }
  }

  void collectPushes(Op& op) {
    if (op.kind() == OpKind::StackPush) pushes_.push_back(&op);
    for (size_t r = 0; r < op.num_regions(); ++r) walk(op.region(r).block(), [&](Op& o) {
        if (o.kind() == OpKind::StackPush) pushes_.push_back(&o);
      });
  }

  // The stack_new whose stacks the handle h names: h itself, or, for a handle popped from a
  // stack (a stack created per iteration of a loop, saved for a backward region), the origin
  // of the handles pushed on that stack. Null where it is not one stack_new (a handle
  // carried through a loop or picked by a branch).
  Value* origin(Value* h) {
    if (auto it = origin_.find(h); it != origin_.end()) return it->second;
    origin_[h] = nullptr;  // (a cycle would end as no origin; defensive: the backward pushes
                           // only on and only stack_new handles, so none arises)
    Value* o = nullptr;
    if (!h->is_block_arg() && h->def()->kind() == OpKind::StackNew) {
      o = h;
    } else if (!h->is_block_arg() && h->def()->kind() == OpKind::StackPop) {
      Value* s = origin(h->def()->operand(0));
      bool first = true;
      for (Op* p : pushes_) {
        if (!s || origin(p->operand(0)) != s) continue;
        Value* po = origin(p->operand(1));
        if (first) o = po;
        else if (po != o) o = nullptr;
        first = false;
      }
    }
    origin_[h] = o;
    return o;
  }

  // The adjoint stack of the stack handle h (null: none).
  Value* adjStackOf(Value* h) {
    if (adjStack_.empty()) return nullptr;
    Value* o = origin(h);
    auto it = o ? adjStack_.find(o) : adjStack_.end();
    return it != adjStack_.end() ? it->second : nullptr;
  }

  bool want(Value* v) const { return v && isFloat(v) && active_.count(v) > 0; }

  void acc(Adj& adj, Value* v, Value* g) {
    if (!isFloat(v) || !active_.count(v)) return;
    // A constant has no adjoint, unless it is a source: a tensor fixed at trace time (a
    // captured `let W`) differentiated with respect to.
    if (!v->is_block_arg() && v->def()->kind() == OpKind::Constant && !sources_.count(v)) return;
    g = fitFor(g, v);
    auto [it, fresh] = adj.emplace(v, g);
    if (!fresh) it->second = add(it->second, g);
  }

  // ---------------------------------------------------------------- the reverse pass

  void backprop(const std::vector<Op*>& ops, Adj& adj) {
    for (size_t i = ops.size(); i-- > 0;) {
      Op& op = *ops[i];
      bool any = false;
      for (size_t r = 0; r < op.num_results(); ++r) any = any || adj.count(op.result(r));
      if (op.kind() == OpKind::StackPush) any = adjStackOf(op.operand(0)) != nullptr;
      if (!any && !adjStack_.empty() && op.num_regions() > 0) any = pushesAdjoint(op);
      if (any) rule(op, adj);
    }
  }

  // The dist module's collectives (graph/BuiltinsDist.cpp): their adjoints are call_runtime
  // ops too, run by the runtime's one implementation (runtime/Dist.h): allreduce sum/mean's
  // is an allreduce of the results' adjoints with the same op, in one call over all of
  // them; max/min's, broadcast's and allgather's are dist_*_grad.
  void runtimeRule(Op& op, Adj& adj) {
    const std::string& callee = op.str_attr("callee");
    bool wanted = false;
    for (size_t i = 0; i < op.num_operands(); ++i) wanted = wanted || want(op.operand(i));
    if (!wanted) return;
    std::vector<Value*> gs;
    std::vector<TensorType> types;
    for (size_t i = 0; i < op.num_results(); ++i) {
      Value* r = op.result(i);
      auto it = adj.find(r);
      gs.push_back(it != adj.end() ? it->second : zerosFor(r, r->type.dtype));
      types.push_back(op.operand(i)->type);
    }
    if (callee == "detach") return;  // float(x): no gradient flows through
    if (callee == "sum_to") {  // its adjoint: broadcast back to the operand's shape
      if (want(op.operand(0))) acc(adj, op.operand(0), broadcastTo(b_, gs[0], op.operand(0)->type, dynDims(op.operand(0))));
      return;
    }
    if (callee == "scatter") {  // x[idx] = v: x's rows written get none, v its rows (as eager's)
      Value *x = op.operand(0), *v = op.operand(2), *idx = fwd(op.operand(1));
      if (want(x)) {
        Value* none = b_.constant(rt::zeros({}, gs[0]->type.dtype));
        acc(adj, x, b_.create(OpKind::CallRuntime, {gs[0], idx, none}, {gs[0]->type}, op.attrs).result());
      }
      if (want(v)) acc(adj, v, fitFor(b_.create_inferred(OpKind::Take, {gs[0], idx}, {{"axis", int64_t{0}}}).result(), v));
      return;
    }
    AttrMap attrs = op.attrs;
    std::vector<Value*> in = gs;
    if (callee == "dist_allreduce") {
      const std::string& kind = op.str_attr("op");
      if (kind == "max" || kind == "min") {
        attrs["callee"] = std::string("dist_allreduce_grad");
        for (size_t i = 0; i < op.num_operands(); ++i) in.push_back(op.operand(i));
        for (size_t i = 0; i < op.num_results(); ++i) in.push_back(op.result(i));
      }
    } else if (callee == "dist_broadcast") {
      attrs["callee"] = std::string("dist_broadcast_grad");
    } else if (callee == "dist_allgather") {
      attrs["callee"] = std::string("dist_allgather_grad");
      in.push_back(op.operand(0));  // its rows
    } else {
      throw ShapeError(fmt::format("{} has no gradient", callee));
    }
    Op& back = b_.create(OpKind::CallRuntime, in, types, attrs);
    for (size_t i = 0; i < op.num_operands(); ++i)
      if (want(op.operand(i))) acc(adj, op.operand(i), back.result(static_cast<unsigned>(i)));
  }

  // Whether op's regions push on a stack whose pops got adjoints (second order).
  bool pushesAdjoint(Op& op) {
    bool found = false;
    for (size_t r = 0; r < op.num_regions(); ++r)
      walk(op.region(r).block(), [&](Op& o) {
        found = found || (o.kind() == OpKind::StackPush && adjStackOf(o.operand(0)) != nullptr);
      });
    return found;
  }

  // Whether op's regions pop an active float (from a first-order backward's stack).
  bool popsActive(Op& op) {
    bool found = false;
    for (size_t r = 0; r < op.num_regions(); ++r)
      walk(op.region(r).block(), [&](Op& o) {
        found = found || (o.kind() == OpKind::StackPop && want(o.result()));
      });
    return found;
  }

  static std::vector<Op*> opsOf(Block& b) {
    std::vector<Op*> v;
    for (size_t i = 0; i < b.size(); ++i)
      if (!b.op(i).has_trait(kTerminator)) v.push_back(&b.op(i));
    return v;
  }

  void rule(Op& op, Adj& adj) {
    if (op.kind() == OpKind::StackPop) return popRule(op, adj);
    if (op.kind() == OpKind::StackPush) return pushRule(op, adj);
    if (op.kind() == OpKind::Cond) return condRule(op, adj);
    if (op.kind() == OpKind::While) return whileRule(op, adj);
    if (op.kind() == OpKind::CallRuntime) return runtimeRule(op, adj);
    Value* res = op.num_results() ? op.result(0) : nullptr;
    if (!res || !isFloat(res)) return;
    Value* g = adj.at(res);
    auto X = [&](size_t i) { return fwd(op.operand(i)); };
    auto OUT = [&] { return fwd(res); };
    auto zero = [&] { return cst(0.0, g->type); };
    Value* a = op.num_operands() > 0 ? op.operand(0) : nullptr;
    Value* bb = op.num_operands() > 1 ? op.operand(1) : nullptr;
    IrAdjoint m{b_, &sparse_, [this](Value* v) { return dynDims(v); }, {}};
    auto G = IrAdjoint::now(g);
    auto L = [&](size_t i) { return m.lazy([&, i] { return X(i); }, op.operand(i)); };
    auto LOUT = [&] { return m.lazy(OUT, res); };
    auto accOpt = [&](Value* v, const std::optional<IrAdjoint::V>& gv) {
      if (gv) acc(adj, v, gv->get());
    };
    if (auto bop = as_binary(op.kind())) {
      auto [ga, gb] = rt::opmath::binary_grad(m, *bop, G, L(0), L(1), LOUT(), want(a), want(bb));
      accOpt(a, ga);
      accOpt(bb, gb);
      return;
    }
    if (auto uop = as_unary(op.kind())) {
      accOpt(a, rt::opmath::unary_grad(m, *uop, G, L(0), LOUT()));
      return;
    }
    switch (op.kind()) {
      case OpKind::Cast:
      case OpKind::BroadcastTo:
        if (want(a)) acc(adj, a, adjoint::to_input(m, G, L(0)).get());
        return;
      case OpKind::Select: {
        auto [ga, gb] = adjoint::where(m, G, L(0), L(1), L(2), want(op.operand(1)), want(op.operand(2)));
        accOpt(op.operand(1), ga);
        accOpt(op.operand(2), gb);
        return;
      }
      case OpKind::Reshape:
      case OpKind::ReshapeDyn:  // back to x's shape: its dims are x's (known, or x's symbols)
        if (want(a)) acc(adj, a, adjoint::reshape(m, G, L(0)).get());
        return;
      case OpKind::BroadcastDyn:
        if (want(a)) acc(adj, a, adjoint::to_input(m, G, L(0)).get());
        return;
      case OpKind::Transpose: acc(adj, a, adjoint::transpose(m, G, op.ints_attr("perm")).get()); return;
      case OpKind::Slice: return sliceRule(op, adj, g);
      case OpKind::Concat: {
        int64_t axis = op.int_attr("axis");
        if (axis < 0) axis += res->type.rank();
        std::vector<IrAdjoint::V> parts;
        std::vector<char> wants;
        for (size_t i = 0; i < op.num_operands(); ++i) {
          parts.push_back(L(i));
          wants.push_back(want(op.operand(i)) ? 1 : 0);
        }
        auto gs = adjoint::concat(m, G, parts, wants, axis);
        for (size_t i = 0; i < gs.size(); ++i) accOpt(op.operand(i), gs[i]);
        return;
      }
      case OpKind::Reduce: {
        if (!want(a)) return;
        IntList axes = op.ints_attr("axes");
        for (auto& ax : axes)
          if (ax < 0) ax += a->type.rank();
        std::sort(axes.begin(), axes.end());
        acc(adj, a, adjoint::reduce(m, reduceOpNamed(op.str_attr("kind")), G, L(0), LOUT(), axes,
                                    op.bool_attr("keepdims")).get());
        return;
      }
      case OpKind::MatMul: {
        auto [ga, gb] = adjoint::matmul(m, G, L(0), L(1), want(a), want(bb));
        accOpt(a, ga);
        accOpt(bb, gb);
        return;
      }
      case OpKind::Im2col:
        if (want(a)) acc(adj, a, adjoint::im2col(m, G, L(0), op.ints_attr("window")).get());
        return;
      case OpKind::Col2im:
        if (want(a)) acc(adj, a, adjoint::col2im(m, G, op.ints_attr("window")).get());
        return;
      case OpKind::Scan:
        if (want(a)) {
          int64_t axis = op.int_attr("axis");
          if (axis < 0) axis += a->type.rank();
          acc(adj, a, adjoint::scan(m, G, L(0), LOUT(), op.str_attr("kind") == "prod", axis, op.bool_attr("reverse")).get());
        }
        return;
      case OpKind::Take:
        if (want(a)) acc(adj, a, adjoint::take(m, G, L(0), L(1), op.int_attr("axis")).get());
        return;
      case OpKind::IndexAdd: {
        Value* src = op.operand(2);
        auto [gb, gs] = adjoint::index_add(m, G, L(0), L(1), L(2), op.int_attr("axis"), want(a), want(src));
        accOpt(a, gb);
        accOpt(src, gs);
        return;
      }
      case OpKind::Index: {
        if (!want(a)) return;
        std::vector<Value*> idx;
        for (size_t i = 1; i < op.num_operands(); ++i) idx.push_back(X(i));
        acc(adj, a, adjoint::get_index(m, G, L(0), idx).get());
        return;
      }
      case OpKind::Update: {
        if (!want(a) && !want(bb)) return;
        std::vector<Value*> idx;
        for (size_t i = 2; i < op.num_operands(); ++i) idx.push_back(X(i));
        auto [gx, gv] = adjoint::set_index(m, G, L(0), L(1), idx, want(a), want(bb));
        accOpt(a, gx);
        accOpt(bb, gv);
        return;
      }
      case OpKind::DynSlice: {
        if (!want(a)) return;
        std::vector<Value*> ops{zerosFor(a, g->type.dtype), g};
        for (size_t i = 1; i < op.num_operands(); ++i) ops.push_back(X(i));
        acc(adj, a, b_.create_inferred(OpKind::DynSliceUpdate, ops, op.attrs).result());
        return;
      }
      case OpKind::DynSliceUpdate: {
        if (!want(a) && !want(bb)) return;
        std::vector<Value*> bounds;
        for (size_t i = 2; i < op.num_operands(); ++i) bounds.push_back(X(i));
        if (want(a)) {
          std::vector<Value*> ops{g, zero()};
          ops.insert(ops.end(), bounds.begin(), bounds.end());
          acc(adj, a, b_.create_inferred(OpKind::DynSliceUpdate, ops, op.attrs).result());
        }
        if (want(bb)) {
          std::vector<Value*> ops{g};
          ops.insert(ops.end(), bounds.begin(), bounds.end());
          acc(adj, bb, b_.create_inferred(OpKind::DynSlice, ops, op.attrs).result());
        }
        return;
      }
      case OpKind::Gemm:  // made by a pass of the pipeline, which runs after differentiation
        throw std::logic_error("internal: gemm in IR being differentiated");
      default:
        // Ops whose float results carry no gradient to their operands by definition (ops with
        // integer or bool results returned above).
        if (op.kind() == OpKind::Constant || op.kind() == OpKind::Iota || op.kind() == OpKind::Random ||
            op.kind() == OpKind::Arange)
          return;
        for (size_t i = 0; i < op.num_operands(); ++i)
          if (isFloat(op.operand(i)) && want(op.operand(i)))
            throw std::logic_error(fmt::format("internal: no gradient rule for the IR op {}", op_info(op.kind()).name));
        return;
    }
  }

  // gx: g scattered back into zeros of x's shape, one axis at a time (known dims; any step).
  // A value popped from a stack is the value pushed there: its adjoint is pushed on an
  // adjoint stack here (the backward of a first-order backward runs the iterations in
  // forward order) and popped at the push (whose backward runs them in reverse).
  void popRule(Op& op, Adj& adj) {
    Value* h = op.operand(0);
    Value* r = op.result();
    if (!isFloat(r)) return;
    Value* o = origin(h);
    if (!o) throw ShapeError("second derivatives through a saved-value stack whose handle is carried by a loop or chosen by a branch are not supported yet");
    adjPops_[o].push_back(&op);
    Value*& a = adjStack_[o];
    if (!a) {
      Block* blk = saved_.front().first;
      size_t pos = saved_.front().second;
      a = insertAt(*blk, pos, OpKind::StackNew, {}, {TensorType::scalar(DType::I64)}).result();
    }
    b_.create(OpKind::StackPush, {a, fit(adj.at(r), r->type)}, {});
  }

  // The ops around op, innermost first.
  static std::vector<Op*> enclosing(Op* op) {
    std::vector<Op*> out;
    for (Block* b = op->parent(); b && b->parent() && b->parent()->parent_op();) {
      Op* p = b->parent()->parent_op();
      out.push_back(p);
      b = p->parent();
    }
    return out;
  }

  // Whether a pop may not run where its push did: more conds around it than around the push,
  // below the ops around both (a first-order gradient taken in a branch that its tape is not
  // in: its forward pushes, its backward pops only when the branch is taken). A backward
  // region mirrors its forward region, so a cond saving values does not count.
  static bool popMaySkip(Op* push, Op* pop) {
    std::vector<Op*> eu = enclosing(push), eo = enclosing(pop);
    auto conds = [](const std::vector<Op*>& e, const std::vector<Op*>& other) {
      size_t n = 0;
      for (Op* p : e) {
        if (std::find(other.begin(), other.end(), p) != other.end()) break;
        n += p->kind() == OpKind::Cond;
      }
      return n;
    };
    return conds(eo, eu) > conds(eu, eo);
  }

  void pushRule(Op& op, Adj& adj) {
    Value* v = op.operand(1);
    Value* o = origin(op.operand(0));
    Value* a = adjStackOf(op.operand(0));
    bool guard = false;
    for (Op* pop : adjPops_[o]) guard = guard || popMaySkip(&op, pop);
    if (!guard) return acc(adj, v, b_.create(OpKind::StackPop, {a}, {v->type}).result());
    // The adjoint was pushed only if the pop ran: else (an empty adjoint stack) zeros.
    Value* n = b_.create_inferred(OpKind::StackSize, {a}).result();
    Value* p = b_.binary(rt::BinaryOp::Gt, n, b_.constant(rt::Tensor::scalar(int64_t{0})));
    Op& c = b_.create(OpKind::Cond, {p}, {v->type}, {}, 2);
    Block* blk = &b_.block();
    size_t pos = b_.pos();
    b_.set_insertion_end(c.region(0).block());
    b_.yield({b_.create(OpKind::StackPop, {a}, {v->type}).result()});
    b_.set_insertion_end(c.region(1).block());
    b_.yield({zeros(v->type)});
    b_.set_insertion(*blk, pos);
    acc(adj, v, c.result(0));
  }

  void sliceRule(Op& op, Adj& adj, Value* g) {
    Value* x = op.operand(0);
    const IntList &st = op.ints_attr("start"), &sp = op.ints_attr("stop"), &stp = op.ints_attr("step");
    bool symbolic = false;
    for (const Dim& d : x->type.dims) symbolic = symbolic || !d.is_known();
    if (!symbolic) return acc(adj, x, scatter_slice(b_, g, x->type.dims, st, sp, stp));
    // Dims of symbolic size: g written into zeros at the slice, bounds as constants
    // (dyn_slice_update clamps them at run time as the slice did).
    if (!want(x)) return;
    IntList dyn(st.size(), 1);
    std::vector<Value*> ops{zerosFor(x, g->type.dtype), g};
    for (size_t i = 0; i < st.size(); ++i) {
      ops.push_back(b_.constant(rt::Tensor::scalar(st[i])));
      ops.push_back(b_.constant(rt::Tensor::scalar(sp[i])));
    }
    acc(adj, x,
        b_.create_inferred(OpKind::DynSliceUpdate, ops, {{"start", st}, {"stop", sp}, {"step", stp}, {"dynamic", dyn}})
            .result());
  }

  // ---------------------------------------------------------------- control flow

  void condRule(Op& op, Adj& adj) {
    std::vector<Value*> free;
    std::set<Value*> seen;
    for (size_t r = 0; r < 2; ++r) freeValues(op, op.region(r).block(), free, seen);
    // No float read from outside: still differentiated when it pops an active float (its
    // adjoint goes on an adjoint stack) or pushes one whose pop got an adjoint.
    if (free.empty() && !popsActive(op) && !(!adjStack_.empty() && pushesAdjoint(op))) return;
    std::vector<Value*> gres;
    for (size_t i = 0; i < op.num_results(); ++i) {
      auto it = adj.find(op.result(i));
      gres.push_back(it != adj.end() && isFloat(op.result(i)) ? it->second : nullptr);
    }
    std::vector<TensorType> types;
    for (Value* f : free) types.push_back(f->type);
    Value* p = fwd(op.operand(0));
    Op& bc = b_.create(OpKind::Cond, {p}, types, {}, 2);
    saved_.emplace_back(&b_.block(), b_.pos());
    for (size_t r = 0; r < 2; ++r) {
      Block& fb = op.region(r).block();
      Block& bb = bc.region(r).block();
      b_.set_insertion_end(bb);
      ctxs_.push_back(Ctx{&op, &fb, &bb, 0, {}});
      Adj local;
      Op& y = fb.op(fb.size() - 1);
      for (size_t i = 0; i < gres.size() && i < y.num_operands(); ++i)
        if (gres[i]) acc(local, y.operand(i), gres[i]);
      backprop(opsOf(fb), local);
      std::vector<Value*> outs;
      for (Value* f : free) outs.push_back(adjointOrZeros(local, f));
      b_.yield(outs);
      ctxs_.pop_back();
    }
    auto [blk, pos] = saved_.back();
    saved_.pop_back();
    b_.set_insertion(*blk, pos);
    for (size_t k = 0; k < free.size(); ++k) acc(adj, free[k], bc.result(k));
  }

  // The arguments of `loop`'s body (by index) that the value v of the body is computed from
  // along paths a gradient flows (not through a cond's predicate or a loop's condition);
  // `outside` (when given) receives the values from outside the loop it is computed from.
  static void argsReaching(Value* v, Block& body, const Op& loop, std::set<size_t>& out, std::set<Value*>& seen,
                           std::vector<Value*>* outside) {
    if (!seen.insert(v).second) return;
    if (v->is_block_arg() && v->block() == &body) {
      out.insert(v->index());
      return;
    }
    if (!defined_inside(v, &loop)) {
      if (outside) outside->push_back(v);
      return;
    }
    if (v->is_block_arg()) return;  // a nested loop's own argument: reached through its operands below
    auto rec = [&](Value* x) { argsReaching(x, body, loop, out, seen, outside); };
    Op* d = v->def();
    if (d->kind() == OpKind::Cond) {  // a result: what either branch yields for it
      for (size_t r = 0; r < 2; ++r) rec(d->region(r).block().terminator()->operand(v->index()));
      return;
    }
    if (d->kind() == OpKind::While) {  // a result: the initial values of the carried values it is computed from
      std::vector<Value*> from;
      for (size_t i : carriedReaching(*d, {v->index()}, &from)) rec(d->operand(i));
      for (Value* x : from) rec(x);
      return;
    }
    for (Value* x : d->operands()) rec(x);
    for (size_t r = 0; r < d->num_regions(); ++r) {
      std::vector<Value*> inner;
      std::set<Value*> innerSeen;
      freeValuesAll(*d, d->region(r).block(), inner, innerSeen);
      for (Value* x : inner) rec(x);
    }
  }

  // The carried values of while `loop` that the ones in `start` are computed from, iteration
  // by iteration (start included); `outside`: the values from outside it they read.
  static std::set<size_t> carriedReaching(const Op& loop, const std::vector<size_t>& start, std::vector<Value*>* outside) {
    Block& body = loop.region(1).block();
    const Op& y = *body.terminator();
    std::set<size_t> live(start.begin(), start.end());
    std::vector<size_t> work(start.begin(), start.end());
    std::set<Value*> seen;  // shared: a value's arguments are collected once
    while (!work.empty()) {
      size_t j = work.back();
      work.pop_back();
      std::set<size_t> args;
      argsReaching(y.operand(j), body, loop, args, seen, outside);
      for (size_t i : args)
        if (live.insert(i).second) work.push_back(i);
    }
    return live;
  }

  // The carried values whose adjoints are not all zero: those the target reads after the
  // loop (their results have adjoints) and, iteration by iteration, those that flow into one
  // of them. A value that only feeds itself beside the target (`u = u * u`) gets none, as
  // eager mode never reaches it: its zero adjoint times an overflowed forward value would be
  // NaN in the sources' gradients.
  std::vector<size_t> carriedToTarget(Op& op, const std::vector<size_t>& carried, const Adj& adj) {
    std::vector<size_t> start;
    for (size_t i : carried)
      if (adj.count(op.result(i))) start.push_back(i);
    std::set<size_t> live = carriedReaching(op, start, nullptr);
    std::vector<size_t> out;
    for (size_t i : carried)
      if (live.count(i)) out.push_back(i);
    return out;
  }

  void whileRule(Op& op, Adj& adj) {
    Block& body = op.region(1).block();
    std::vector<Value*> free;
    std::set<Value*> seen;
    freeValues(op, body, free, seen);
    std::vector<size_t> carried;
    for (size_t i = 0; i < op.num_results(); ++i)
      if (isFloat(op.result(i))) carried.push_back(i);
    if (adjStack_.empty()) carried = carriedToTarget(op, carried, adj);
    if (carried.empty() && !(!adjStack_.empty() && pushesAdjoint(op))) return;
    // The trip count: a stack pushed once per iteration.
    Block* pb = op.parent();
    Value* hc = insertAt(*pb, pb->index_of(&op), OpKind::StackNew, {}, {TensorType::scalar(DType::I64)}).result();
    insertAt(body, body.size() - 1, OpKind::StackPush, {hc, hc}, {});
    Value* n = b_.create_inferred(OpKind::StackSize, {fwd(hc)}).result();
    std::vector<Value*> inits{n};
    std::vector<TensorType> types{TensorType::scalar(DType::I64)};
    for (size_t i : carried) {
      inits.push_back(adjointOrZeros(adj, op.result(i)));
      // A dim the forward loop changes (its symbol is not the initial value's) is the adjoint
      // of a different iteration's value each time: a symbol of its own, so that the loop's
      // result (the initial value's adjoint) does not rebind the forward one.
      TensorType t = body.arg(i)->type;
      for (size_t a = 0; a < t.dims.size(); ++a)
        if (t.dims[a].is_symbolic() && !(t.dims[a] == op.operand(i)->type.dims[a]))
          t.dims[a] = Dim::symbolic(b_.function().fresh_sym());
      types.push_back(t);
    }
    for (Value* f : free) {
      inits.push_back(zerosFor(f, f->type.dtype));
      types.push_back(f->type);
    }
    Op& bw = b_.while_loop(inits, types);
    saved_.emplace_back(&b_.block(), b_.pos());
    {
      Block& cb = bw.region(0).block();
      b_.set_insertion_end(cb);
      b_.yield({b_.binary(rt::BinaryOp::Gt, cb.arg(0), b_.constant(rt::Tensor::scalar(int64_t{0})))});
    }
    Block& bb = bw.region(1).block();
    b_.set_insertion_end(bb);
    ctxs_.push_back(Ctx{&op, &body, &bb, 0, {}});
    Adj local;
    Op& y = body.op(body.size() - 1);
    for (size_t k = 0; k < carried.size(); ++k) acc(local, y.operand(carried[k]), bb.arg(1 + k));
    backprop(opsOf(body), local);
    std::vector<Value*> outs{b_.binary(rt::BinaryOp::Sub, bb.arg(0), b_.constant(rt::Tensor::scalar(int64_t{1})))};
    for (size_t i : carried) outs.push_back(adjointOrZeros(local, body.arg(i)));
    for (size_t k = 0; k < free.size(); ++k) {
      Value* acc0 = bb.arg(1 + carried.size() + k);
      auto it = local.find(free[k]);
      if (it == local.end()) {
        outs.push_back(acc0);
        continue;
      }
      Value* lv = fitFor(it->second, free[k]);
      auto sp = sparse_.find(lv);
      if (sp != sparse_.end() && lv->type == acc0->type && !lv->has_uses() && lv->def()->parent() == &bb) {
        // acc[idx] += g, in place, instead of acc + update(zeros, g, idx).
        auto [g, idx] = sp->second;
        sparse_.erase(sp);
        Op* u = lv->def();
        u->drop_operands();
        bb.erase(bb.index_of(u));
        b_.set_insertion_end(bb);
        Value* cur = b_.index(acc0, idx);
        outs.push_back(b_.update(acc0, add(cur, fit(g, cur->type)), idx));
        continue;
      }
      outs.push_back(add(acc0, lv));
    }
    b_.yield(outs);
    ctxs_.pop_back();
    auto [blk, pos] = saved_.back();
    saved_.pop_back();
    b_.set_insertion(*blk, pos);
    for (size_t k = 0; k < carried.size(); ++k) acc(adj, op.operand(carried[k]), bw.result(1 + k));
    for (size_t k = 0; k < free.size(); ++k) acc(adj, free[k], bw.result(1 + carried.size() + k));
  }
};

}  // namespace

std::vector<Value*> gradient(Builder& b, const std::vector<Op*>& tape, Value* target,
                             const std::vector<Value*>& sources) {
  Grad g(b);
  return g.run(tape, target, sources);
}

}  // namespace tdl::ir::autodiff
