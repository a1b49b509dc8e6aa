// Matrix products as single BLAS calls: transposed operands and a following update folded in.
//   Rewrites:
//     - matmul(transpose(x, [1, 0]), y), matmul(x, transpose(y, [1, 0])) or both, on rank-2
//       floats of one dtype (or batched: one rank > 2, the same batch dims, the last two axes
//       swapped) -> gemm(x, y) {trans_a, trans_b}: BLAS reads the operand
//       transposed, so the transpose is not materialized (it stays only while something
//       else reads it). Backward passes are full of these (dW = x^T @ g, dx = g @ W^T).
//     - a fused loop whose body is `c + k * m`, `c - k * m`, `c + m * k`, `c - m * k`,
//       `c + m`, `m + c` or `c - m` (or such an add/sub alone), where m is a rank-2 matmul/gemm result that nothing
//       else reads, k a nonzero constant scalar and c an operand of the result's type
//       -> gemm(a, b, c) {alpha = ±k, beta = 1}: one BLAS call computes c + alpha * a @ b
//       (an SGD step's w - lr * (x^T @ g)) without the product's buffer or a second pass.
//     - m / k or m * k, k a constant scalar power of two and m such a product read by nothing
//       else -> the product's gemm with alpha scaled (exact: attention's (q @ k^T) / 8).
//     - gemm(a, b) {trans_b} inside a while loop, b rank 2 and defined outside the loop (an
//       RNN's backward da @ u^T): b is transposed once before the outermost such loop and
//       read untransposed (gemm(a, transpose(b))): BLAS's kernels for a transposed b are
//       slower on small products (OpenBLAS: 39 against 57 GMAC/s for [32, 128] @ [128, 128]
//       on one core) and split into bands of columns with other bits (rt::GemmBands).
//   Preconditions: the function verifies; differentiation is done (gemm has no gradient
//     rule; the pass sits after fusion in the pipeline).
//   Guarantees: the same products and sums. As in any BLAS, c + alpha * (a @ b) is formed
//     from the unrounded accumulator, so the update may differ from the unfused form in the
//     last bit or so (as the transcendental kernels may: docs/graph.md).
#include <cmath>

#include "ir/Builder.h"
#include "ir/Pass.h"
#include "ir/Rewrite.h"

