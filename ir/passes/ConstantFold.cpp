// Constant folding.
//   Rewrites: a pure op without regions whose operands are all `constant`s, and whose
//     result shape is static, into a `constant` holding the value the runtime kernel
//     computes (ir/Eval.cpp) — one semantics for folding and running.
//   Preconditions: the function verifies.
//   Guarantees: results keep their types; ops the runtime rejects (integer division by
//     zero, ...) stay as they are, so the error still happens at run time; results with
//     more than kMaxFoldElements elements are not folded (no constant blow-up).
#include "ir/Eval.h"
#include "ir/Pass.h"
#include "ir/Rewrite.h"
#include "runtime/Error.h"

namespace tdl::ir {

namespace {

inline constexpr int64_t kMaxFoldElements = int64_t{1} << 16;

bool foldable(const Op& op) {
  if (!op.has_trait(kPure) || op.kind() == OpKind::Constant || op.num_regions() || op.num_results() != 1) return false;
  for (Value* v : op.operands())
    if (!constant_value(v)) return false;
  auto shape = op.result()->type.static_shape();
  if (!shape) return false;
  auto n = rt::checked_numel(*shape);
  return n && *n <= kMaxFoldElements;
}

bool fold_block(Block& b) {
  bool changed = false;
  for (size_t i = 0; i < b.size(); ++i) {
    Op& op = b.op(i);
    for (size_t r = 0; r < op.num_regions(); ++r) changed |= fold_block(op.region(r).block());
    if (!foldable(op)) continue;
    std::vector<rt::Tensor> in;
    for (Value* v : op.operands()) in.push_back(*constant_value(v));
    std::optional<std::vector<rt::Tensor>> out;
    try {
      out = evaluate(op, in);
    } catch (const rt::Error&) {
      continue;  // fails at run time, with the op's location
    }
    if (!out) continue;
    const rt::Tensor& t = (*out)[0];
    if (!(TensorType::of(t.dtype(), t.shape()) == op.result()->type))
      throw rt::InternalError("fold: the runtime computed " + t.type_str() + " for '" + std::string(op.name()) +
                              "' typed " + op.result()->type.str());
    auto c = std::make_unique<Op>(OpKind::Constant, op.loc);
    c->attrs["value"] = t;
    Value* v = c->add_result(op.result()->type);
    b.insert(i, std::move(c));
    replace_op(op, {v});
    changed = true;
  }
  return changed;
}

class ConstantFold : public Pass {
 public:
  std::string_view name() const override { return "fold"; }
  bool run(Function& f) override { return fold_block(f.entry()); }
};

}  // namespace

std::unique_ptr<Pass> create_constant_fold_pass() { return std::make_unique<ConstantFold>(); }

}  // namespace tdl::ir
