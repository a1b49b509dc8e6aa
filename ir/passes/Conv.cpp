// Convolutions without their patches in memory (rt::conv_nhwc, a direct kernel).
//   Rewrites, when every size is known and the product has at least kConvDirectMinMacs
//   multiply-adds (smaller ones keep their form, and with it their exact sums):
//     - matmul(reshape(im2col(x) {pad 0}), wm), or gemm with no transposes, alpha 1, beta 0:
//       conv2d's forward product -> reshape(conv_nhwc(x, wm) {window}).
//     - gemm(reshape(im2col(x) {pad 0}), reshape(g)) {trans_a, alpha 1, beta 0}: the
//       filter's gradient -> conv_nhwc(x, g) {window, grad = "filter"} [kh*kw*C, O]. With
//       all three rewritten, the im2col is dead: no patches in memory at all.
//     - col2im(reshape(gemm(reshape(g), wm) {trans_b, alpha 1, beta 0})) {size}: conv2d's
//       gradient with respect to its input -> conv_nhwc(g, wm) {window, grad = "input", size}: no
//       [N, oh, ow, kh*kw*C] product written and summed back (with stride 1; other strides
//       run the same gemm + col2im inside the op).
//     - fused(reshape?(conv_nhwc(x, wm)), b) {add [, relu]}, b [O]: the layer's bias and
//       activation -> reshape?(conv_nhwc(x, wm, b) {relu}), applied as each result is written.
//   Preconditions: the function verifies; differentiation is done (conv_nhwc has no
//     gradient rule: the pass runs last in the pipeline).
//   Guarantees: the same products and sums, added in another order (as another BLAS would).
#include "ir/Builder.h"
#include "ir/Pass.h"
#include "ir/Rewrite.h"
#include "runtime/Conv.h"

