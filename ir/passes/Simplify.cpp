// Algebraic simplification (DESIGN habit 8: a rule list, one rule per line, its identity
// beside it).
//   Rewrites: each op matching a rule of kRules is replaced by the value the rule gives.
//   Preconditions: the function verifies.
//   Guarantees: bit-exact results, NaN and -0.0 included — rules that only hold for
//     integers check the dtype (x * 0 is not 0 for x = NaN or -1.0). A rule that returns
//     an operand fires only when the operand already has the result's type (so no
//     broadcasting or promotion is lost); select keeps its broadcast with broadcast_to.
#include <cmath>
#include <cstring>

#include "ir/Builder.h"
#include "ir/Pass.h"
#include "ir/Rewrite.h"

namespace tdl::ir {

namespace {

// ---- matchers ----
bool is_int_like(const Value* v) { return !rt::is_float(v->type.dtype); }
bool same_type(const Value* a, const Op& op) { return a->type == op.result()->type; }
// x, if it can stand for op's result as it is.
Value* as_result(Value* x, const Op& op) { return same_type(x, op) ? x : nullptr; }
bool splat_is(const Value* v, double want) {
  auto s = splat_value(v);
  return s && *s == want;
}
// -0.0 is the float identity of +: x + -0.0 == x for every x, while -0.0 + 0.0 == +0.0.
bool is_add_identity(const Value* v, const Op& op) {
  auto s = splat_value(v);
  if (!s || *s != 0) return false;
  return !rt::is_float(op.result()->type.dtype) || std::signbit(*s);
}
bool def_is(const Value* v, OpKind k) { return v->def() && v->def()->kind() == k; }

// A splat of `value` with op's result type (a constant scalar broadcast when needed).
Value* splat(Builder& b, const Op& op, double value) {
  const TensorType& t = op.result()->type;
  Value* s = b.constant(rt::Tensor::scalar_of(t.dtype, value));
  return t.is_scalar() ? s : b.broadcast_to(s, t.dims);
}

Value* lhs(const Op& op) { return op.operand(0); }
Value* rhs(const Op& op) { return op.operand(1); }

// ---- rules ----
using RuleFn = Value* (*)(Op& op, Builder& b);

Value* add_zero_rhs(Op& op, Builder&) { return is_add_identity(rhs(op), op) ? as_result(lhs(op), op) : nullptr; }
Value* add_zero_lhs(Op& op, Builder&) { return is_add_identity(lhs(op), op) ? as_result(rhs(op), op) : nullptr; }
Value* sub_zero(Op& op, Builder&) { return splat_is(rhs(op), 0) && !std::signbit(*splat_value(rhs(op))) ? as_result(lhs(op), op) : nullptr; }
Value* sub_self(Op& op, Builder& b) { return lhs(op) == rhs(op) && is_int_like(lhs(op)) && is_int_like(op.result()) ? splat(b, op, 0) : nullptr; }
Value* mul_one_rhs(Op& op, Builder&) { return splat_is(rhs(op), 1) ? as_result(lhs(op), op) : nullptr; }
Value* mul_one_lhs(Op& op, Builder&) { return splat_is(lhs(op), 1) ? as_result(rhs(op), op) : nullptr; }
Value* mul_zero(Op& op, Builder& b) {
  bool zero = splat_is(lhs(op), 0) || splat_is(rhs(op), 0);
  return zero && is_int_like(lhs(op)) && is_int_like(rhs(op)) ? splat(b, op, 0) : nullptr;
}
Value* div_one(Op& op, Builder&) { return splat_is(rhs(op), 1) ? as_result(lhs(op), op) : nullptr; }
Value* pow_one(Op& op, Builder&) { return splat_is(rhs(op), 1) ? as_result(lhs(op), op) : nullptr; }
Value* pow_two(Op& op, Builder& b) {
  if (!splat_is(rhs(op), 2) || !rhs(op)->type.is_scalar() || lhs(op)->type.dtype != op.result()->type.dtype ||
      lhs(op)->type.dtype == DType::Bool)
    return nullptr;
  return b.unary(rt::UnaryOp::Square, lhs(op));
}
Value* involution(Op& op, Builder&) {
  Value* x = lhs(op);
  return def_is(x, op.kind()) ? as_result(x->def()->operand(0), op) : nullptr;
}
Value* idempotent(Op& op, Builder&) { return lhs(op) == rhs(op) ? as_result(lhs(op), op) : nullptr; }
Value* compare_self(Op& op, Builder& b) {
  if (lhs(op) != rhs(op) || !is_int_like(lhs(op))) return nullptr;
  return splat(b, op, op.kind() == OpKind::Eq || op.kind() == OpKind::Le || op.kind() == OpKind::Ge ? 1 : 0);
}
Value* same_type_noop(Op& op, Builder&) { return as_result(lhs(op), op); }
Value* reshape_reshape(Op& op, Builder& b) {
  if (!def_is(lhs(op), OpKind::Reshape)) return nullptr;
  return b.reshape(lhs(op)->def()->operand(0), op.result()->type.dims);
}
Value* transpose_identity(Op& op, Builder&) {
  const IntList& p = op.ints_attr("perm");
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] != static_cast<int64_t>(i)) return nullptr;
  return as_result(lhs(op), op);
}
Value* transpose_transpose(Op& op, Builder& b) {
  if (!def_is(lhs(op), OpKind::Transpose)) return nullptr;
  const Op& inner = *lhs(op)->def();
  const IntList &p = inner.ints_attr("perm"), &q = op.ints_attr("perm");
  IntList pq;
  for (int64_t i : q) pq.push_back(p[i]);  // r.dims[i] = y.dims[q[i]] = x.dims[p[q[i]]]
  return b.transpose(inner.operand(0), pq);
}
Value* select_constant(Op& op, Builder& b) {
  auto c = splat_value(op.operand(0));
  if (!c) return nullptr;
  Value* v = op.operand(*c != 0 ? 1 : 2);
  const TensorType& t = op.result()->type;
  if (v->type.dtype != t.dtype) v = b.cast(v, t.dtype);
  if (v->type.dims != t.dims) v = b.broadcast_to(v, t.dims);
  return v;
}
Value* select_same(Op& op, Builder&) { return op.operand(1) == op.operand(2) ? as_result(op.operand(1), op) : nullptr; }
Value* dim_known(Op& op, Builder& b) {
  const Dim& d = lhs(op)->type.dims.at(static_cast<size_t>(op.int_attr("axis")));
  return d.is_known() ? b.constant(rt::Tensor::scalar(d.size)) : nullptr;
}

