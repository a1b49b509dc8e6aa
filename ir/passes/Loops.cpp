// Loop analysis (issue 17): sizes hoisted, counted loops recognized, index checks removed.
//   Rewrites:
//   - `dim(v, a)` whose dim is a symbol that a parameter's dim also is becomes one
//     `dim(param, j)` at the top of the function (a loop asking a carried tensor for its
//     size asks once, before the loop).
//   - A counted while: carried i64 `i` with a constant init >= 0, cond `lt(i, n)` with n
//     defined outside the loop, body yielding `add(i, 1)` (or the for-over-range form
//     `select(gt(i, MAX - 1), n, add(i, 1))`, whose overflow guard cannot fire when i < n:
//     it becomes `add(i, 1)`). Inside its body 0 <= i < n, so an `index`/`update` whose
//     every index is such an i on an axis of size >= n gets attribute `inbounds = true`:
//     code generation drops its bounds check and negative-index fix-up.
//   Preconditions: the function verifies.
//   Guarantees: the same results and errors (an index marked inbounds is in range on
//     every path that reaches it).
#include <climits>
#include <map>

#include "ir/Builder.h"
#include "ir/Pass.h"
#include "ir/Rewrite.h"

namespace tdl::ir {

namespace {

bool isBinary(const Value* v, rt::BinaryOp k) {
  if (v->is_block_arg()) return false;
  auto b = as_binary(v->def()->kind());
  return b && *b == k;
}

std::optional<int64_t> constInt(const Value* v) {
  const rt::Tensor* t = constant_value(v);
  if (!t || t->numel() != 1 || rt::is_float(t->dtype())) return std::nullopt;
  return t->item_int64(0);
}

// v is add(i, 1).
bool isIncrement(const Value* v, const Value* i) {
  if (!isBinary(v, rt::BinaryOp::Add)) return false;
  const Op& a = *v->def();
  auto one = constInt(a.operand(1));
  return a.operand(0) == i && one && *one == 1;
}

// A while whose condition is lt(i, n) with i a carried i64 scalar starting at a constant
// >= 0 and n defined outside the loop: (i's index among the carried values, n).
std::optional<std::pair<size_t, Value*>> countedHead(const Op& w) {
  const Block& cb = w.region(0).block();
  const Value* c = cb.terminator()->operand(0);
  if (!isBinary(c, rt::BinaryOp::Lt)) return std::nullopt;
  const Value* iv = c->def()->operand(0);
  Value* n = c->def()->operand(1);
  if (!iv->is_block_arg() || iv->block() != &cb || defined_inside(n, &w)) return std::nullopt;
  size_t k = iv->index();
  if (iv->type.dtype != DType::I64 || !iv->type.is_scalar() || !n->type.is_scalar()) return std::nullopt;
  auto init = constInt(w.operand(k));
  if (!init || *init < 0) return std::nullopt;
  return std::make_pair(k, n);
}

class Loops {
 public:
  explicit Loops(Function& f) : f_(f) {}

  bool run() {
    bool changed = hoistDims(f_.entry());
    changed |= loops(f_.entry());
    return changed;
  }

 private:
  Function& f_;
  std::map<std::string, Value*> made_;  // dims made at the head, by symbol

  // A dim(param, j) of symbol s at the top level of the function before top-level op
  // `before` (so it dominates it): an existing one, else one made at the head.
  Value* canonical(const std::string& s, const Op* before) {
    Block& entry = f_.entry();
    auto ofSym = [&](const Op& o) {
      if (o.kind() != OpKind::Dim || !o.operand(0)->is_block_arg() || o.operand(0)->block() != &entry) return false;
      const Dim& d = o.operand(0)->type.dims.at(static_cast<size_t>(o.int_attr("axis")));
      return d.is_symbolic() && d.sym == s;
    };
    for (size_t i = 0; i < entry.size() && &entry.op(i) != before; ++i)
      if (ofSym(entry.op(i))) return entry.op(i).result();
    if (auto it = made_.find(s); it != made_.end()) return it->second;
    for (Value* p : f_.params())
      for (size_t j = 0; j < p->type.dims.size(); ++j)
        if (p->type.dims[j].is_symbolic() && p->type.dims[j].sym == s) {
          Builder b(f_);
          b.set_insertion(entry, 0);
          b.set_loc(before->loc);
          return made_[s] = b.dim(p, static_cast<int64_t>(j));
        }
    return made_[s] = nullptr;
  }