namespace tdl::ir {

namespace {

bool rank2_of(const Value* v, DType d) { return v->type.rank() == 2 && v->type.dtype == d; }

// The permutation that swaps the last two of r axes.
IntList swap_last(int64_t r) {
  IntList p;
  for (int64_t i = 0; i < r; ++i) p.push_back(i);
  std::swap(p[static_cast<size_t>(r - 2)], p[static_cast<size_t>(r - 1)]);
  return p;
}

// x, when v = transpose(x) swapping its last two axes ([1, 0] at rank 2).
Value* transpose_source(const Value* v) {
  const Op* d = v->def();
  if (d && d->kind() == OpKind::Transpose && v->type.rank() >= 2 && d->ints_attr("perm") == swap_last(v->type.rank()))
    return d->operand(0);
  return nullptr;
}

// Batched operands of one rank > 2 whose batch dims are the same (no broadcasting).
bool same_batch(const Value* x, const Value* y, DType d) {
  if (x->type.rank() <= 2 || x->type.rank() != y->type.rank() || x->type.dtype != d || y->type.dtype != d) return false;
  for (int64_t i = 0; i + 2 < x->type.rank(); ++i)
    if (!(x->type.dims[static_cast<size_t>(i)] == y->type.dims[static_cast<size_t>(i)])) return false;
  return true;
}

Op& make_gemm(Function& f, Block& b, size_t pos, Loc loc, std::vector<Value*> operands, const TensorType& type,
              bool ta, bool tb, double alpha, double beta) {
  Builder bl(f);
  bl.set_insertion(b, pos);
  bl.set_loc(loc);
  AttrMap attrs{{"trans_a", ta}, {"trans_b", tb}, {"alpha", alpha}, {"beta", beta}};
  return bl.create(OpKind::Gemm, operands, {type}, std::move(attrs));
}

// matmul of a transposed rank-2 operand -> gemm reading it transposed.
bool rewrite_matmul(Function& f, Block& b, size_t i) {
  Op& op = b.op(i);
  DType d = op.result()->type.dtype;
  Value* x = op.operand(0);
  Value* y = op.operand(1);
  if (!rt::is_float(d) || !((rank2_of(x, d) && rank2_of(y, d)) || same_batch(x, y, d))) return false;
  Value* xs = transpose_source(x);
  Value* ys = transpose_source(y);
  if (!xs && !ys) return false;
  Op& g = make_gemm(f, b, i, op.loc, {xs ? xs : x, ys ? ys : y}, op.result()->type, xs != nullptr, ys != nullptr, 1.0,
                    0.0);
  replace_op(op, {g.result()});
  return true;
}

// The product a fused update may absorb: a rank-2 float matmul or a gemm without c.
bool absorbable_product(const Value* m, const Block& b) {
  const Op* d = m->def();
  if (!d || d->parent() != &b || m->uses().size() != 1) return false;
  DType t = m->type.dtype;
  if (!rt::is_float(t) || m->type.rank() != 2) return false;
  if (d->kind() == OpKind::Gemm) return d->num_operands() == 2;
  return d->kind() == OpKind::MatMul && rank2_of(d->operand(0), t) && rank2_of(d->operand(1), t);
}

// Replaces op i of b, which computes c + k * prod (prod: an absorbable product), by
// gemm(a, b, c) {alpha = k * prod's alpha, beta = 1}, and erases prod.
void absorb_product(Function& f, Block& b, size_t i, Op& prod, Value* c, double k) {
  Op& op = b.op(i);
  bool isGemm = prod.kind() == OpKind::Gemm;
  bool ta = isGemm && prod.bool_attr("trans_a");
  bool tb = isGemm && prod.bool_attr("trans_b");
  double alpha = k * (isGemm ? *prod.attr_as<double>("alpha") : 1.0);
  Op& g = make_gemm(f, b, i, op.loc, {prod.operand(0), prod.operand(1), c}, op.result()->type, ta, tb, alpha, 1.0);
  replace_op(op, {g.result()});
  b.erase(b.index_of(&prod));
}

// fused(...) computing c ± k * m with m an absorbable product -> gemm(a, b, c).
bool rewrite_update(Function& f, Block& b, size_t i) {
  Op& fo = b.op(i);
  Block& body = fo.region(0).block();
  Op* y = body.terminator();
  if (!y || y->num_operands() != 1 || (body.size() != 2 && body.size() != 3)) return false;
  const TensorType& rt_ = fo.result()->type;
  // The fused operand bound to body argument `arg` (nullptr for a value defined in the body).
  auto operand_of = [&](const Value* arg) -> Value* {
    if (!arg->is_block_arg() || arg->block() != &body) return nullptr;
    return fo.operand(arg->index());
  };
  Op& top = body.op(body.size() - 2);
  if (y->operand(0) != top.result() || (top.kind() != OpKind::Add && top.kind() != OpKind::Sub)) return false;
  bool sub = top.kind() == OpKind::Sub;
  Value* mArg = nullptr;  // the body value standing for the product (times k)
  Value* cArg = nullptr;
  double k = 1.0;
  Op* mul = body.size() == 3 ? &body.op(0) : nullptr;
  if (mul) {
    if (mul->kind() != OpKind::Mul) return false;
    Value* mr = mul->result();
    if (top.operand(1) == mr) cArg = top.operand(0);
    else if (!sub && top.operand(0) == mr) cArg = top.operand(1);
    else return false;
    for (int s = 0; s < 2 && !mArg; ++s) {
      Value* kv = operand_of(mul->operand(static_cast<size_t>(s)));
      auto kval = kv && kv->type.is_scalar() ? splat_value(kv) : std::nullopt;
      if (kval && *kval != 0) {  // c - 0 * (a @ b) keeps a NaN/Inf of the product; BLAS with alpha 0 would not
        k = *kval;
        mArg = mul->operand(static_cast<size_t>(1 - s));
      }
    }
  } else {
    // c ± m: whichever operand is the product (only the right one for a subtraction).
    for (int s = sub ? 1 : 0; s < 2 && !mArg; ++s) {
      Value* cand = operand_of(top.operand(static_cast<size_t>(s)));
      if (cand && absorbable_product(cand, b)) {
        mArg = top.operand(static_cast<size_t>(s));
        cArg = top.operand(static_cast<size_t>(1 - s));
      }
    }
  }
  if (!mArg || !cArg) return false;
  Value* m = operand_of(mArg);
  Value* c = operand_of(cArg);
  if (!m || !c || m == c || !absorbable_product(m, b) || !(m->type == rt_) || !(c->type == rt_)) return false;
  // The product's uses: exactly one operand slot of this fused op, read once in the body.
  if (mArg->uses().size() != 1 || cArg->uses().size() != 1) return false;
  body.drop_all_references();
  absorb_product(f, b, i, *m->def(), c, sub ? -k : k);
  return true;
}

// c + m, m + c or c - m as a lone elementwise op (not wrapped in a fused loop).
bool rewrite_add(Function& f, Block& b, size_t i) {
  Op& op = b.op(i);
  bool sub = op.kind() == OpKind::Sub;
  const TensorType& t = op.result()->type;
  for (int s = sub ? 1 : 0; s < 2; ++s) {
    Value* m = op.operand(static_cast<size_t>(s));
    Value* c = op.operand(static_cast<size_t>(1 - s));
    if (m == c || !absorbable_product(m, b) || !(m->type == t) || !(c->type == t)) continue;
    absorb_product(f, b, i, *m->def(), c, sub ? -1.0 : 1.0);
    return true;
  }
  return false;
}

// m / k or m * k (k a constant scalar power of two, m a product nothing else reads) ->
// the product's gemm with alpha scaled by 1 / k or k: exact (scaling by a power of two
// rounds as the division does), so attention's (q @ k^T) / 8 is one BLAS call.
bool rewrite_scale(Function& f, Block& b, size_t i) {
  Op& op = b.op(i);
  bool mul = op.kind() == OpKind::Mul;
  Value* m = op.operand(0);
  auto k = splat_value(op.operand(1));
  if (!k || !op.operand(1)->type.is_scalar() || !(m->type == op.result()->type)) return false;
  int e = 0;
  if (!std::isfinite(*k) || std::frexp(*k, &e) != (*k < 0 ? -0.5 : 0.5) || e < -60 || e > 60) return false;
  Op* d = m->def();
  if (!d || d->parent() != &b || m->uses().size() != 1 || !rt::is_float(m->type.dtype)) return false;
  DType t = m->type.dtype;
  double alpha = 1.0;
  bool ta = false, tb = false;
  if (d->kind() == OpKind::Gemm) {
    if (d->num_operands() != 2) return false;
    alpha = attr_or(*d, "alpha", 1.0);
    ta = d->bool_attr("trans_a");
    tb = d->bool_attr("trans_b");
  } else if (d->kind() != OpKind::MatMul ||
             !((rank2_of(d->operand(0), t) && rank2_of(d->operand(1), t)) || same_batch(d->operand(0), d->operand(1), t))) {
    return false;
  }
  alpha = mul ? alpha * *k : alpha / *k;
  Op& g = make_gemm(f, b, i, d->loc, {d->operand(0), d->operand(1)}, op.result()->type, ta, tb, alpha, 0.0);
  replace_op(b.op(i + 1), {g.result()});
  b.erase(b.index_of(d));
  return true;
}

// Inside a while: gemm reading a rank-2 loop-invariant b transposed -> b transposed once
// before the outermost loop it is invariant in (at most 2^24 elements when its size is known).
bool pretranspose(Function& f, Op& g) {
  if (g.kind() != OpKind::Gemm || !g.bool_attr("trans_b") || g.num_operands() < 2) return false;
  Value* bv = g.operand(1);
  if (bv->type.rank() != 2 || !rt::is_float(bv->type.dtype)) return false;
  const Dim& d0 = bv->type.dims[0];
  const Dim& d1 = bv->type.dims[1];
  if (d0.is_known() && d1.is_known() && d0.size * d1.size > (int64_t{1} << 24)) return false;
  Op* loop = nullptr;
  for (Op* p = g.parent_op(); p; p = p->parent_op())
    if (p->kind() == OpKind::While) {
      if (defined_inside(bv, p)) break;
      loop = p;
    }
  if (!loop) return false;
  Builder bl(f);
  bl.set_insertion(*loop->parent(), loop->parent()->index_of(loop));
  bl.set_loc(g.loc);
  Value* bt = bl.transpose(bv, {1, 0});
  g.set_operand(1, bt);
  g.attrs["trans_b"] = false;
  return true;
}

bool gemm_block(Function& f, Block& b) {
  bool changed = false;
  for (size_t i = 0; i < b.size(); ++i)
    for (size_t r = 0; r < b.op(i).num_regions(); ++r) changed |= gemm_block(f, b.op(i).region(r).block());
  for (size_t i = 0; i < b.size(); ++i)
    if (b.op(i).kind() == OpKind::MatMul) changed |= rewrite_matmul(f, b, i);
  for (size_t i = 0; i < b.size(); ++i)
    if ((b.op(i).kind() == OpKind::Fused && rewrite_update(f, b, i)) ||
        ((b.op(i).kind() == OpKind::Add || b.op(i).kind() == OpKind::Sub) && rewrite_add(f, b, i)) ||
        ((b.op(i).kind() == OpKind::Div || b.op(i).kind() == OpKind::Mul) && rewrite_scale(f, b, i))) {
      changed = true;
      i = static_cast<size_t>(-1);  // the product was erased: positions moved
    }
  for (size_t i = 0; i < b.size(); ++i) changed |= pretranspose(f, b.op(i));  // inserts outside b
  return changed;
}

class GemmPass : public Pass {
 public:
  std::string_view name() const override { return "gemm"; }
  bool run(Function& f) override { return gemm_block(f, f.entry()); }
};

}  // namespace

std::unique_ptr<Pass> create_gemm_pass() { return std::make_unique<GemmPass>(); }

}  // namespace tdl::ir