struct Rule {
  OpKind kind;
  RuleFn apply;
};

const Rule kRules[] = {
    {OpKind::Add, add_zero_rhs},                // x + 0 → x       (floats: only x + -0.0, as -0.0 + 0.0 = +0.0)
    {OpKind::Add, add_zero_lhs},                // 0 + x → x       (same)
    {OpKind::Sub, sub_zero},                    // x - 0 → x       (+0.0 only; exact for -0.0 - 0.0 = -0.0)
    {OpKind::Sub, sub_self},                    // x - x → 0       (integers: inf - inf is nan)
    {OpKind::Mul, mul_one_rhs},                 // x * 1 → x
    {OpKind::Mul, mul_one_lhs},                 // 1 * x → x
    {OpKind::Mul, mul_zero},                    // x * 0 → 0, 0 * x → 0   (integers: nan * 0 is nan, -1.0 * 0 is -0.0)
    {OpKind::Div, div_one},                     // x / 1 → x       (floats; int / int is f32 so the types differ)
    {OpKind::Pow, pow_one},                     // x ** 1 → x
    {OpKind::Pow, pow_two},                     // x ** 2 → square(x)  (the runtime's pow squares too)
    {OpKind::Neg, involution},                  // -(-x) → x       (integers wrap both ways)
    {OpKind::BitNot, involution},               // ~~x → x
    {OpKind::LogicalNot, involution},           // not not x → x   (x bool, else the types differ)
    {OpKind::Maximum, idempotent},              // maximum(x, x) → x
    {OpKind::Minimum, idempotent},              // minimum(x, x) → x
    {OpKind::BitAnd, idempotent},               // x & x → x
    {OpKind::BitOr, idempotent},                // x | x → x
    {OpKind::LogicalAnd, idempotent},           // x and x → x     (x bool)
    {OpKind::LogicalOr, idempotent},            // x or x → x      (x bool)
    {OpKind::Eq, compare_self},                 // x == x → true   (integers/bool: nan != nan)
    {OpKind::Le, compare_self},                 // x <= x → true   (integers/bool)
    {OpKind::Ge, compare_self},                 // x >= x → true   (integers/bool)
    {OpKind::Ne, compare_self},                 // x != x → false  (integers/bool)
    {OpKind::Lt, compare_self},                 // x < x → false   (integers/bool)
    {OpKind::Gt, compare_self},                 // x > x → false   (integers/bool)
    {OpKind::Cast, same_type_noop},             // cast(x: T) to T → x
    {OpKind::BroadcastTo, same_type_noop},      // broadcast_to(x) to x's own shape → x
    {OpKind::Reshape, same_type_noop},          // reshape(x) to x's own shape → x
    {OpKind::Reshape, reshape_reshape},         // reshape(reshape(x)) → reshape(x)
    {OpKind::Transpose, transpose_identity},    // transpose(x, [0, 1, ...]) → x
    {OpKind::Transpose, transpose_transpose},   // transpose(transpose(x, p), q) → transpose(x, p∘q)
    {OpKind::Select, select_constant},          // select(true, a, b) → a; select(false, a, b) → b (cast/broadcast kept)
    {OpKind::Select, select_same},              // select(c, a, a) → a
    {OpKind::Dim, dim_known},                   // dim(x: [.., 4, ..], k) → 4
};