  // Dims asked inside regions (loops, branches) of a symbol that a parameter has.
  bool hoistDims(Block& entry) {
    bool changed = false;
    for (size_t t = 0; t < entry.size(); ++t) {
      Op* top = &entry.op(t);
      for (size_t r = 0; r < top->num_regions(); ++r)
        walk(top->region(r).block(), [&](Op& op) {
          if (op.kind() != OpKind::Dim || !op.result()->has_uses()) return;
          const Dim& d = op.operand(0)->type.dims.at(static_cast<size_t>(op.int_attr("axis")));
          if (!d.is_symbolic()) return;
          if (Value* c = canonical(d.sym, top)) {
            op.result()->replace_all_uses_with(c);
            changed = true;
          }
        });
      t = entry.index_of(top);  // a dim made at the head moved it
    }
    return changed;
  }

  bool loops(Block& b) {
    bool changed = false;
    for (size_t i = 0; i < b.size(); ++i) {
      Op& op = b.op(i);
      for (size_t r = 0; r < op.num_regions(); ++r) changed |= loops(op.region(r).block());
      if (op.kind() == OpKind::While) changed |= counted(op);
    }
    return changed;
  }

  // Whether an axis of size d has at least n elements.
  static bool atLeast(const Dim& d, const Value* n) {
    if (auto c = constInt(n)) return d.is_known() && d.size >= *c;
    if (n->is_block_arg() || n->def()->kind() != OpKind::Dim) return false;
    const Dim& nd = n->def()->operand(0)->type.dims.at(static_cast<size_t>(n->def()->int_attr("axis")));
    if (nd.is_symbolic()) return d.is_symbolic() && d.sym == nd.sym;
    return d.is_known() && nd.is_known() && d.size >= nd.size;
  }

  bool counted(Op& w) {
    auto head = countedHead(w);
    if (!head) return false;
    auto [k, n] = *head;
    Block& bb = w.region(1).block();
    Value* i = bb.arg(k);
    Op& y = *bb.terminator();
    Value* next = y.operand(k);
    auto isInc = [&](const Value* v) { return isIncrement(v, i); };
    bool changed = false;
    if (!next->is_block_arg() && next->def()->kind() == OpKind::Select && isInc(next->def()->operand(2))) {
      // The for-over-range guard: select(gt(i, MAX - 1), stop, i + 1); i < n <= MAX.
      const Value* g = next->def()->operand(0);
      auto lim = isBinary(g, rt::BinaryOp::Gt) && g->def()->operand(0) == i ? constInt(g->def()->operand(1))
                                                                             : std::nullopt;
      if (lim && *lim >= INT64_MAX - 1) {
        next = next->def()->operand(2);
        y.set_operand(k, next);
        changed = true;
      }
    }
    if (!isInc(next)) return changed;
    // 0 <= i < n inside the body: element accesses indexed by i on axes of size >= n.
    walk(bb, [&](Op& o) {
      if (o.kind() != OpKind::Index && o.kind() != OpKind::Update) return;
      size_t first = o.kind() == OpKind::Update ? 2 : 1;
      const TensorType& t = o.operand(0)->type;
      if (o.attr("inbounds") || t.rank() != static_cast<int64_t>(o.num_operands() - first) || t.rank() == 0) return;
      for (size_t a = first; a < o.num_operands(); ++a)
        if (o.operand(a) != i || !atLeast(t.dims[a - first], n)) return;
      o.attrs["inbounds"] = true;
      changed = true;
    });
    return changed;
  }
};

class LoopsPass : public Pass {
 public:
  std::string_view name() const override { return "loops"; }
  bool run(Function& f) override { return Loops(f).run(); }
};

}  // namespace

std::unique_ptr<Pass> create_loops_pass() { return std::make_unique<LoopsPass>(); }

bool is_counted_while(const Op& w) {
  if (w.kind() != OpKind::While) return false;
  auto head = countedHead(w);
  if (!head) return false;
  const Block& bb = w.region(1).block();
  return isIncrement(bb.terminator()->operand(head->first), bb.arg(head->first));
}

}  // namespace tdl::ir
