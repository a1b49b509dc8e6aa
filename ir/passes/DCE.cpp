// Dead code elimination.
//   Rewrites:
//     - removes ops that are removable (pure, or cond/while with only pure ops inside)
//       and whose results are unused;
//     - removes unused results of cond (and the values their regions yield);
//     - removes dead carried values of while: a slot whose result and cond argument are
//       unused and that feeds, in the body, only other dead slots;
//     - inlines a cond whose predicate is a constant (the taken region replaces it);
//     - removes a while whose cond region yields a constant false and has no effects
//       (its results are its initial values).
//   Preconditions: the function verifies.
//   Guarantees: effectful and may-fail ops stay, in their order; so does an op whose result
//     type binds a symbolic dim that other values' types name (the run time learns the
//     symbol's size from it). A cond/while is only
//     inlined/removed when the values replacing its results have exactly its result
//     types (a more specific yield type is left alone). A pure loop that would not
//     terminate may be removed (its results being unused).
#include <map>
#include <set>
#include <string>
#include <unordered_set>

#include "ir/Pass.h"
#include "ir/Rewrite.h"
#include "runtime/Error.h"

namespace tdl::ir {

namespace {

bool same_types(const std::vector<Value*>& values, const Op& op) {
  for (size_t i = 0; i < values.size(); ++i)
    if (!(values[i]->type == op.result(i)->type)) return false;
  return true;
}

bool block(Block& b);

// cond with a constant predicate: inline the taken region.
bool inline_constant_cond(Op& op) {
  const rt::Tensor* p = constant_value(op.operand(0));
  if (!p) return false;
  Block& taken = op.region(p->scalar_as_bool() ? 0 : 1).block();
  Op* y = taken.terminator();
  if (!y || !same_types(y->operands(), op)) return false;
  Block& parent = *op.parent();
  std::vector<Value*> values = inline_block(taken, parent, parent.index_of(&op));
  replace_op(op, values);
  return true;
}

// while whose condition is a constant false: it never runs its body.
bool remove_false_while(Op& op) {
  Block& c = op.region(0).block();
  Op* y = c.terminator();
  if (!y || y->num_operands() != 1 || has_effects(c)) return false;
  const rt::Tensor* v = constant_value(y->operand(0));
  if (!v || v->scalar_as_bool() || !same_types(op.operands(), op)) return false;
  replace_op(op, op.operands());
  return true;
}

bool value_binds_used_symbol(const Value* v);

bool remove_unused_cond_results(Op& op) {
  bool changed = false;
  for (size_t i = op.num_results(); i-- > 0;) {
    if (op.result(i)->has_uses() || value_binds_used_symbol(op.result(i))) continue;
    for (size_t r = 0; r < 2; ++r)
      if (Op* y = op.region(r).block().terminator()) y->erase_operand(i);
    op.erase_result(i);
    changed = true;
  }
  return changed;
}

// Every value used by `op` or by ops inside its regions.
void collect_uses(const Op& op, std::vector<Value*>& out) {
  out.insert(out.end(), op.operands().begin(), op.operands().end());
  for (size_t r = 0; r < op.num_regions(); ++r) {
    const Block& b = op.region(r).block();
    for (size_t i = 0; i < b.size(); ++i) collect_uses(b.op(i), out);
  }
}

// Whether op d sits in `body` or in a region nested inside it.
bool inside(const Op* d, const Block* body) {
  for (const Block* b = d->parent(); b;) {
    if (b == body) return true;
    const Op* p = b->parent() ? b->parent()->parent_op() : nullptr;
    if (!p) return false;
    b = p->parent();
  }
  return false;
}

// The carried slots of a while that are needed: by a result use, by the cond region, by
// an effect in the body, or by the body's computation of a needed slot.
std::vector<bool> live_slots(Op& op) {
  size_t n = op.num_results();
  Block& cond = op.region(0).block();
  Block& body = op.region(1).block();
  Op* yield = body.terminator();
  std::vector<bool> live(n, false);
  for (size_t i = 0; i < n; ++i)
    live[i] = op.result(i)->has_uses() || cond.arg(i)->has_uses() || !yield || value_binds_used_symbol(op.result(i));
  std::vector<Value*> roots;
  for (size_t i = 0; i < body.size(); ++i)
    if (&body.op(i) != yield && !is_removable(body.op(i))) collect_uses(body.op(i), roots);
  for (bool grew = true; grew;) {
    grew = false;
    std::vector<Value*> work = roots;
    for (size_t i = 0; i < n; ++i)
      if (live[i] && yield) work.push_back(yield->operand(i));
    std::unordered_set<Value*> seen;
    while (!work.empty()) {
      Value* v = work.back();
      work.pop_back();
      if (!seen.insert(v).second) continue;
      if (v->is_block_arg() && v->block() == &body) {
        if (!live[v->index()]) live[v->index()] = grew = true;
      } else if (Op* d = v->def(); d && inside(d, &body)) {
        collect_uses(*d, work);
      }
    }
  }
  return live;
}

bool remove_dead_carried(Op& op) {
  std::vector<bool> live = live_slots(op);
  Block& cond = op.region(0).block();
  Block& body = op.region(1).block();
  // All dead slots at once: one may feed another (a = b; b = x, differentiated), so each
  // yield goes first, then what only fed them, then the slots.
  std::vector<size_t> dead;
  for (size_t i = live.size(); i-- > 0;)
    if (!live[i]) dead.push_back(i);
  if (dead.empty()) return false;
  // Each dead slot is first carried unchanged (its yield its own arg), then what only fed
  // the dead slots goes, then each slot that nothing else reads now. An op kept for the
  // size it gives a symbol (binds_used_symbol) may still read a dead slot: that slot stays,
  // carried unchanged.
  bool changed = false;
  Op* yield = body.terminator();
  for (size_t i : dead)
    if (yield->operand(i) != body.arg(i)) yield->set_operand(i, body.arg(i)), changed = true;
  block(body);
  for (size_t i : dead) {
    const auto& uses = body.arg(i)->uses();
    if (cond.arg(i)->has_uses() || uses.size() != 1 || uses[0].op != yield || uses[0].index != i) continue;
    yield->erase_operand(i);
    body.erase_arg(i);
    cond.erase_arg(i);
    op.erase_operand(i);
    op.erase_result(i);
    changed = true;
  }
  return changed;
}

bool unused(const Op& op) {
  for (Value* r : op.results())
    if (r->has_uses()) return false;
  return true;
}

// How many values of the function have each symbolic dim in their type. A symbol gets its
// size at run time from the op that first produces it (a fresh symbol of a dyn_slice, ...):
// that op stays while other values' types name the symbol, even if its result is unused.
thread_local std::map<std::string, int> g_symUses;
thread_local std::set<std::string> g_paramSyms;  // bound by the arguments, whatever DCE removes

void count_syms(const Block& b) {
  for (Value* a : b.args())
    for (const Dim& d : a->type.dims)
      if (d.is_symbolic()) ++g_symUses[d.sym];
  for (size_t i = 0; i < b.size(); ++i) {
    const Op& op = b.op(i);
    for (Value* r : op.results())
      for (const Dim& d : r->type.dims)
        if (d.is_symbolic()) ++g_symUses[d.sym];
    for (size_t r = 0; r < op.num_regions(); ++r) count_syms(op.region(r).block());
  }
}

bool binds_used_symbol(const Op& op) {
  std::set<std::string> in;
  for (Value* v : op.operands())
    for (const Dim& d : v->type.dims)
      if (d.is_symbolic()) in.insert(d.sym);
  std::map<std::string, int> own;
  for (Value* r : op.results())
    for (const Dim& d : r->type.dims)
      if (d.is_symbolic() && !in.count(d.sym)) ++own[d.sym];
  for (auto& [sym, n] : own)
    if (g_symUses[sym] > n) return true;
  return false;
}

// Whether a result (a cond's, a while's) gives a symbol the size that other values' types
// name: it stays, unused, so that the size is known at run time (codegen tdl_bind_sym).
bool value_binds_used_symbol(const Value* v) {
  std::map<std::string, int> own;
  for (const Dim& d : v->type.dims)
    if (d.is_symbolic() && !g_paramSyms.count(d.sym)) ++own[d.sym];
  for (auto& [sym, n] : own)
    if (g_symUses[sym] > n) return true;
  return false;
}

bool block(Block& b) {
  bool changed = false;
  for (size_t i = b.size(); i-- > 0;) {
    if (i >= b.size()) continue;  // inlining shifted the block
    Op& op = b.op(i);
    for (size_t r = 0; r < op.num_regions(); ++r) changed |= block(op.region(r).block());
    if (op.kind() == OpKind::Cond) {
      if (inline_constant_cond(op)) { changed = true; continue; }
      changed |= remove_unused_cond_results(op);
    } else if (op.kind() == OpKind::While) {
      if (remove_false_while(op)) { changed = true; continue; }
      changed |= remove_dead_carried(op);
    }
    if (!op.has_trait(kTerminator) && unused(op) && is_removable(op) && !binds_used_symbol(op)) {
      b.erase(i);
      changed = true;
    }
  }
  return changed;
}

class Dce : public Pass {
 public:
  std::string_view name() const override { return "dce"; }
  bool run(Function& f) override {
    g_symUses.clear();
    count_syms(f.entry());
    g_paramSyms.clear();
    for (const Value* p : f.params())
      for (const Dim& d : p->type.dims)
        if (d.is_symbolic()) g_paramSyms.insert(d.sym);
    return block(f.entry());
  }
};

}  // namespace

std::unique_ptr<Pass> create_dce_pass() { return std::make_unique<Dce>(); }

}  // namespace tdl::ir