bool simplify_block(Block& blk, Function& f) {
  bool changed = false;
  Builder b(f);
  for (size_t i = 0; i < blk.size();) {
    Op* op = &blk.op(i);
    for (size_t r = 0; r < op->num_regions(); ++r) changed |= simplify_block(op->region(r).block(), f);
    bool fired = false;
    for (const Rule& rule : kRules) {
      if (rule.kind != op->kind()) continue;
      b.set_insertion(blk, i);
      b.set_loc(op->loc);
      if (Value* v = rule.apply(*op, b)) {
        replace_op(*op, {v});
        fired = true;
        break;
      }
    }
    // An elementwise op reading a broadcast constant splat next to an operand of its
    // result's shape reads the scalar instead: the same value at every element, and no
    // tensor materialized for it (a tape's seed broadcast to a sum's shape, times g).
    if (!fired && op->has_trait(kElementwise) && op->num_results() == 1 && op->num_regions() == 0) {
      const TensorType& rt = op->result()->type;
      for (size_t j = 0; j < op->num_operands(); ++j) {
        const Value* v = op->operand(j);
        const rt::Tensor* c = def_is(v, OpKind::BroadcastTo) ? splat_tensor(v) : nullptr;
        if (!c || v->type.is_scalar()) continue;
        bool other = false;  // another operand keeps the result's shape
        for (size_t k = 0; k < op->num_operands(); ++k)
          other = other || (k != j && op->operand(k)->type.dims == rt.dims);
        if (!other) continue;
        rt::Tensor one = rt::Tensor::empty(c->dtype(), {});
        std::memcpy(one.mutable_raw(), c->raw(), rt::itemsize(c->dtype()));  // bit for bit
        b.set_insertion(blk, i);
        b.set_loc(op->loc);
        op->set_operand(j, b.constant(one));
        changed = true;
      }
    }
    // After a rewrite, position i holds the first new op (or the next one): visit it.
    changed |= fired;
    if (!fired) ++i;
  }
  return changed;
}

class Simplify : public Pass {
 public:
  std::string_view name() const override { return "simplify"; }
  bool run(Function& f) override { return simplify_block(f.entry(), f); }
};

}  // namespace

std::unique_ptr<Pass> create_simplify_pass() { return std::make_unique<Simplify>(); }

}  // namespace tdl::ir
