// Fusion of elementwise chains.
//   Rewrites: a chain of two or more elementwise ops of one block, each producer used
//     only by its consumer and of its shape, whose operands are scalars, tensors of the
//     result's shape (at least one) or broadcast rows ([C]) / columns ([B, 1]), becomes one `fused` op: its operands are the chain's inputs, its body region the
//     ops on scalars (one block argument per operand), yielding the element. Codegen
//     lowers it to one loop over the result (vectorized, split over threads above a size).
//     A lone f32 `exp` also becomes a fused op (its inline exp vectorizes). A cheap
//     producer (not exp/log/sqrt) whose users are all fusable ops of its shape is copied
//     once per user first, so each loop recomputes it.
//   A sum or mean over all axes or the last axis of a fused loop's float result that
//     nothing else reads becomes one `fused_reduce` (the loop accumulates instead of
//     storing); a lone elementwise op feeding such a reduction is wrapped first.
//   Preconditions: the function verifies.
//   Guarantees: only ops that is_fusable_scalar_op accepts (no op that can fail: integer
//     `//`, `%`, `**` stay outside) and the same per-element semantics (f32 exp in a
//     fused loop: within 2 ulp of libm, inside SPEC §11); any other single elementwise
//     op, an op whose operands need another broadcast, and values used twice stay
//     as they are (must-not-change cases in tests/ir/lit/fusion/no-fusion.ir).
#include <algorithm>
#include <map>
#include <unordered_set>

#include "ir/Pass.h"
#include "ir/Rewrite.h"

