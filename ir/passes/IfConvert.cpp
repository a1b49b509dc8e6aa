// If-conversion of small conds (issue 17): a `cond` whose branches only compute scalars
// and update one element of the same tensor becomes straight-line code, so that a loop
// around it has no branch and vectorizes:
//
//   %r = cond(%c) { %a = index(%y, %i); %u = update(%y, %a * 2, %i); yield(%u) }
//                 { %b = index(%y, %i); %w = update(%y, %b + 1, %i); yield(%w) }
//   =>  %a = index(%y, %i); %b = index(%y, %i)
//       %r = update(%y, select(%c, %a * 2, %b + 1), %i)
//
//   Rewrites: a cond (no nested regions, at most kMaxOps ops) whose ops are pure scalar
//     ops, element reads `index(x, i...)` of tensors defined outside it, and element
//     updates that its yields return. Each tensor result is, in each branch, either a
//     tensor x from outside or one `update(x, v, i...)` of it (same x and indices in both
//     branches; indices defined outside the cond); each scalar result becomes a select.
//   Preconditions: the function verifies.
//   Guarantees: both branches' ops then run: only ops of scalars that cannot fail or have
//     effects, and element reads and updates of an element that the other branch also
//     reads or updates, or that is read before the cond (so an access runs only where the
//     original program accessed that element anyway: an index out of range fails in both). The result is bit-identical to the
//     branchy code.
#include <map>
#include <set>
#include <unordered_set>

#include "ir/Builder.h"
#include "ir/Pass.h"
#include "ir/Rewrite.h"

namespace tdl::ir {

namespace {

constexpr size_t kMaxOps = 32;

bool definedOutside(const Value* v, const Op& cond) { return !defined_inside(v, &cond); }

// An element access: the tensor and its index operands.
using Access = std::vector<const Value*>;

struct Branch {
  std::vector<Access> accesses;                 // reads and updates
  std::map<const Value*, const Op*> updates;    // an update's result -> the update
};

class IfConvert {
 public:
  explicit IfConvert(Function& f) : f_(f) {}

  bool block(Block& b) {
    bool changed = false;
    for (size_t i = 0; i < b.size(); ++i) {
      Op& op = b.op(i);
      for (size_t r = 0; r < op.num_regions(); ++r) changed |= block(op.region(r).block());
      if (op.kind() == OpKind::Cond && convert(b, i)) changed = true;
    }
    return changed;
  }

 private:
  Function& f_;

  // The branch's ops qualify; fills its accesses and updates.
  bool scan(const Op& cond, const Block& blk, Branch& br) {
    if (blk.size() > kMaxOps) return false;
    for (size_t i = 0; i + 1 < blk.size(); ++i) {
      const Op& o = blk.op(i);
      if (o.num_regions() > 0) return false;
      if (o.kind() == OpKind::Index || o.kind() == OpKind::Update) {
        bool upd = o.kind() == OpKind::Update;
        const Value* x = o.operand(0);
        size_t first = upd ? 2 : 1;
        if (!definedOutside(x, cond) || x->type.rank() != static_cast<int64_t>(o.num_operands() - first)) return false;
        Access a{x};
        for (size_t k = first; k < o.num_operands(); ++k) {
          if (!o.operand(k)->type.is_scalar()) return false;
          a.push_back(o.operand(k));
        }
        if (upd) {
          if (!o.operand(1)->type.is_scalar()) return false;
          for (size_t k = first; k < o.num_operands(); ++k)
            if (!definedOutside(o.operand(k), cond)) return false;
          // used by the yield only
          const auto& uses = o.result()->uses();
          if (uses.size() != 1 || uses[0].op != blk.terminator()) return false;
          br.updates[o.result()] = &o;
        } else if (!o.result()->type.is_scalar()) {
          return false;
        }
        br.accesses.push_back(std::move(a));
        continue;
      }
      if (!o.has_trait(kPure) || !is_removable(o)) return false;  // no effect, cannot fail
      // Scalars only, operands too: an op of tensors with a scalar result (a product of
      // vectors, a reduction) checks their sizes at run time, which may fail.
      for (const Value* r : o.results())
        if (!r->type.is_scalar()) return false;
      for (const Value* v : o.operands())
        if (!v->type.is_scalar()) return false;
    }
    return true;
  }

  // An element read `index(x, i...)` before position pos of the cond's block.
  static bool readBefore(const Block& blk, size_t pos, const Access& a) {
    for (size_t i = 0; i < pos; ++i) {
      const Op& o = blk.op(i);
      if (o.kind() == OpKind::Index && Access(o.operands().begin(), o.operands().end()) == a) return true;
    }
    return false;
  }

  static bool has(const Branch& br, const Access& a) {
    for (const Access& b : br.accesses)
      if (b == a) return true;
    return false;
  }

