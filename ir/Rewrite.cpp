#include "ir/Rewrite.h"

#include <cstring>

namespace tdl::ir {

const rt::Tensor* constant_value(const Value* v) {
  const Op* d = v->def();
  return d && d->kind() == OpKind::Constant ? d->attr_as<rt::Tensor>("value") : nullptr;
}

const rt::Tensor* splat_tensor(const Value* v) {
  // Through broadcasts and reshapes of a constant: every element is still the one value
  // (the ones a tape seeds a sum's gradient with, broadcast to the summed shape).
  while (v->def() && (v->def()->kind() == OpKind::BroadcastTo || v->def()->kind() == OpKind::Reshape) &&
         v->def()->num_operands() == 1 && v->def()->operand(0)->type.dtype == v->type.dtype)
    v = v->def()->operand(0);
  const rt::Tensor* t = constant_value(v);
  if (!t || t->numel() == 0) return nullptr;
  size_t n = itemsize(t->dtype());
  const auto* p = static_cast<const unsigned char*>(t->raw());
  for (int64_t i = 1; i < t->numel(); ++i)
    if (std::memcmp(p, p + i * n, n) != 0) return nullptr;
  return t;
}

std::optional<double> splat_value(const Value* v) {
  const rt::Tensor* t = splat_tensor(v);
  if (!t) return std::nullopt;
  return t->item_double(0);
}

bool has_effects(const Block& b) {
  for (size_t i = 0; i < b.size(); ++i) {
    const Op& op = b.op(i);
    if (op.has_trait(kTerminator)) continue;
    if (!is_removable(op)) return true;
  }
  return false;
}

bool fails_on_integers(const Op& op) {
  auto b = as_binary(op.kind());
  auto u = as_unary(op.kind());
  uint32_t p = b ? rt::props(*b) : u ? rt::props(*u) : 0;
  if (!(p & rt::kFail)) return false;
  for (const Value* v : op.operands())
    if (!rt::is_float(v->type.dtype)) return true;
  return false;
}

bool is_removable(const Op& op) {
  if (op.has_trait(kPure)) return !fails_on_integers(op);
  if (op.kind() != OpKind::Cond && op.kind() != OpKind::While) return false;
  for (size_t r = 0; r < op.num_regions(); ++r)
    if (has_effects(op.region(r).block())) return false;
  return true;
}

void replace_op(Op& op, const std::vector<Value*>& values) {
  for (size_t i = 0; i < values.size(); ++i) op.result(i)->replace_all_uses_with(values[i]);
  Block* b = op.parent();
  b->erase(b->index_of(&op));
}

std::vector<Value*> inline_block(Block& from, Block& to, size_t pos) {
  std::vector<Value*> out;
  if (Op* t = from.terminator()) out = t->operands();
  size_t n = from.size() - (from.terminator() ? 1 : 0);
  to.splice(pos, from, n);
  return out;
}

}  // namespace tdl::ir
