// Backward rules, one per entry of GradOps.def, in its order; the formula of
// each is in GradOps.def. `w` says which inputs need a gradient.
#include "vm/autodiff/GradRules.h"

#include <fmt/format.h>

#include "runtime/Create.h"
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

Value k(double x) { return Value::weakFloat(x); }
const Value& in0(const Node& n) { return n.in[0]; }
const Value& in1(const Node& n) { return n.in[1]; }
// An untagged comparison (a mask: gradients do not flow through it).
Value mask(BinaryOp op, const Value& a, const Value& b) { return plain::binaryValues(op, a, b); }

// g of a reduction, back at x's shape.
Value broadcastBack(const Value& g, const Node& n) {
  rt::Shape xs = shapeOf(in0(n));
  if (xs.empty()) return g;
  auto reduced = rt::reduction_mask(n.hasAxes ? rt::Axes(n.ints) : std::nullopt, static_cast<int64_t>(xs.size()));
  rt::Shape kept = xs;
  for (size_t i = 0; i < xs.size(); ++i)
    if (reduced[i]) kept[i] = 1;
  Value gk = n.keepdims ? g : reshape(g, kept);
  return broadcastTo(gk, xs);
}

// The last two axes swapped.
Value swapLast(const Value& x) {
  int64_t r = static_cast<int64_t>(shapeOf(x).size());
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < r; ++i) perm.push_back(i);
  std::swap(perm[static_cast<size_t>(r - 2)], perm[static_cast<size_t>(r - 1)]);
  return transpose(x, perm);
}

// g summed to `shape` (the axes broadcasting added), as sumTo without a dtype.
Value reduceToShape(const Value& g, const rt::Shape& shape) {
  rt::Shape gs = shapeOf(g);
  if (gs == shape) return g;
  size_t lead = gs.size() - shape.size();
  std::vector<int64_t> axes;
  for (size_t i = 0; i < gs.size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && gs[i] != 1)) axes.push_back(static_cast<int64_t>(i));
  Value r = axes.empty() ? g : reduce(rt::ReduceOp::Sum, g, axes, false);
  return shapeOf(r) == shape ? r : reshape(r, shape);
}

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
};

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

void ruleCast(const Node& n, const Value& g, const Want&, Grads& gin) { gin[0] = fitTo(g, in0(n)); }

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
  const Value& c = in0(n);
  if (w[1]) gin[1] = sumTo(where(c, g, k(0)), n.in[1]);
  if (w[2]) gin[2] = sumTo(where(c, k(0), g), n.in[2]);
}

void ruleMatMul(const Node& n, const Value& g, const Want& w, Grads& gin) {
  const Value &a = in0(n), &b = in1(n);
  rt::Shape as = shapeOf(a), bs = shapeOf(b);
  // 1-D operands get their dim back (a: in front, b: at the end), and g with them.
  Value a2 = a, b2 = b, g2 = g;
  if (bs.size() == 1) {
    b2 = expandDims(b, -1);
    g2 = expandDims(g2, -1);
  }
  if (as.size() == 1) {
    a2 = expandDims(a, 0);
    g2 = expandDims(g2, -2);
  }
  if (w[0]) gin[0] = fitTo(reshape(reduceToShape(matmul(g2, swapLast(b2)), shapeOf(a2)), as), a);
  if (w[1]) gin[1] = fitTo(reshape(reduceToShape(matmul(swapLast(a2), g2), shapeOf(b2)), bs), b);
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

void ruleSum(const Node& n, const Value& g, const Want&, Grads& gin) { gin[0] = broadcastBack(g, n); }

void ruleMean(const Node& n, const Value& g, const Want&, Grads& gin) {
  double count = static_cast<double>(rt::numel_of(shapeOf(in0(n)))) / static_cast<double>(rt::numel_of(shapeOf(n.out)));
  gin[0] = div(broadcastBack(g, n), k(count));
}

// The first extreme element of each reduced group (argmax's choice) as a mask.
Value firstExtreme(const Node& n, rt::ReduceOp arg) {
  const Value& x = in0(n);
  rt::Shape xs = shapeOf(x);
  rt::Axes axes = n.hasAxes ? rt::Axes(n.ints) : std::nullopt;
  rt::Tensor am = rt::reduce(arg, toTensor(strong(x)), axes, true);
  auto reduced = rt::reduction_mask(axes, static_cast<int64_t>(xs.size()));
  rt::Shape iotaShape = xs;
  int64_t count = 1;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (reduced[i]) count *= xs[i];
    else iotaShape[i] = 1;
  }
  // Positions in the reduced axes flattened in C order, as argmax counts them.
  rt::Tensor iota = rt::reshape(rt::arange_int(0, count, 1), iotaShape);
  return fromTensor(rt::eq(iota, am));
}

