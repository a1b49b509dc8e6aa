#include "ir/Rewrite.h"

#include "ir/ShapeInference.h"

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
  // (an unused op whose sizes are checked at run time stays: eager mode raises that error)
  if (op.has_trait(kPure)) return !fails_on_integers(op) && !needs_run_time_check(op);
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

std::optional<BiasEpilogue> match_bias_epilogue(const Op& f, const std::function<bool(const Op&)>& wanted) {
  if (f.kind() != OpKind::Fused || f.num_operands() != 2 || f.num_results() != 1) return std::nullopt;
  const Block& body = f.region(0).block();
  if (body.num_args() != 2 || (body.size() != 2 && body.size() != 3)) return std::nullopt;
  const Op& add = body.op(0);
  if (add.kind() != OpKind::Add || add.result()->type.dtype != DType::F32) return std::nullopt;
  const bool relu = body.size() == 3;
  if (relu && (body.op(1).kind() != OpKind::Relu || body.op(1).operand(0) != add.result())) return std::nullopt;
  const Op& yield = body.op(body.size() - 1);
  if (yield.kind() != OpKind::Yield || yield.num_operands() != 1 ||
      yield.operand(0) != (relu ? body.op(1).result() : add.result()))
    return std::nullopt;
  for (size_t k = 0; k < 2; ++k) {
    // operand k: the product (through a reshape), operand 1 - k: the bias
    if (!((add.operand(0) == body.arg(k) && add.operand(1) == body.arg(1 - k)) ||
          (add.operand(1) == body.arg(k) && add.operand(0) == body.arg(1 - k))))
      continue;
    Value* y = f.operand(k);
    Op* p = y->def();
    if (p && (p->kind() == OpKind::Reshape || p->kind() == OpKind::ReshapeDyn)) {
      if (p->result()->uses().size() != 1) continue;
      p = p->operand(0)->def();
    }
    if (!p || !wanted(*p) || p->num_results() != 1 || p->result()->uses().size() != 1) continue;
    return BiasEpilogue{y, p, f.operand(1 - k), relu};
  }
  return std::nullopt;
}

bool fuse_bias_epilogues(Block& b, const std::function<bool(const Op&)>& wanted,
                         const std::function<Dim(const Op&)>& channels) {
  bool changed = false;
  for (size_t i = 0; i < b.size(); ++i) {
    Op& f = b.op(i);
    auto e = match_bias_epilogue(f, wanted);
    if (!e) continue;
    const TensorType& bt = e->bias->type;
    if (bt.dtype != DType::F32 || bt.rank() != 1 || !(bt.dims[0] == channels(*e->producer)) || !(f.result()->type == e->y->type))
      continue;
    e->producer->add_operand(e->bias);
    e->producer->attrs["relu"] = e->relu;
    f.result()->replace_all_uses_with(e->y);
    changed = true;
  }
  return changed;
}

double attr_or(const Op& op, std::string_view name, double dflt) {
  const double* v = op.attr_as<double>(name);
  return v ? *v : dflt;
}

}  // namespace tdl::ir
