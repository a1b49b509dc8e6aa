// int8 quantization (ir/Quantize.h) and the qgemm pass.
//   qgemm pass: gemm(dequantize(quantize(a, s), s'), dequantize(w, ws) {axis 0}[, c])
//     {trans_b} with s' the constant scalar s, w an i8 [N, K] value, ws f32[N]
//     -> qgemm(a, w, ws[, c]) {x_scale = s, alpha, beta}.
//     Then qgemm(reshape(im2col(x) {pad 0})) -> qgemm(reshape(im2col(quantize(x)))): the
//     windows of int8 pixels (quantizing commutes with im2col when the padding is 0).
//     And fused(reshape?(qgemm), bias) {add [, relu]} -> reshape?(qgemm(.., bias) {relu}).
//   Preconditions: the function verifies. Guarantees: the products of the quantized values,
//     accumulated exactly in int32 instead of in float (so the last bits may differ from the
//     float reference form).
#include "ir/Quantize.h"

#include <cmath>

#include "ir/Builder.h"
#include "ir/Pass.h"
#include "ir/Rewrite.h"
#include "runtime/Quant.h"
#include "runtime/ShapeOps.h"

namespace tdl::ir {

namespace {

bool f32_rank2(const Value* v) { return v->type.dtype == DType::F32 && v->type.rank() == 2; }

const rt::Tensor* constant_of(const Value* v) {
  const Op* d = v->def();
  if (!d || d->kind() != OpKind::Constant) return nullptr;
  return &d->tensor_attr("value");
}

}  // namespace

std::vector<Op*> quant_candidates(Function& fn) {
  std::vector<Op*> out;
  Block& b = fn.entry();
  for (size_t i = 0; i < b.size(); ++i) {
    Op& op = b.op(i);
    bool gemm = op.kind() == OpKind::Gemm;
    if (op.kind() != OpKind::MatMul && !gemm) continue;
    if (gemm && op.bool_attr("trans_a")) continue;
    if (!f32_rank2(op.operand(0)) || !f32_rank2(op.operand(1)) || !f32_rank2(op.result())) continue;
    const rt::Tensor* w = constant_of(op.operand(1));
    if (!w || w->numel() < kMinQuantizedWeights) continue;
    out.push_back(&op);
  }
  return out;
}

void add_range_probes(Function& fn, const std::vector<Op*>& candidates) {
  Block& b = fn.entry();
  Builder bl(fn);
  std::vector<Value*> probes;
  for (Op* op : candidates) {
    bl.set_insertion(b, b.index_of(op) + 1);
    bl.set_loc(op->loc);
    Value* a = op->operand(0);
    probes.push_back(bl.reduce(rt::ReduceOp::Max, bl.unary(rt::UnaryOp::Abs, a), {0, 1}, false));
  }
  Op* ret = b.terminator();
  for (Value* p : probes) {
    ret->add_operand(p);
    fn.result_types.push_back(p->type);
  }
}

void quantize_int8(Function& fn, const std::vector<Op*>& candidates, const std::vector<double>& absMax) {
  Block& b = fn.entry();
  Builder bl(fn);
  for (size_t i = 0; i < candidates.size(); ++i) {
    Op* op = candidates[i];
    const bool gemm = op->kind() == OpKind::Gemm;
    // The weights as [N, K], a row per output channel.
    rt::Tensor w = *constant_of(op->operand(1));
    if (!(gemm && op->bool_attr("trans_b"))) w = rt::transpose(w, {1, 0});
    auto [wq, ws] = rt::quantize_rows_i8(w);
    double m = i < absMax.size() ? absMax[i] : 0.0;
    double xs = m > 0 && std::isfinite(m) ? static_cast<double>(static_cast<float>(m / 127.0)) : 1.0;
    size_t pos = b.index_of(op);
    bl.set_insertion(b, pos);
    bl.set_loc(op->loc);
    Value* a = op->operand(0);
    Value* q = bl.create(OpKind::Quantize, {a}, {TensorType(DType::I8, a->type.dims)}, AttrMap{{"scale", xs}}).result();
    Value* xsv = bl.constant(rt::Tensor::scalar(static_cast<float>(xs)));
    Value* dx = bl.create(OpKind::Dequantize, {q, xsv}, {TensorType(DType::F32, a->type.dims)}).result();
    Value* wqv = bl.constant(wq);
    Value* wsv = bl.constant(ws);
    std::vector<Dim> wdims = {Dim::known(wq.dim(0)), Dim::known(wq.dim(1))};
    Value* dw = bl.create(OpKind::Dequantize, {wqv, wsv}, {TensorType(DType::F32, wdims)}, AttrMap{{"axis", int64_t{0}}}).result();
    std::vector<Value*> operands = {dx, dw};
    if (gemm && op->num_operands() > 2) operands.push_back(op->operand(2));
    AttrMap attrs{{"trans_a", false},
                  {"trans_b", true},
                  {"alpha", gemm ? attr_or(*op, "alpha", 1.0) : 1.0},
                  {"beta", gemm ? attr_or(*op, "beta", 0.0) : 0.0}};
    Op& g = bl.create(OpKind::Gemm, operands, {op->result()->type}, std::move(attrs));
    replace_op(*op, {g.result()});
  }
}

namespace {

// The pass: the quantize/dequantize form -> qgemm.
bool fuse_block(Function& f, Block& b) {
  bool changed = false;
  for (size_t i = 0; i < b.size(); ++i) {
    Op& op = b.op(i);
    if (op.kind() != OpKind::Gemm || op.bool_attr("trans_a") || !op.bool_attr("trans_b")) continue;
    const Op* dx = op.operand(0)->def();
    const Op* dw = op.operand(1)->def();
    if (!dx || !dw || dx->kind() != OpKind::Dequantize || dw->kind() != OpKind::Dequantize) continue;
    const Op* q = dx->operand(0)->def();
    if (!q || q->kind() != OpKind::Quantize) continue;
    const rt::Tensor* s = constant_of(dx->operand(1));
    const double* qs = q->attr_as<double>("scale");
    if (!s || !qs || s->numel() != 1 || static_cast<double>(s->data<float>()[0]) != *qs) continue;
    const int64_t* axis = dw->attr_as<int64_t>("axis");
    if (!axis || *axis != 0 || dw->operand(1)->type.rank() != 1 || dw->operand(0)->type.rank() != 2 ||
        !f32_rank2(q->operand(0)))
      continue;
    std::vector<Value*> operands = {q->operand(0), dw->operand(0), dw->operand(1)};
    if (op.num_operands() > 2) operands.push_back(op.operand(2));
    Builder bl(f);
    bl.set_insertion(b, i);
    bl.set_loc(op.loc);
    AttrMap attrs{{"x_scale", *qs}, {"alpha", attr_or(op, "alpha", 1.0)}, {"beta", attr_or(op, "beta", 0.0)}};
    Op& g = bl.create(OpKind::QGemm, operands, {op.result()->type}, std::move(attrs));
    replace_op(b.op(i + 1), {g.result()});
    changed = true;
  }
  return changed;
}

// qgemm(reshape(im2col(x) {pad 0}), ...) {x_scale} -> qgemm(reshape(im2col(quantize(x))), ...):
// quantizing commutes with im2col when the padding quantizes to 0, so the window copies
// move bytes instead of floats and each pixel is quantized once instead of once per tap.
// The integers are the same, so the results are too.
bool quantize_before_im2col(Function& f, Block& b) {
  bool changed = false;
  for (size_t i = 0; i < b.size(); ++i) {
    Op& op = b.op(i);
    if (op.kind() != OpKind::QGemm || op.operand(0)->type.dtype != DType::F32) continue;
    Op* r = op.operand(0)->def();
    if (!r || (r->kind() != OpKind::Reshape && r->kind() != OpKind::ReshapeDyn) || r->result()->uses().size() != 1) continue;
    Op* m = r->operand(0)->def();
    if (!m || m->kind() != OpKind::Im2col || attr_or(*m, "pad", 0.0) != 0.0 || m->result()->uses().size() != 1) continue;
    Value* x = m->operand(0);
    if (x->type.dtype != DType::F32) continue;
    // The quantize goes before the im2col; the im2col and the reshape then carry i8.
    Builder bl(f);
    bl.set_insertion(b, b.index_of(m));
    bl.set_loc(m->loc);
    Value* xq = bl.create(OpKind::Quantize, {x}, {TensorType(DType::I8, x->type.dims)},
                          AttrMap{{"scale", *op.attr_as<double>("x_scale")}}).result();
    m->set_operand(0, xq);
    m->result()->type.dtype = DType::I8;
    r->result()->type.dtype = DType::I8;
    ++i;
    changed = true;
  }
  return changed;
}

// fused(reshape?(qgemm(a, w, ws)), b) with the body add(x, b) [then relu] and b f32[N]
// (a layer's bias and activation after its product) -> reshape?(qgemm(a, w, ws, b) {relu}):
// the kernel adds the bias and applies relu to each result as it writes it, with the same
// float operations, so the same bits, and no pass over the output afterwards.
bool fuse_epilogue(Block& b) {
  return fuse_bias_epilogues(
      b, [](const Op& p) { return p.kind() == OpKind::QGemm && p.num_operands() == 3; },
      [](const Op& p) { return p.result()->type.dims[1]; });
}

class QGemmPass : public Pass {
 public:
  std::string_view name() const override { return "qgemm"; }
  bool run(Function& f) override {
    bool changed = fuse_block(f, f.entry());
    if (changed) create_dce_pass()->run(f);  // the quantize ops fused away no longer read the inputs
    changed = quantize_before_im2col(f, f.entry()) || changed;
    return fuse_epilogue(f.entry()) || changed;
  }
};

}  // namespace

std::unique_ptr<Pass> create_qgemm_pass() { return std::make_unique<QGemmPass>(); }

}  // namespace tdl::ir