void ruleMax(const Node& n, const Value& g, const Want&, Grads& gin) {
  if (shapeOf(in0(n)).empty()) return void(gin[0] = g);
  gin[0] = where(firstExtreme(n, rt::ReduceOp::ArgMax), broadcastBack(g, n), k(0));
}

void ruleMin(const Node& n, const Value& g, const Want&, Grads& gin) {
  if (shapeOf(in0(n)).empty()) return void(gin[0] = g);
  gin[0] = where(firstExtreme(n, rt::ReduceOp::ArgMin), broadcastBack(g, n), k(0));
}

void ruleProd(const Node& n, const Value& g, const Want&, Grads& gin) {
  gin[0] = div(broadcastBack(mul(g, n.out), n), in0(n));
}

void ruleLogSumExp(const Node& n, const Value& g, const Want&, Grads& gin) {
  gin[0] = mul(broadcastBack(g, n), unary(UnaryOp::Exp, sub(in0(n), broadcastBack(n.out, n))));
}

void ruleReshape(const Node& n, const Value& g, const Want&, Grads& gin) {
  gin[0] = fitTo(reshape(g, shapeOf(in0(n))), in0(n));
}

void ruleTranspose(const Node& n, const Value& g, const Want&, Grads& gin) {
  std::vector<int64_t> inv(n.ints.size());
  for (size_t i = 0; i < n.ints.size(); ++i) inv[static_cast<size_t>(n.ints[i])] = static_cast<int64_t>(i);
  gin[0] = transpose(g, inv);
}

void ruleBroadcastTo(const Node& n, const Value& g, const Want&, Grads& gin) { gin[0] = sumTo(g, in0(n)); }

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

void rulePad(const Node& n, const Value& g, const Want&, Grads& gin) {
  rt::Shape xs = shapeOf(in0(n));
  rt::IndexSpec spec;
  for (size_t i = 0; i < xs.size(); ++i) spec.push_back(rt::IndexItem::slice(n.ints[i], n.ints[i] + xs[i]));
  gin[0] = getIndex(g, spec);
}

void ruleConcat(const Node& n, const Value& g, const Want&, Grads& gin) {
  const auto& xs = in0(n).as<SeqObj>()->items;
  int64_t rank = static_cast<int64_t>(shapeOf(g).size());
  size_t axis = static_cast<size_t>(rt::normalize_axis(n.ints[0], rank));
  std::vector<Value> out;
  int64_t off = 0;
  for (auto& x : xs) {
    int64_t d = shapeOf(x)[axis];
    rt::IndexSpec spec(axis, rt::IndexItem::all());
    spec.push_back(rt::IndexItem::slice(off, off + d));
    off += d;
    out.push_back(x.node() ? fitTo(getIndex(g, spec), x) : Value());
  }
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
  gin[0] = indexAdd(zerosLike(in0(n)), in1(n), g, n.ints[0]);
}

void ruleIndexAdd(const Node& n, const Value& g, const Want& w, Grads& gin) {
  if (w[0]) gin[0] = g;
  if (w[2]) gin[2] = sumTo(take(g, in1(n), n.ints[0]), n.in[2]);
}

void ruleGetIndex(const Node& n, const Value& g, const Want&, Grads& gin) {
  gin[0] = setIndex(zerosLike(in0(n)), n.spec, g);
}

void ruleSetIndex(const Node& n, const Value& g, const Want& w, Grads& gin) {
  if (w[0]) gin[0] = setIndex(g, n.spec, k(0));
  if (w[1]) gin[1] = sumTo(getIndex(g, n.spec), in1(n));
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