  bool convert(Block& parent, size_t pos) {
    Op& cond = parent.op(pos);
    if (cond.num_regions() != 2 || cond.num_results() == 0) return false;
    Block& tb = cond.region(0).block();
    Block& eb = cond.region(1).block();
    Branch bt, be;
    if (!scan(cond, tb, bt) || !scan(cond, eb, be)) return false;
    // Every read of a branch is of an element the other branch accesses too.
    for (size_t r = 0; r < 2; ++r) {
      const Block& blk = r == 0 ? tb : eb;
      const Branch& other = r == 0 ? be : bt;
      for (size_t i = 0; i + 1 < blk.size(); ++i) {
        const Op& o = blk.op(i);
        if (o.kind() != OpKind::Index) continue;
        Access a(o.operands().begin(), o.operands().end());
        if (!has(other, a)) return false;
      }
    }
    const Op* yt = tb.terminator();
    const Op* ye = eb.terminator();
    // The plan per tensor result: (x, indices, then value or null, else value or null).
    struct Plan {
      Value* x = nullptr;
      std::vector<Value*> idx;
      Value* vt = nullptr;
      Value* ve = nullptr;
    };
    std::vector<Plan> plans(cond.num_results());
    for (size_t i = 0; i < cond.num_results(); ++i) {
      if (cond.result(i)->type.is_scalar()) continue;
      Plan& p = plans[i];
      for (int r = 0; r < 2; ++r) {
        Value* y = (r == 0 ? yt : ye)->operand(i);
        const Branch& br = r == 0 ? bt : be;
        Value* x = y;
        std::vector<Value*> idx;
        Value* v = nullptr;
        if (auto it = br.updates.find(y); it != br.updates.end()) {
          x = it->second->operand(0);
          v = it->second->operand(1);
          idx.assign(it->second->operands().begin() + 2, it->second->operands().end());
        } else if (!definedOutside(y, cond)) {
          return false;
        }
        if (p.x && p.x != x) return false;
        p.x = x;
        if (v) {
          if (!p.idx.empty() && p.idx != idx) return false;
          p.idx = idx;
        }
        (r == 0 ? p.vt : p.ve) = v;
      }
      if (!(p.x->type == cond.result(i)->type)) return false;
      // An update on one path only then runs on both: only where the element is accessed
      // anyway (by the other branch, or read before the cond, as the seed's `y[i] > 0.5`
      // is), so an index out of range fails where the branchy code fails.
      if ((p.vt != nullptr) != (p.ve != nullptr)) {
        Access a{p.x};
        a.insert(a.end(), p.idx.begin(), p.idx.end());
        if (!has(p.vt ? be : bt, a) && !readBefore(parent, pos, a)) return false;
      }
    }
    // Hoist both branches' ops (updates included, erased below once unused), then the merge.
    Value* c = cond.operand(0);
    size_t nt = tb.size() - 1, ne = eb.size() - 1;
    std::vector<Value*> thenY(yt->operands().begin(), yt->operands().end());
    std::vector<Value*> elseY(ye->operands().begin(), ye->operands().end());
    std::vector<const Op*> hoistedUpdates;
    for (auto& [v, o] : bt.updates) hoistedUpdates.push_back(o);
    for (auto& [v, o] : be.updates) hoistedUpdates.push_back(o);
    parent.splice(pos, tb, nt);
    parent.splice(pos + nt, eb, ne);
    size_t at = pos + nt + ne;  // the cond's position now
    Builder b(f_);
    b.set_insertion(parent, at);
    b.set_loc(cond.loc);
    std::vector<Value*> results;
    for (size_t i = 0; i < cond.num_results(); ++i) {
      Value* r = cond.result(i);
      if (r->type.is_scalar()) {
        Value* a = thenY[i];
        Value* e = elseY[i];
        if (a->type.dtype != r->type.dtype) a = b.cast(a, r->type.dtype);
        if (e->type.dtype != r->type.dtype) e = b.cast(e, r->type.dtype);
        results.push_back(a == e ? a : b.select(c, a, e));
        continue;
      }
      Plan& p = plans[i];
      if (!p.vt && !p.ve) {
        results.push_back(p.x);
        continue;
      }
      DType d = p.x->type.dtype;
      auto value = [&](Value* v) {
        if (!v) return b.index(p.x, p.idx);
        return v->type.dtype == d ? v : b.cast(v, d);
      };
      Value* vt = value(p.vt);
      Value* ve = value(p.ve);
      results.push_back(b.update(p.x, b.select(c, vt, ve), p.idx));
    }
    Op& condNow = parent.op(b.pos());
    replace_op(condNow, results);
    std::unordered_set<const Op*> dead(hoistedUpdates.begin(), hoistedUpdates.end());
    parent.erase_all(dead);
    return true;
  }
};

class IfConvertPass : public Pass {
 public:
  std::string_view name() const override { return "ifconvert"; }
  bool run(Function& f) override { return IfConvert(f).block(f.entry()); }
};

}  // namespace

std::unique_ptr<Pass> create_if_convert_pass() { return std::make_unique<IfConvertPass>(); }

}  // namespace tdl::ir