namespace tdl::ir {

namespace {

// Whether t's elements (all its dims known) times k reach the direct kernels' size.
bool large(const TensorType& t, int64_t k) {
  auto shape = t.static_shape();
  auto n = shape ? rt::checked_numel(*shape) : std::nullopt;
  return n && static_cast<double>(*n) * static_cast<double>(k) >= static_cast<double>(rt::kConvDirectMinMacs);
}

// The operand of a reshape (either kind).
Value* reshaped(const Value* v) {
  const Op* r = v->def();
  if (!r || (r->kind() != OpKind::Reshape && r->kind() != OpKind::ReshapeDyn)) return nullptr;
  return r->operand(0);
}

bool plain_product(const Op& m) {
  if (m.kind() == OpKind::MatMul) return m.num_operands() == 2;
  return m.kind() == OpKind::Gemm && m.num_operands() == 2 && !m.bool_attr("trans_a") && !m.bool_attr("trans_b") &&
         attr_or(m, "alpha", 1.0) == 1.0 && attr_or(m, "beta", 0.0) == 0.0;
}

bool run_block(Function& f, Block& b) {
  bool changed = false;
  for (size_t i = 0; i < b.size(); ++i) {
    Op& m = b.op(i);
    // filter gradient: gemm(reshape(im2col(x)), reshape(g)) {trans_a}
    if (m.kind() == OpKind::Gemm && m.num_operands() == 2 && m.bool_attr("trans_a") && !m.bool_attr("trans_b") &&
        attr_or(m, "alpha", 1.0) == 1.0 && attr_or(m, "beta", 0.0) == 0.0) {
      const Value* c = reshaped(m.operand(0));
      const Op* ci = c ? c->def() : nullptr;
      Value* g = reshaped(m.operand(1));
      if (!ci || ci->kind() != OpKind::Im2col || attr_or(*ci, "pad", 0.0) != 0.0 || !g || g->type.rank() != 4) continue;
      Value* x = ci->operand(0);
      const IntList& win = ci->ints_attr("window");
      if (x->type.dtype != DType::F32 || g->type.dtype != DType::F32 || !x->type.is_static() || !g->type.is_static() ||
          !(g->type.dims[0] == x->type.dims[0]) || g->type.dims[1].size != win[8] || g->type.dims[2].size != win[9])
        continue;
      if (!large(c->type, g->type.dims[3].size)) continue;
      Builder bl(f);
      bl.set_insertion(b, i);
      bl.set_loc(m.loc);
      Value* y = bl.create(OpKind::ConvNhwc, {x, g}, {m.result()->type}, AttrMap{{"window", win}, {"grad", std::string("filter")}})
                     .result();
      m.result()->replace_all_uses_with(y);
      ++i;
      changed = true;
      continue;
    }
    // forward: matmul(reshape(im2col(x)), wm)
    if ((m.kind() == OpKind::MatMul || m.kind() == OpKind::Gemm) && plain_product(m)) {
      const Value* a = m.operand(0);
      const Op* r = a->def();
      if (!r || (r->kind() != OpKind::Reshape && r->kind() != OpKind::ReshapeDyn)) continue;
      const Op* c = r->operand(0)->def();
      Value* wm = m.operand(1);
      if (!c || c->kind() != OpKind::Im2col || attr_or(*c, "pad", 0.0) != 0.0) continue;
      Value* x = c->operand(0);
      const TensorType& ct = c->result()->type;
      if (x->type.dtype != DType::F32 || wm->type.dtype != DType::F32 || wm->type.rank() != 2 || a->type.rank() != 2 ||
          !ct.is_static() || !wm->type.is_static() || !x->type.is_static() || wm->type.dims[0].size != ct.dims[3].size)
        continue;
      if (!large(ct, wm->type.dims[1].size)) continue;
      Builder bl(f);
      bl.set_insertion(b, i);
      bl.set_loc(m.loc);
      TensorType yt(DType::F32, {ct.dims[0], ct.dims[1], ct.dims[2], wm->type.dims[1]});
      Value* y = bl.create(OpKind::ConvNhwc, {x, wm}, {yt}, AttrMap{{"window", c->ints_attr("window")}}).result();
      // The product is usually reshaped back to [N, oh, ow, O] at once: then y is that.
      const Op* back = m.result()->uses().size() == 1 ? m.result()->uses().front().op : nullptr;
      if (back && (back->kind() == OpKind::Reshape || back->kind() == OpKind::ReshapeDyn) && back->result()->type == yt) {
        back->result()->replace_all_uses_with(y);
        i += 1;
      } else {
        Value* y2 = bl.create(OpKind::Reshape, {y}, {m.result()->type}).result();
        m.result()->replace_all_uses_with(y2);
        i += 2;
      }
      changed = true;
      continue;
    }
    // input gradient: col2im(reshape(gemm(reshape(g), wm) {trans_b}))
    if (m.kind() != OpKind::Col2im) continue;
    Value* cols = m.operand(0)->uses().size() == 1 ? reshaped(m.operand(0)) : nullptr;
    const Op* gm = cols ? cols->def() : nullptr;
    if (!gm || gm->kind() != OpKind::Gemm || gm->num_operands() != 2 || gm->bool_attr("trans_a") ||
        !gm->bool_attr("trans_b") || attr_or(*gm, "alpha", 1.0) != 1.0 || attr_or(*gm, "beta", 0.0) != 0.0 ||
        cols->uses().size() != 1)
      continue;
    Value* g = reshaped(gm->operand(0));
    Value* wm = gm->operand(1);
    const IntList& win = m.ints_attr("window");
    if (!g || g->type.rank() != 4 || g->type.dtype != DType::F32 || wm->type.dtype != DType::F32 || !g->type.is_static() ||
        !wm->type.is_static() || !m.result()->type.is_static() || g->type.dims[1].size != win[8] || g->type.dims[2].size != win[9] ||
        g->type.dims[3].size != wm->type.dims[1].size)
      continue;
    if (!large(m.result()->type, wm->type.dims[0].size * wm->type.dims[1].size)) continue;
    Builder bl(f);
    bl.set_insertion(b, i);
    bl.set_loc(m.loc);
    Value* y = bl.create(OpKind::ConvNhwc, {g, wm}, {m.result()->type},
                         AttrMap{{"window", win}, {"grad", std::string("input")}, {"size", m.ints_attr("size")}})
                   .result();
    m.result()->replace_all_uses_with(y);
    ++i;
    changed = true;
  }
  return changed;
}

// fused(reshape?(conv_nhwc(x, wm)), b) with the body add(y, b) [then relu] and b [O] (the
// layer's bias and activation) -> reshape?(conv_nhwc(x, wm, b) {relu}): the kernel adds
// the bias and applies relu to each result as it writes it (the same float operations).
bool fuse_epilogue(Block& b) {
  return fuse_bias_epilogues(
      b,
      [](const Op& p) {
        return p.kind() == OpKind::ConvNhwc && p.num_operands() == 2 && !p.attr_as<std::string>("grad") &&
               p.result()->type.dtype == DType::F32;
      },
      [](const Op& p) { return p.result()->type.dims[3]; });
}

class ConvPass : public Pass {
 public:
  std::string_view name() const override { return "conv"; }
  bool run(Function& f) override {
    bool changed = run_block(f, f.entry());
    changed = fuse_epilogue(f.entry()) || changed;
    if (changed) create_dce_pass()->run(f);
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> create_conv_pass() { return std::make_unique<ConvPass>(); }

}  // namespace tdl::ir