namespace tdl::ir {

bool is_fusable_scalar_op(const Op& op) {
  if (op.num_results() != 1 || op.num_regions()) return false;
  DType d = op.num_operands() ? op.operand(0)->type.dtype : DType::F32;
  for (const Value* v : op.operands()) d = rt::promote(d, v->type.dtype);
  bool flt = d == DType::F32 || d == DType::F64;
  if (op.kind() == OpKind::Cast || op.kind() == OpKind::Select) return true;
  // Every elementwise op of runtime/ops.def has scalar code (codegen/ScalarEmit.cpp) except
  // those that may fail on integers (a fused loop cannot report an error; float // and %
  // are fine) and ** (not in PTX kernels); bitwise ops need bool or integer operands.
  auto ok = [&](uint32_t p) { return !((p & rt::kBits) && flt); };
  if (auto b = as_binary(op.kind())) {
    uint32_t p = rt::props(*b);
    if (*b == rt::BinaryOp::Pow || ((p & rt::kFail) && !flt)) return false;
    return ok(p);
  }
  if (auto u = as_unary(op.kind())) return ok(rt::props(*u));
  return false;
}

FusedOperand fused_operand_kind(const TensorType& x, const TensorType& r) {
  if (x.is_scalar()) return FusedOperand::Scalar;
  if (x.dims == r.dims) return FusedOperand::Full;
  size_t xr = x.dims.size(), rr = r.dims.size();
  if (rr == 0 || xr > rr) return FusedOperand::None;
  auto one = [](const Dim& d) { return d.is_known() && d.size == 1; };
  // Row: the last dims agree, every other dim of x is 1.
  if (x.dims.back() == r.dims.back()) {
    bool ok = true;
    for (size_t i = 0; i + 1 < xr; ++i) ok = ok && one(x.dims[i]);
    if (ok) return FusedOperand::Row;
  }
  // Col: same rank, last dim 1, the others agree.
  if (xr == rr && one(x.dims.back())) {
    bool ok = true;
    for (size_t i = 0; i + 1 < xr; ++i) ok = ok && x.dims[i] == r.dims[i];
    if (ok) return FusedOperand::Col;
  }
  // Strided: every dim, aligned right, is r's or 1.
  for (size_t i = 0; i < xr; ++i) {
    const Dim& d = x.dims[i];
    if (!(d == r.dims[rr - xr + i]) && !one(d)) return FusedOperand::None;
  }
  return FusedOperand::Strided;
}

bool operands_cover(const Op& op, const TensorType& r) {
  size_t rr = r.dims.size();
  for (size_t p = 0; p < rr; ++p) {
    const Dim& want = r.dims[p];
    bool ok = want.is_known() && want.size == 1;
    for (const Value* v : op.operands()) {
      size_t xr = v->type.dims.size();
      if (xr > rr || p < rr - xr) continue;
      ok = ok || v->type.dims[p - (rr - xr)] == want;
    }
    if (!ok) return false;
  }
  return true;
}

TensorType fused_domain(const Op& op) {
  if (op.kind() != OpKind::FusedReduce) return op.result()->type;
  size_t rank = 0;
  for (const Value* v : op.operands()) rank = std::max(rank, v->type.dims.size());
  std::vector<Dim> dims(rank, Dim::known(1));
  for (const Value* v : op.operands()) {
    size_t xr = v->type.dims.size();
    for (size_t i = 0; i < xr; ++i) {
      const Dim& d = v->type.dims[i];
      if (!(d.is_known() && d.size == 1)) dims[rank - xr + i] = d;
    }
  }
  DType t = op.num_operands() ? op.operand(0)->type.dtype : DType::F32;
  return TensorType(t, dims);
}

namespace {

// An elementwise op on tensors that a fused loop can compute: operands scalars or
// broadcast to the result (of its shape, rows, columns, or strided), whose shapes give
// the result's at run time.
bool fusable(const Op& op) {
  if (!op.has_trait(kElementwise) || op.num_results() != 1) return false;
  const TensorType& r = op.result()->type;
  if (r.is_scalar()) return false;
  for (const Value* v : op.operands())
    if (fused_operand_kind(v->type, r) == FusedOperand::None) return false;
  return operands_cover(op, r) && is_fusable_scalar_op(op);
}

bool single_use_by(const Value* v, const Op& user) {
  return v->uses().size() == 1 && v->uses()[0].op == &user;
}

// Whether op belongs to a chain: a fusable producer used only here, or a fusable consumer
// that is the only user (both in the same block).
bool in_chain(const Op& op) {
  for (const Value* v : op.operands())
    if (v->def() && v->def()->parent() == op.parent() && (fusable(*v->def()) || v->def()->kind() == OpKind::Fused) &&
        single_use_by(v, op) && v->type.dims == op.result()->type.dims)
      return true;
  const Value* r = op.result();
  if (r->uses().size() == 1) {
    const Op& u = *r->uses()[0].op;
    if (u.parent() == op.parent() && (fusable(u) || u.kind() == OpKind::Fused) && u.num_results() == 1 &&
        u.result()->type.dims == r->type.dims)
      return true;
  }
  return false;
}

// An op worth a fused loop by itself: f32 exp (codegen's inline exp vectorizes; the
// runtime kernel calls libm per element), or one with a row/column operand (the loop reads
// it in place, where the runtime's broadcast kernel walks strides).
bool worth_alone(const Op& op) {
  if (op.kind() == kind_of(rt::UnaryOp::Exp) && op.result()->type.dtype == DType::F32) return true;
  for (const Value* v : op.operands()) {
    FusedOperand k = fused_operand_kind(v->type, op.result()->type);
    if (k == FusedOperand::Row || k == FusedOperand::Col || k == FusedOperand::Strided) return true;
  }
  return false;
}

// Replaces op (at position i of b) by a fused op with op as its body.
void wrap(Block& b, size_t i) {
  Op& op = b.op(i);
  auto f = std::make_unique<Op>(OpKind::Fused, op.loc);
  Block& body = f->add_region().block();
  std::map<Value*, Value*> arg;
  auto x = std::make_unique<Op>(op.kind(), op.loc);
  x->attrs = op.attrs;
  for (Value* v : op.operands()) {
    auto it = arg.find(v);
    if (it == arg.end()) {
      f->add_operand(v);
      it = arg.emplace(v, body.add_arg(TensorType::scalar(v->type.dtype))).first;
    }
    x->add_operand(it->second);
  }
  Value* e = x->add_result(TensorType::scalar(op.result()->type.dtype));
  body.append(std::move(x));
  auto y = std::make_unique<Op>(OpKind::Yield, op.loc);
  y->add_operand(e);
  body.append(std::move(y));
  Value* r = f->add_result(op.result()->type);
  op.result()->replace_all_uses_with(r);
  b.replace(i, std::move(f));  // in place: wrapping every op of a long block stays linear
}

// The most ops one fused body takes in: a longer chain becomes several fused loops, so that
// fusing (and compiling) a chain of n elementwise ops costs O(n), not O(n^2) (each merge
// re-points the uses of the body's arguments, which grow with the body).
constexpr size_t kMaxFusedBody = 256;

// Moves producer fused op p (operand k of consumer g, used only there) into g's body; p,
// left without uses, goes into `dead` (erased with the others in one pass).
void merge(Op& p, Op& g, size_t k, std::unordered_set<const Op*>& dead) {
  Block& gb = g.region(0).block();
  Block& pb = p.region(0).block();
  std::vector<Value*> map;
  for (size_t i = 0; i < p.num_operands(); ++i) {
    Value* u = p.operand(i);
    Value* a = nullptr;
    for (size_t j = 0; j < g.num_operands(); ++j)
      if (j != k && g.operand(j) == u) a = gb.arg(j);
    if (!a) {
      g.add_operand(u);
      a = gb.add_arg(TensorType::scalar(u->type.dtype));
    }
    map.push_back(a);
  }
  std::vector<Value*> ys = inline_block(pb, gb, 0);
  for (size_t i = 0; i < pb.num_args(); ++i) pb.arg(i)->replace_all_uses_with(map[i]);
  gb.arg(k)->replace_all_uses_with(ys.at(0));
  g.erase_operand(k);
  gb.erase_arg(k);
  pb.drop_all_references();
  p.drop_operands();  // p stays in the block until erase_all, using nothing
  dead.insert(&p);
}

// A cheap producer (one arithmetic op, not a transcendental) used by several fusable ops of
// its block: one copy per use, so that each consumer's loop recomputes it instead of
// reading a materialized tensor (softmax's x - max feeds both exp and log_softmax).
bool cheap(const Op& op) {
  if (auto u = as_unary(op.kind())) return !(rt::props(*u) & rt::kFloat);
  if (auto b = as_binary(op.kind())) return !(rt::props(*b) & rt::kFloat) || *b == rt::BinaryOp::Div;
  return true;
}

bool duplicate_cheap_producers(Block& b) {
  bool changed = false;
  for (size_t i = 0; i < b.size(); ++i) {
    Op& p = b.op(i);
    if (!fusable(p) || !cheap(p) || p.result()->uses().size() < 2) continue;
    const Value* r = p.result();
    bool all = true;
    for (const Use& u : r->uses())
      all = all && u.op->parent() == &b && fusable(*u.op) && u.op->result()->type.dims == r->type.dims;
    if (!all) continue;
    std::vector<Use> uses = r->uses();
    for (size_t k = 1; k < uses.size(); ++k) {
      auto c = std::make_unique<Op>(p.kind(), p.loc);
      c->attrs = p.attrs;
      for (Value* v : p.operands()) c->add_operand(v);
      Value* cr = c->add_result(r->type);
      uses[k].op->set_operand(uses[k].index, cr);
      b.insert(i + 1, std::move(c));
    }
    changed = true;
  }
  return changed;
}

// Which axes a reduce op reduces, normalized: 0 none of the supported forms, 1 all axes,
// 2 the last axis only (of a rank >= 2 operand; rank 1's last is all).
int reduced_form(const Op& r) {
  const IntList& axes = std::get<IntList>(r.attrs.at("axes"));
  int64_t rank = r.operand(0)->type.rank();
  if (rank == 0 || axes.empty()) return 0;  // no axes: reduces nothing (sum(x, axis=[]) is x)
  std::vector<bool> mask(static_cast<size_t>(rank), false);
  for (int64_t a : axes) {
    int64_t k = a < 0 ? a + rank : a;
    if (k < 0 || k >= rank) return 0;
    mask[static_cast<size_t>(k)] = true;
  }
  bool all = true;
  for (bool m : mask) all = all && m;
  if (all) return 1;
  for (int64_t i = 0; i + 1 < rank; ++i)
    if (mask[static_cast<size_t>(i)]) return 0;
  return mask.back() ? 2 : 0;
}

// A sum or mean (over all axes, or the last) of a float fused loop's result that nothing
// else uses.
bool reducible(const Op& r, const Block& b) {
  if (r.kind() != OpKind::Reduce || r.parent() != &b) return false;
  const std::string& kind = std::get<std::string>(r.attrs.at("kind"));
  if (kind != "sum" && kind != "mean") return false;
  const Value* v = r.operand(0);
  DType d = v->type.dtype;
  return (d == DType::F32 || d == DType::F64) && r.result()->type.dtype == d && reduced_form(r) != 0;
}

// Replaces reduce r of fused op f's result by one fused_reduce: operands reordered so that
// one of the result's shape (the loop's domain) comes first.
void absorb_reduce(Block& b, Op& f, Op& r) {
  int form = reduced_form(r);
  int64_t rank = f.result()->type.rank();
  IntList axes;
  if (form == 1)
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  else
    axes.push_back(rank - 1);
  // An operand of the domain's shape first, when there is one (else the operands'
  // broadcast is the domain: fused_domain).
  std::vector<size_t> order;
  for (size_t j = 0; j < f.num_operands(); ++j)
    if (order.empty() && fused_operand_kind(f.operand(j)->type, f.result()->type) == FusedOperand::Full) order.push_back(j);
  for (size_t j = 0; j < f.num_operands(); ++j)
    if (order.empty() || j != order[0]) order.push_back(j);
  auto g = std::make_unique<Op>(OpKind::FusedReduce, r.loc);
  g->attrs = {{"kind", r.attrs.at("kind")}, {"axes", axes}, {"keepdims", r.attrs.at("keepdims")}};
  Block& gb = g->add_region().block();
  Block& fb = f.region(0).block();
  std::vector<Value*> args(f.num_operands(), nullptr);
  for (size_t j : order) {
    g->add_operand(f.operand(j));
    args[j] = gb.add_arg(fb.arg(j)->type);
  }
  std::vector<Value*> ys = inline_block(fb, gb, 0);
  for (size_t j = 0; j < fb.num_args(); ++j) fb.arg(j)->replace_all_uses_with(args[j]);
  auto y = std::make_unique<Op>(OpKind::Yield, r.loc);
  y->add_operand(ys.at(0));
  gb.append(std::move(y));
  Value* res = g->add_result(r.result()->type);
  r.result()->replace_all_uses_with(res);
  size_t at = b.index_of(&r);
  b.erase(at);
  b.insert(at, std::move(g));
  fb.drop_all_references();
  b.erase(b.index_of(&f));
}

// An elementwise op that fuses and reads broadcast_to(v), where v broadcasts to its
// result, reads v itself (a strided operand): nothing materialized for the broadcast
// (max-pool's backward broadcasts the upstream gradient over each window). A broadcast
// left without users is erased.
bool read_through_broadcasts(Block& b) {
  bool changed = false;
  std::unordered_set<const Op*> dead;
  for (size_t i = 0; i < b.size(); ++i) {
    Op& op = b.op(i);
    if (!op.has_trait(kElementwise) || op.num_results() != 1 || op.num_regions()) continue;
    for (size_t j = 0; j < op.num_operands(); ++j) {
      Value* v = op.operand(j);
      Op* d = v->def();
      if (!d || d->kind() != OpKind::BroadcastTo || d->num_operands() != 1 || d->parent() != &b) continue;
      Value* src = d->operand(0);
      if (src->type.dtype != v->type.dtype || fused_operand_kind(src->type, op.result()->type) == FusedOperand::None)
        continue;
      op.set_operand(j, src);
      if (!fusable(op)) {
        op.set_operand(j, v);
        continue;
      }
      changed = true;
      if (d->result()->uses().empty()) dead.insert(d);
    }
  }
  b.erase_all(dead);
  return changed;
}

bool fuse_block(Block& b) {
  bool changed = false;
  for (size_t i = 0; i < b.size(); ++i)
    for (size_t r = 0; r < b.op(i).num_regions(); ++r) changed |= fuse_block(b.op(i).region(r).block());
  changed |= read_through_broadcasts(b);
  changed |= duplicate_cheap_producers(b);
  // Wrap every member of a chain, then merge producers into consumers.
  std::vector<bool> wrapIt(b.size(), false);
  for (size_t i = 0; i < b.size(); ++i) {
    const Op& op = b.op(i);
    bool feedsReduce = op.num_results() == 1 && op.result()->uses().size() == 1 &&
                       reducible(*op.result()->uses()[0].op, b);
    wrapIt[i] = fusable(op) && (in_chain(op) || worth_alone(op) || feedsReduce);
  }
  for (size_t i = 0; i < b.size(); ++i)
    if (wrapIt[i]) {
      wrap(b, i);
      changed = true;
    }
  // One pass in program order: a producer precedes its consumer, so by the time a fused op
  // is reached its producers have absorbed theirs. Merged producers are erased together at
  // the end. (Restarting from the top after each merge made a chain of n ops cost n^2.)
  std::unordered_set<const Op*> dead;
  for (size_t i = 0; i < b.size(); ++i) {
    Op& g = b.op(i);
    if (g.kind() != OpKind::Fused || dead.count(&g)) continue;
    for (size_t k = 0; k < g.num_operands(); ++k) {
      Value* v = g.operand(k);
      Op* p = v->def();
      if (p && p->kind() == OpKind::Fused && p->parent() == &b && !dead.count(p) && single_use_by(v, g) &&
          v->type.dims == g.result()->type.dims &&
          p->region(0).block().size() + g.region(0).block().size() <= kMaxFusedBody) {
        merge(*p, g, k, dead);
        changed = true;
        k = static_cast<size_t>(-1);  // g's operands changed: look at all of them again
      }
    }
  }
  b.erase_all(dead);
  // A sum or mean of a fused loop's result that nothing else reads: one loop nest.
  for (size_t i = 0; i < b.size(); ++i) {
    Op& r = b.op(i);
    if (!reducible(r, b)) continue;
    Op* f = r.operand(0)->def();
    if (!f || f->kind() != OpKind::Fused || f->parent() != &b || !single_use_by(r.operand(0), r)) continue;
    absorb_reduce(b, *f, r);
    changed = true;
    i = static_cast<size_t>(-1);  // positions moved: start over
  }
  return changed;
}

class Fusion : public Pass {
 public:
  std::string_view name() const override { return "fusion"; }
  bool run(Function& f) override { return fuse_block(f.entry()); }
};

}  // namespace

std::unique_ptr<Pass> create_fusion_pass() { return std::make_unique<Fusion>(); }

}  // namespace tdl::ir
