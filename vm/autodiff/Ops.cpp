#include "vm/autodiff/Ops.h"

#include "runtime/Create.h"
#include "runtime/Matmul.h"
#include "runtime/Conv.h"
#include "runtime/Scan.h"
#include "runtime/ShapeOps.h"
#include "vm/NumericOps.h"
#include "vm/autodiff/Tape.h"

namespace tdl::vm::ad {

namespace {

rt::Tensor tensorOf(const Value& v) { return toTensor(strong(v)); }

Node make(GradOp op, std::vector<Value> in) {
  Node n;
  n.op = op;
  n.in = std::move(in);
  return n;
}

// The node of an elementwise op: its rule is its grad column in runtime/ops.def.
Node elementwiseNode(rt::BinaryOp op, std::vector<Value> in) {
  if (!(rt::props(op) & rt::kDiff)) return make(GradOp::Leaf, std::move(in));  // piecewise constant: no gradient
  Node n = make(GradOp::Binary, std::move(in));
  n.ints = {static_cast<int64_t>(op)};
  return n;
}
Node elementwiseNode(rt::UnaryOp op, std::vector<Value> in) {
  if (!(rt::props(op) & rt::kDiff)) return make(GradOp::Leaf, std::move(in));
  Node n = make(GradOp::Unary, std::move(in));
  n.ints = {static_cast<int64_t>(op)};
  return n;
}

GradOp reduceGradOp(rt::ReduceOp op) {
  switch (op) {
    case rt::ReduceOp::Sum: return GradOp::Sum;
    case rt::ReduceOp::Mean: return GradOp::Mean;
    case rt::ReduceOp::Max: return GradOp::Max;
    case rt::ReduceOp::Min: return GradOp::Min;
    case rt::ReduceOp::Prod: return GradOp::Prod;
    case rt::ReduceOp::LogSumExp: return GradOp::LogSumExp;
    default: return GradOp::Leaf;
  }
}

// Records a reshape-like op (the gradient is reshaped back to x's shape).
Value reshaped(const Value& x, Value r) {
  if (wants(r, {&x})) record(r, make(GradOp::Reshape, {x}));
  return r;
}

std::vector<rt::Tensor> listOperands(const Value& xs) { return unifyOperands(xs.as<SeqObj>()->items); }

// The value stored into a tensor of dtype dt (weak scalars take dt exactly).
rt::Tensor storedValue(const Value& v, DType dt) {
  if (v.isScalar() && v.weak()) return scalarTensor(v, dt);
  return toTensor(v);
}

}  // namespace

// ------------------------------------------------------------ operators

Value binary(rt::BinaryOp op, const Value& a, const Value& b) {
  Value r = plain::binaryValues(op, a, b);
  if (wants(r, {&a, &b})) record(r, elementwiseNode(op, {a, b}));
  return r;
}

Value unary(rt::UnaryOp op, const Value& x) {
  Value r = plain::unaryValues(op, x);
  if (wants(r, {&x})) record(r, elementwiseNode(op, {x}));
  return r;
}

Value matmul(const Value& a, const Value& b) {
  Value r = plain::matmulValues(a, b);
  if (wants(r, {&a, &b})) record(r, make(GradOp::MatMul, {a, b}));
  return r;
}

Value cast(const Value& x, DType dt) {
  Value r = plain::castValue(x, dt);
  if (wants(r, {&x})) record(r, make(isFloat(x) ? GradOp::Cast : GradOp::Leaf, {x}));
  return r;
}

// ------------------------------------------------------------- builtins

Value elementwise(rt::BinaryOp op, const Value& a, const Value& b) {
  Value r;
  if (a.isScalar() && b.isScalar() && (op == rt::BinaryOp::Maximum || op == rt::BinaryOp::Minimum)) {
    // Two numbers without a tensor (maximum(m, x) in a scalar loop): the same dtypes as
    // below (weak operands take their default dtype, a builtin's result is strong).
    r = a.weak() && b.weak() ? plain::binaryValues(op, strong(a), strong(b)) : plain::binaryValues(op, a, b);
  } else {
    auto ts = unifyOperands({a, b});
    r = fromTensor(rt::binary(op, ts[0], ts[1]));
  }
  if (wants(r, {&a, &b})) record(r, elementwiseNode(op, {a, b}));
  return r;
}

Value clip(const Value& x, const Value& lo, const Value& hi) {
  auto ts = unifyOperands({x, lo, hi});
  Value r = fromTensor(rt::clip(ts[0], ts[1], ts[2]));
  if (wants(r, {&x, &lo, &hi})) record(r, make(GradOp::Clip, {x, lo, hi}));
  return r;
}

Value where(const Value& c, const Value& a, const Value& b) {
  auto ts = unifyOperands({a, b});
  Value r = fromTensor(rt::where(tensorOf(c), ts[0], ts[1]));
  if (wants(r, {&a, &b})) record(r, make(GradOp::Where, {c, a, b}));
  return r;
}

Value reduce(rt::ReduceOp op, const Value& x, const rt::Axes& axes, bool keepdims) {
  Value r = fromTensor(rt::reduce(op, tensorOf(x), axes, keepdims));
  if (wants(r, {&x})) {
    Node n = make(reduceGradOp(op), {x});
    n.keepdims = keepdims;
    n.hasAxes = axes.has_value();
    if (axes) n.ints = *axes;
    record(r, std::move(n));
  }
  return r;
}

Value dot(const Value& a, const Value& b) {
  auto ts = unifyOperands({a, b});
  Value r = fromTensor(rt::dot(ts[0], ts[1]));
  if (wants(r, {&a, &b})) record(r, make(GradOp::Dot, {a, b}));
  return r;
}

Value outer(const Value& a, const Value& b) {
  auto ts = unifyOperands({a, b});
  Value r = fromTensor(rt::outer(ts[0], ts[1]));
  if (wants(r, {&a, &b})) record(r, make(GradOp::Outer, {a, b}));
  return r;
}

Value transpose(const Value& x, const std::vector<int64_t>& perm) {
  rt::Tensor t = tensorOf(x);
  Value r = fromTensor(rt::transpose(t, perm));
  if (wants(r, {&x})) {
    Node n = make(GradOp::Transpose, {x});
    n.ints = rt::normalize_perm(perm, t.rank());
    record(r, std::move(n));
  }
  return r;
}

Value reshape(const Value& x, const rt::Shape& spec) { return reshaped(x, fromTensor(rt::reshape(tensorOf(x), spec))); }
Value expandDims(const Value& x, int64_t axis) { return reshaped(x, fromTensor(rt::expand_dims(tensorOf(x), axis))); }
Value expandDims(const Value& x, const std::vector<int64_t>& axes) {
  return reshaped(x, fromTensor(rt::expand_dims(tensorOf(x), axes)));
}
Value squeeze(const Value& x, const rt::Axes& axes) { return reshaped(x, fromTensor(rt::squeeze(tensorOf(x), axes))); }
Value flatten(const Value& x) { return reshaped(x, fromTensor(rt::flatten(tensorOf(x)))); }

Value broadcastTo(const Value& x, const rt::Shape& shape) {
  Value r = fromTensor(rt::broadcast_to(tensorOf(x), shape));
  if (wants(r, {&x})) record(r, make(GradOp::BroadcastTo, {x}));
  return r;
}

Value concat(const Value& xs, int64_t axis) {
  Value r = fromTensor(rt::concat(listOperands(xs), axis));
  if (wants(r, {&xs})) {
    Node n = make(GradOp::Concat, {xs});
    n.ints = {axis};
    record(r, std::move(n));
  }
  return r;
}

Value stack(const Value& xs, int64_t axis) {
  Value r = fromTensor(rt::stack(listOperands(xs), axis));
  if (wants(r, {&xs})) {
    Node n = make(GradOp::Stack, {xs});
    n.ints = {axis};
    record(r, std::move(n));
  }
  return r;
}

Value im2col(const Value& x, const rt::Window2d& w, double pad) {
  Value r = fromTensor(rt::im2col(tensorOf(x), w, pad));
  if (wants(r, {&x})) {
    Node n = make(GradOp::Im2col, {x});
    auto l = w.list();
    n.ints.assign(l.begin(), l.end());
    record(r, std::move(n));
  }
  return r;
}

Value col2im(const Value& cols, int64_t h, int64_t wd, const rt::Window2d& w) {
  Value r = fromTensor(rt::col2im(tensorOf(cols), h, wd, w));
  if (wants(r, {&cols})) {
    Node n = make(GradOp::Col2im, {cols});
    auto l = w.list();
    n.ints.assign(l.begin(), l.end());
    record(r, std::move(n));
  }
  return r;
}

Value scan(const Value& x, int64_t axis, bool prod, bool reverse) {
  Value r = fromTensor(rt::scan(tensorOf(x), axis, prod, reverse));
  if (wants(r, {&x})) {
    Node n = make(GradOp::Scan, {x});
    n.ints = {rt::normalize_axis(axis, static_cast<int64_t>(shapeOf(x).size())), prod, reverse};
    record(r, std::move(n));
  }
  return r;
}

Value take(const Value& x, const Value& idx, int64_t axis) {
  Value r = fromTensor(rt::take(tensorOf(x), tensorOf(idx), axis));
  if (wants(r, {&x})) {
    Node n = make(GradOp::Take, {x, idx});
    n.ints = {axis};
    record(r, std::move(n));
  }
  return r;
}

Value tile(const Value& x, const std::vector<int64_t>& reps) {
  Value r = fromTensor(rt::tile(tensorOf(x), reps));
  if (wants(r, {&x})) {
    Node n = make(GradOp::Tile, {x});
    n.ints = reps;
    record(r, std::move(n));
  }
  return r;
}

Value pad(const Value& x, const std::vector<std::pair<int64_t, int64_t>>& widths, const rt::Tensor& value,
          const Value* valueArg) {
  rt::Tensor t = tensorOf(x);
  Value r = fromTensor(rt::pad(t, widths, value));
  if (valueArg ? wants(r, {&x, valueArg}) : wants(r, {&x})) {
    Node n = valueArg ? make(GradOp::Pad, {x, *valueArg}) : make(GradOp::Pad, {x});
    for (int64_t d = 0; d < t.rank(); ++d) {
      // One pair for every axis, or one per axis.
      const auto& w = widths.size() == 1 ? widths[0] : widths[static_cast<size_t>(d)];
      n.ints.push_back(w.first);
    }
    record(r, std::move(n));
  }
  return r;
}

// -------------------------------------------------------------- indexing

Value getIndex(const Value& x, const rt::IndexSpec& spec) {
  Value r = fromTensor(rt::get_index(tensorOf(x), spec));
  if (wants(r, {&x})) {
    Node n = make(GradOp::GetIndex, {x});
    n.spec = spec;
    record(r, std::move(n));
  }
  return r;
}

Value gather(const Value& x, const Value& idx) { return take(x, idx, 0); }

Value setIndex(const Value& x, const rt::IndexSpec& spec, const Value& v) {
  rt::Tensor t = tensorOf(x);
  rt::set_index(t, spec, storedValue(v, t.dtype()));
  Value r = fromTensor(std::move(t));
  if (wants(r, {&x, &v})) {
    Node n = make(GradOp::SetIndex, {x, v});
    n.spec = spec;
    record(r, std::move(n));
  }
  return r;
}

Value scatter(const Value& x, const Value& idx, const Value& v) {
  rt::Tensor t = tensorOf(x);
  rt::scatter(t, tensorOf(idx), storedValue(v, t.dtype()));
  Value r = fromTensor(std::move(t));
  if (wants(r, {&x, &v})) record(r, make(GradOp::Scatter, {x, idx, v}));
  return r;
}

Value indexAdd(const Value& base, const Value& idx, const Value& src, int64_t axis) {
  Value r = fromTensor(rt::index_add(tensorOf(base), tensorOf(idx), tensorOf(src), axis));
  if (wants(r, {&base, &src})) {
    Node n = make(GradOp::IndexAdd, {base, idx, src});
    n.ints = {axis};
    record(r, std::move(n));
  }
  return r;
}

Value identity(const Value& x) {
  Value r = x;
  r.setNode(0);
  if (wants(r, {&x})) record(r, make(GradOp::Identity, {x}));
  else makeLeaf(r);
  return r;
}

// --------------------------------------------------------------- helpers

rt::Shape shapeOf(const Value& v) { return v.isTensor() ? v.as<TensorObj>()->t.shape() : rt::Shape{}; }

DType dtypeOf(const Value& v) { return v.isTensor() ? v.as<TensorObj>()->t.dtype() : v.dtype(); }

Value zerosLike(const Value& v) {
  if (v.isScalar()) return Value::floatLike(v.dtype(), 0.0, v.weak());
  const rt::Tensor& t = v.as<TensorObj>()->t;
  return fromTensor(rt::zeros(t.shape(), t.dtype()));
}

Value fitTo(const Value& g, const Value& like) {
  if (like.isScalar() && like.weak()) return g;
  if (!isFloat(g) || dtypeOf(g) == dtypeOf(like)) return g;
  return cast(g, dtypeOf(like));
}

Value sumTo(const Value& g, const Value& like) {
  rt::Shape gs = shapeOf(g), ls = shapeOf(like);
  Value r = g;
  if (gs.size() < ls.size()) return fitTo(broadcastTo(g, ls), like);
  if (gs != ls) {
    std::vector<int64_t> axes = rt::broadcast_axes(gs, ls);
    if (!axes.empty()) r = reduce(rt::ReduceOp::Sum, r, axes, false);
    if (shapeOf(r) != ls) r = reshape(r, ls);
  }
  return fitTo(r, like);
}

}  // namespace tdl::vm::ad
