// Backward rules, one per entry of GradOps.def, in its order; the formula of
// each is in GradOps.def. `w` says which inputs need a gradient.
#include "vm/autodiff/GradRules.h"

#include <fmt/format.h>

#include "runtime/Adjoint.h"
#include "runtime/Create.h"
#include "runtime/Dist.h"
#include "runtime/Error.h"
#include "runtime/OpMath.h"
#include "runtime/ShapeOps.h"
#include "vm/NumericOps.h"
#include "vm/autodiff/Ops.h"

namespace tdl::vm::ad {

namespace {

using Want = std::vector<char>;
using Grads = std::vector<Value>;
using rt::BinaryOp;
using rt::UnaryOp;
namespace adjoint = rt::adjoint;

Value k(double x) { return Value::weakFloat(x); }
const Value& in0(const Node& n) { return n.in[0]; }
const Value& in1(const Node& n) { return n.in[1]; }
// An untagged comparison (a mask: gradients do not flow through it).
Value mask(BinaryOp op, const Value& a, const Value& b) { return plain::binaryValues(op, a, b); }

// ---------------------------------------------------------------- rules

void ruleLeaf(const Node&, const Value&, const Want&, Grads&) {}

void ruleIdentity(const Node&, const Value& g, const Want&, Grads& gin) { gin[0] = g; }

// The eager adjoint builder for the formulas of runtime/ops.def: tensor ops that record on
// the active tapes (higher-order derivatives); comparisons are untagged masks.
struct EagerAdjoint {
  using V = Value;
  template <UnaryOp Op>
  V unary(const V& x) {
    return ad::unary(Op, x);
  }
  template <BinaryOp Op>
  V binary(const V& a, const V& b) {
    if constexpr ((rt::props(Op) & rt::kPred) != 0) return mask(Op, a, b);
    else return ad::binary(Op, a, b);
  }
  V k(double c, const V&) { return Value::weakFloat(c); }
  V select(const V& c, const V& a, const V& b) { return where(c, a, b); }
  // The shape ops of runtime/Adjoint.h.
  int64_t rank(const V& x) { return static_cast<int64_t>(shapeOf(x).size()); }
  V fit(const V& g, const V& x) { return sumTo(g, x); }
  V zerosLike(const V& x, const V&) { return ad::zerosLike(x); }
  V reshapeLike(const V& g, const V& x) { return reshape(g, shapeOf(x)); }
  V broadcastLike(const V& g, const V& x) { return broadcastTo(g, shapeOf(x)); }
  V expandDims(const V& v, int64_t a) { return ad::expandDims(v, a); }
  V squeeze(const V& v, int64_t a) { return ad::squeeze(v, std::vector<int64_t>{a}); }
  V transpose(const V& v, const std::vector<int64_t>& perm) { return ad::transpose(v, perm); }
  V matmul(const V& a, const V& b) { return ad::matmul(a, b); }
  V count(const V& x, const std::vector<int64_t>& axes, const V&) {
    rt::Shape xs = shapeOf(x);
    double n = 1;
    for (int64_t a : axes) n *= static_cast<double>(xs[static_cast<size_t>(a)]);
    return Value::weakFloat(n);
  }
  int64_t dim(const V& x, int64_t a) { return shapeOf(x)[static_cast<size_t>(a)]; }
  int64_t offsetDim(const V& x, int64_t a) { return dim(x, a); }
  int64_t zeroOffset() { return 0; }
  int64_t addOffset(int64_t a, int64_t b) { return a + b; }
  V sliceAxis(const V& g, int64_t axis, int64_t off, int64_t len) {
    rt::IndexSpec spec(static_cast<size_t>(axis), rt::IndexItem::all());
    spec.push_back(rt::IndexItem::slice(off, off + len));
    return getIndex(g, spec);
  }
  V take(const V& g, const V& idx, int64_t axis) { return ad::take(g, idx, axis); }
  V scan(const V& g, int64_t axis, bool reverse, bool prod = false) { return ad::scan(g, axis, prod, reverse); }
  V reduceKeep(rt::ReduceOp op, const V& x, const std::vector<int64_t>& axes) {
    return ad::reduce(op, x, rt::Axes(axes), true);
  }
  V im2col(const V& g, const rt::Window2d& w) { return ad::im2col(g, w, 0.0); }
  V col2im(const V& g, int64_t h, int64_t wd, const rt::Window2d& w) { return ad::col2im(g, h, wd, w); }
  V indexAdd(const V& base, const V& idx, const V& src, int64_t axis) { return ad::indexAdd(base, idx, src, axis); }
  V getIndex(const V& g, const rt::IndexSpec& spec) { return ad::getIndex(g, spec); }
  V setIndex(const V& base, const rt::IndexSpec& spec, const V& v) { return ad::setIndex(base, spec, v); }
};

// The axes a recorded reduction reduced, normalized and sorted.
std::vector<int64_t> reducedAxes(const Node& n) {
  int64_t r = static_cast<int64_t>(shapeOf(in0(n)).size());
  auto mask = rt::reduction_mask(n.hasAxes ? rt::Axes(n.ints) : std::nullopt, r);
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < r; ++i)
    if (mask[static_cast<size_t>(i)]) axes.push_back(i);
  return axes;
}

void set(Value& slot, std::optional<Value>&& v) {
  if (v) slot = std::move(*v);
}

void ruleBinary(const Node& n, const Value& g, const Want& w, Grads& gin) {
  EagerAdjoint m;
  auto [ga, gb] = rt::opmath::binary_grad(m, static_cast<BinaryOp>(n.ints[0]), g, in0(n), in1(n), n.out, w[0], w[1]);
  if (ga) gin[0] = sumTo(*ga, in0(n));
  if (gb) gin[1] = sumTo(*gb, in1(n));
}

void ruleUnary(const Node& n, const Value& g, const Want&, Grads& gin) {
  EagerAdjoint m;
  if (auto gx = rt::opmath::unary_grad(m, static_cast<UnaryOp>(n.ints[0]), g, in0(n), n.out)) gin[0] = *gx;
}

void ruleCast(const Node& n, const Value& g, const Want&, Grads& gin) {
  EagerAdjoint m;
  gin[0] = adjoint::to_input(m, g, in0(n));
}

void ruleClip(const Node& n, const Value& g, const Want& w, Grads& gin) {
  const Value &x = in0(n), &lo = in1(n), &hi = n.in[2];
  if (w[0]) {
    Value inside = mask(BinaryOp::BitAnd, mask(BinaryOp::Ge, x, lo), mask(BinaryOp::Le, x, hi));
    gin[0] = sumTo(where(inside, g, k(0)), x);
  }
  if (w[1]) gin[1] = sumTo(where(mask(BinaryOp::Lt, x, lo), g, k(0)), lo);
  if (w[2]) gin[2] = sumTo(where(mask(BinaryOp::Gt, x, hi), g, k(0)), hi);
}

void ruleWhere(const Node& n, const Value& g, const Want& w, Grads& gin) {
  EagerAdjoint m;
  auto [ga, gb] = adjoint::where(m, g, in0(n), n.in[1], n.in[2], w[1], w[2]);
  set(gin[1], std::move(ga));
  set(gin[2], std::move(gb));
}

void ruleMatMul(const Node& n, const Value& g, const Want& w, Grads& gin) {
  EagerAdjoint m;
  auto [ga, gb] = adjoint::matmul(m, g, in0(n), in1(n), w[0], w[1]);
  set(gin[0], std::move(ga));
  set(gin[1], std::move(gb));
}

void ruleDot(const Node& n, const Value& g, const Want& w, Grads& gin) {
  size_t ra = shapeOf(in0(n)).size(), rb = shapeOf(in1(n)).size();
  if (ra == 0 || rb == 0) {  // a scalar operand: dot is *, with *'s rule
    Node m = n;
    m.ints = {static_cast<int64_t>(BinaryOp::Mul)};
    return ruleBinary(m, g, w, gin);
  }
  if (rb <= 2 || ra == 1) return ruleMatMul(n, g, w, gin);  // dot is matmul here
  throw rt::Error("the gradient of dot is not available for these ranks; use matmul");
}

void ruleOuter(const Node& n, const Value& g, const Want& w, Grads& gin) {
  const Value &a = in0(n), &b = in1(n);
  if (w[0]) gin[0] = fitTo(reshape(matmul(g, flatten(b)), shapeOf(a)), a);
  if (w[1]) gin[1] = fitTo(reshape(matmul(flatten(a), g), shapeOf(b)), b);
}

void ruleReduce(rt::ReduceOp op, const Node& n, const Value& g, Grads& gin) {
  EagerAdjoint m;
  gin[0] = adjoint::reduce(m, op, g, in0(n), n.out, reducedAxes(n), n.keepdims);
}
void ruleSum(const Node& n, const Value& g, const Want&, Grads& gin) { ruleReduce(rt::ReduceOp::Sum, n, g, gin); }
void ruleMean(const Node& n, const Value& g, const Want&, Grads& gin) { ruleReduce(rt::ReduceOp::Mean, n, g, gin); }
void ruleMax(const Node& n, const Value& g, const Want&, Grads& gin) { ruleReduce(rt::ReduceOp::Max, n, g, gin); }
void ruleMin(const Node& n, const Value& g, const Want&, Grads& gin) { ruleReduce(rt::ReduceOp::Min, n, g, gin); }
void ruleProd(const Node& n, const Value& g, const Want&, Grads& gin) { ruleReduce(rt::ReduceOp::Prod, n, g, gin); }
void ruleLogSumExp(const Node& n, const Value& g, const Want&, Grads& gin) {
  ruleReduce(rt::ReduceOp::LogSumExp, n, g, gin);
}

rt::Window2d windowOf(const Node& n) {
  std::array<int64_t, 10> a{};
  for (size_t i = 0; i < 10; ++i) a[i] = n.ints.at(i);
  return rt::Window2d::from(a);
}

void ruleIm2col(const Node& n, const Value& g, const Want&, Grads& gin) {
  EagerAdjoint m;
  gin[0] = adjoint::im2col(m, g, in0(n), windowOf(n));
}

void ruleCol2im(const Node& n, const Value& g, const Want&, Grads& gin) {
  EagerAdjoint m;
  gin[0] = adjoint::col2im(m, g, windowOf(n));
}

void ruleScan(const Node& n, const Value& g, const Want&, Grads& gin) {
  EagerAdjoint m;
  gin[0] = adjoint::scan(m, g, in0(n), n.out, n.ints[1] != 0, n.ints[0], n.ints[2] != 0);
}

void ruleReshape(const Node& n, const Value& g, const Want&, Grads& gin) {
  EagerAdjoint m;
  gin[0] = adjoint::reshape(m, g, in0(n));
}

void ruleAllReduce(const Node& n, const Value& g, const Want&, Grads& gin) {
  std::vector<rt::Tensor> gs{toTensor(strong(g))};
  auto op = static_cast<rt::dist::ReduceOp>(n.ints[0]);
  if (op == rt::dist::ReduceOp::Max || op == rt::dist::ReduceOp::Min)
    rt::dist::allreduce_extreme_grad(gs, {toTensor(strong(n.in[0]))}, {toTensor(strong(n.out))}, "the backward pass");
  else
    rt::dist::allreduce(gs, op, "the backward pass");
  gin[0] = fromTensor(std::move(gs[0]));
}

void ruleDistBroadcast(const Node& n, const Value& g, const Want&, Grads& gin) {
  std::vector<rt::Tensor> gs{toTensor(strong(g))};
  rt::dist::broadcast_grad(gs, static_cast<int>(n.ints[0]), "the backward pass");
  gin[0] = fromTensor(std::move(gs[0]));
}

void ruleAllGather(const Node& n, const Value& g, const Want&, Grads& gin) {
  gin[0] = fromTensor(rt::dist::allgather_grad(toTensor(strong(g)), shapeOf(n.in[0])[0], "the backward pass"));
}

void ruleTranspose(const Node& n, const Value& g, const Want&, Grads& gin) {
  EagerAdjoint m;
  gin[0] = adjoint::transpose(m, g, n.ints);
}

void ruleBroadcastTo(const Node& n, const Value& g, const Want&, Grads& gin) {
  EagerAdjoint m;
  gin[0] = adjoint::to_input(m, g, in0(n));
}

void ruleTile(const Node& n, const Value& g, const Want&, Grads& gin) {
  rt::Shape xs = shapeOf(in0(n));
  std::vector<int64_t> reps = n.ints;
  size_t m = std::max(xs.size(), reps.size());
  rt::Shape s(m - xs.size(), 1), r(m - reps.size(), 1);
  s.insert(s.end(), xs.begin(), xs.end());
  r.insert(r.end(), reps.begin(), reps.end());
  rt::Shape split;
  std::vector<int64_t> repAxes;
  for (size_t i = 0; i < m; ++i) {
    repAxes.push_back(static_cast<int64_t>(split.size()));
    split.push_back(r[i]);
    split.push_back(s[i]);
  }
  Value summed = reduce(rt::ReduceOp::Sum, reshape(g, split), repAxes, false);
  gin[0] = fitTo(reshape(summed, xs), in0(n));
}

void rulePad(const Node& n, const Value& g, const Want& w, Grads& gin) {
  rt::Shape xs = shapeOf(in0(n));
  rt::IndexSpec spec;
  for (size_t i = 0; i < xs.size(); ++i) spec.push_back(rt::IndexItem::slice(n.ints[i], n.ints[i] + xs[i]));
  Value inner = getIndex(g, spec);
  if (w[0]) gin[0] = inner;
  // The value fills every element outside x: its gradient is g summed there.
  if (w.size() > 1 && w[1]) gin[1] = elementwise(BinaryOp::Sub, sumTo(g, in1(n)), sumTo(inner, in1(n)));
}

void ruleConcat(const Node& n, const Value& g, const Want&, Grads& gin) {
  const auto& xs = in0(n).as<SeqObj>()->items;
  int64_t axis = rt::normalize_axis(n.ints[0], static_cast<int64_t>(shapeOf(g).size()));
  Want want;
  for (auto& x : xs) want.push_back(x.node() ? 1 : 0);
  EagerAdjoint m;
  auto parts = adjoint::concat(m, g, xs, want, axis);
  std::vector<Value> out;
  for (auto& p : parts) out.push_back(p ? std::move(*p) : Value());
  gin[0] = makeList(std::move(out));
}

void ruleStack(const Node& n, const Value& g, const Want&, Grads& gin) {
  const auto& xs = in0(n).as<SeqObj>()->items;
  int64_t rank = static_cast<int64_t>(shapeOf(g).size());
  size_t axis = static_cast<size_t>(rt::normalize_axis(n.ints[0], rank));
  std::vector<Value> out;
  for (size_t i = 0; i < xs.size(); ++i) {
    rt::IndexSpec spec(axis, rt::IndexItem::all());
    spec.push_back(rt::IndexItem::at(static_cast<int64_t>(i)));
    out.push_back(xs[i].node() ? fitTo(getIndex(g, spec), xs[i]) : Value());
  }
  gin[0] = makeList(std::move(out));
}

void ruleTake(const Node& n, const Value& g, const Want&, Grads& gin) {
  EagerAdjoint m;
  gin[0] = adjoint::take(m, g, in0(n), in1(n), n.ints[0]);
}

void ruleIndexAdd(const Node& n, const Value& g, const Want& w, Grads& gin) {
  EagerAdjoint m;
  auto [gb, gs] = adjoint::index_add(m, g, in0(n), in1(n), n.in[2], n.ints[0], w[0], w[2]);
  set(gin[0], std::move(gb));
  set(gin[2], std::move(gs));
}

void ruleGetIndex(const Node& n, const Value& g, const Want&, Grads& gin) {
  EagerAdjoint m;
  gin[0] = adjoint::get_index(m, g, in0(n), n.spec);
}

void ruleSetIndex(const Node& n, const Value& g, const Want& w, Grads& gin) {
  EagerAdjoint m;
  auto [gx, gv] = adjoint::set_index(m, g, in0(n), in1(n), n.spec, w[0], w[1]);
  set(gin[0], std::move(gx));
  set(gin[1], std::move(gv));
}

void ruleScatter(const Node& n, const Value& g, const Want& w, Grads& gin) {
  if (w[0]) gin[0] = scatter(g, in1(n), k(0));
  if (w[2]) gin[2] = sumTo(take(g, in1(n), 0), n.in[2]);
}

using Rule = void (*)(const Node&, const Value&, const Want&, Grads&);
const Rule kRules[] = {
#define GRAD_OP(name, formula) &rule##name,
#include "vm/autodiff/GradOps.def"
};

}  // namespace

void backward(const Node& n, const Value& g, const std::vector<char>& want, std::vector<Value>& gin) {
  kRules[static_cast<size_t>(n.op)](n, g, want, gin);
}

}  // namespace tdl::vm::ad
