// The builtins made of other builtins and operators (SPEC §12: var, std, norm, allclose,
// tril, triu, split, sort, topk), each written once here as a template over an engine E:
// eager mode (vm/BuiltinsComposite.cpp: V is a Value, each step runs at once and records
// on the tapes) and the graph tracer (graph/BuiltinsComposite.cpp: V is a trace value,
// each step traced into IR). Their gradients are those of the steps, in both engines, and
// their errors name the builtin and stand at the user's call.
//
// E provides:
//   using V;
//   bool has(i)  V arg(i)            the bound argument i (by the builtin's parameter list)
//   int64_t intArg(i, dflt)          an integer known now (at trace time in graph fns)
//   V intValueArg(i, dflt)           an integer scalar, known now or only at run time
//   double numArg(i, dflt)           a number known now
//   bool boolArg(i, dflt)
//   bool isNone(i)
//   std::vector<int64_t> sizesArg(i)  an int or a list of ints known now; isScalarArg(i): an int
//   [[noreturn]] fail(msg)           "NAME(): msg"
//   [[noreturn]] failLimit(msg)      the same, for a limit of graph fns (a size that must be
//                                    known when tracing): raised when tracing, wherever it is
//   bool numeric(V)  bool floating(V)  int64_t rank(V)  std::string describe(V) (its type, in errors)
//   DType dtype(V)                   a number's or tensor's dtype (a weak number's as it is used)
//   std::optional<int64_t> knownDim(V, axis)   a dim known now (axis normalized)
//   V dim(V, axis)                   the dim as an i64 scalar (known, or at run time)
//   bool sameDim(V, axis, V, axis)   two dims known now to be equal (the same size or symbol)
//   V call(name, {positional...}, {{keyword, V}...})   another builtin
//   V bin(BinaryOp, a, b)  V un(UnaryOp, x)           the operators, weak scalars as usual
//   V num(double)  V integer(int64_t)  V boolean(bool)  V none()   weak constants
//   V list(vector<V>)  V tuple(vector<V>)
//   V slice(x, axis, start, stop, step=1)   x[..., start:stop:step, ...] along axis (known bounds)
//   V sliceTo(x, axis, stop)         x[..., :stop, ...] along axis, stop an integer scalar V
//                                    known now or only at run time
//   std::optional<int64_t> knownInt(V)   an integer scalar's value when it is known now
//   void require(cond, format, {V...})   fail("NAME(): " + format with the values) unless the
//                                    bool scalar cond holds (a run-time check in graph fns)
//   std::optional<std::string> strArg(i)     the argument, when it is a string
//   V im2col(x, rt::Window2d, pad)  V col2im(cols, h, w, rt::Window2d)   (runtime/Conv.h, recorded)
//   V scan(x, axis, prod)            rt::scan (recorded)   V argsort(x, axis, descending)  rt::argsort
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "runtime/Conv.h"
#include "runtime/Elementwise.h"
#include "runtime/Shape.h"

namespace tdl::vm::composite {

using rt::BinaryOp;
using rt::UnaryOp;

template <class E>
typename E::V tensorArg(E& e, size_t i, const char* name) {
  typename E::V x = e.arg(i);
  if (!e.numeric(x)) e.fail(fmt::format("'{}' must be a tensor, got {}", name, e.describe(x)));
  return x;
}

// Argument i as an axis of a tensor of rank r (known now), normalized to 0..r-1.
template <class E>
int64_t axisArg(E& e, size_t i, int64_t dflt, int64_t r) {
  int64_t axis = e.intArg(i, dflt);
  if (axis < -r || axis >= r) e.fail(fmt::format("axis {} is out of range for a tensor of rank {}", axis, r));
  return axis < 0 ? axis + r : axis;
}

// cumsum(x, axis=none) / cumprod: the running sum or product along axis, or over x
// flattened (NumPy's default); the engine's scan is rt::scan (the IR op scan).
template <bool prod, class E>
typename E::V scan_(E& e) {
  auto x = tensorArg(e, 0, "x");
  if (e.isNone(1)) return e.scan(e.call("flatten", {x}, {}), 0, prod);
  if (e.rank(x) == 0) e.fail("'x' must have rank >= 1 to scan along an axis, got a scalar");
  return e.scan(x, axisArg(e, 1, 0, e.rank(x)), prod);
}

// argsort(x, axis=-1, descending=false): the stable sorting permutation along axis
// (rt::argsort, the IR op argsort; NaN counts as the largest).
template <class E>
typename E::V argsort_(E& e) {
  auto x = tensorArg(e, 0, "x");
  if (e.rank(x) == 0) e.fail("'x' must have rank >= 1, got a scalar");
  return e.argsort(x, axisArg(e, 1, -1, e.rank(x)), e.boolArg(2, false));
}

// The keyword arguments axis= and keepdims= of a reduction, passed on as given.
template <class E>
std::vector<std::pair<const char*, typename E::V>> reduceKw(E& e, size_t axis, size_t keepdims, bool keep) {
  return {{"axis", e.has(axis) ? e.arg(axis) : e.none()}, {"keepdims", keep ? e.boolean(true) : e.has(keepdims) ? e.arg(keepdims) : e.boolean(false)}};
}

// var(x, axis=none, keepdims=false): the population variance, mean((x - mean(x))^2), as
// NumPy's default (ddof 0).
template <class E>
typename E::V var_(E& e) {
  auto x = tensorArg(e, 0, "x");
  auto m = e.call("mean", {x}, reduceKw(e, 1, 2, true));
  auto d = e.bin(BinaryOp::Sub, x, m);
  return e.call("mean", {e.bin(BinaryOp::Mul, d, d)}, reduceKw(e, 1, 2, false));
}

// round(x, decimals=0): half to even at `decimals` digits after the point (before it when
// negative), NumPy's way: rint(x * 10^d) / 10^d in x's dtype (rint(x / 10^-d) * 10^-d for
// d < 0); integers are unchanged for d >= 0 and rounded exactly, half to even, for d < 0 (0
// where 10^-d is beyond the dtype); bools are unchanged. Where 10^|d| is beyond the float
// dtype (f32: 10^38, f64: 10^308), x is unchanged (d > 0) or 0 (d < 0).
template <class E>
typename E::V round_(E& e) {
  auto x = tensorArg(e, 0, "x");
  const int64_t d = e.intArg(1, 0);
  const DType dt = e.dtype(x);
  if (d == 0 || dt == DType::Bool || (d > 0 && !e.floating(x))) return e.un(UnaryOp::Round, x);
  if (!e.floating(x)) {  // q = x // f, r = x - q * f; up when 2r > f, or 2r == f with q odd
    if (d < (dt == DType::I32 ? -9 : -18)) return e.bin(BinaryOp::Mul, x, e.integer(0));
    int64_t f = 1;
    for (int64_t i = 0; i < -d; ++i) f *= 10;
    auto q = e.bin(BinaryOp::FloorDiv, x, e.integer(f));
    auto r2 = e.bin(BinaryOp::Mul, e.bin(BinaryOp::Sub, x, e.bin(BinaryOp::Mul, q, e.integer(f))), e.integer(2));
    auto odd = e.bin(BinaryOp::Eq, e.bin(BinaryOp::Mod, q, e.integer(2)), e.integer(1));
    auto up = e.bin(BinaryOp::BitOr, e.bin(BinaryOp::Gt, r2, e.integer(f)),
                    e.bin(BinaryOp::BitAnd, e.bin(BinaryOp::Eq, r2, e.integer(f)), odd));
    auto n = e.call("where", {up, e.bin(BinaryOp::Add, q, e.integer(1)), q}, {});
    return e.bin(BinaryOp::Mul, n, e.integer(f));
  }
  const int64_t limit = dt == DType::F64 ? 308 : 38;
  if (d > limit) return x;
  if (d < -limit) return e.bin(BinaryOp::Mul, x, e.num(0.0));
  const double f = std::stod(fmt::format("1e{}", d > 0 ? d : -d));  // correctly rounded
  if (d > 0) return e.bin(BinaryOp::Div, e.un(UnaryOp::Round, e.bin(BinaryOp::Mul, x, e.num(f))), e.num(f));
  return e.bin(BinaryOp::Mul, e.un(UnaryOp::Round, e.bin(BinaryOp::Div, x, e.num(f))), e.num(f));
}

// std(x, axis=none, keepdims=false) = sqrt(var(x, ...)).
// sqrt(s) of a sum of squares (norm, std), whose gradient where s is 0 is 0 (PyTorch's
// subgradient) rather than 0 * inf = NaN, which would poison a clip-by-norm of zero
// gradients or a constant feature's std: the sqrt sees 1 there, and its result (and so its
// gradient) is replaced by 0. The values are sqrt(s)'s.
template <class E>
typename E::V sqrtZeroGrad(E& e, const typename E::V& s) {
  auto zero = e.bin(BinaryOp::Eq, s, e.num(0.0));
  auto safe = e.call("where", {zero, e.num(1.0), s}, {});
  return e.call("where", {zero, e.num(0.0), e.un(UnaryOp::Sqrt, safe)}, {});
}

template <class E>
typename E::V std_(E& e) {
  return sqrtZeroGrad(e, var_(e));
}

// norm(x, axis=none, keepdims=false): the 2-norm, sqrt(sum(x * x)); integers and bools as
// floats first (their squares would wrap), as NumPy's.
template <class E>
typename E::V norm_(E& e) {
  auto x = tensorArg(e, 0, "x");
  if (!e.floating(x)) x = e.bin(BinaryOp::Mul, x, e.num(1.0));
  return sqrtZeroGrad(e, e.call("sum", {e.bin(BinaryOp::Mul, x, x)}, reduceKw(e, 1, 2, false)));
}

// allclose(a, b, rtol=1e-5, atol=1e-8): every |a - b| <= atol + rtol * |b| (NumPy's rule,
// broadcasting; equal infinities are close, NaN is close to nothing), a bool scalar.
template <class E>
typename E::V allclose_(E& e) {
  auto a = tensorArg(e, 0, "a"), b = tensorArg(e, 1, "b");
  double rtol = e.numArg(2, 1e-5), atol = e.numArg(3, 1e-8);
  if (!(rtol >= 0) || !(atol >= 0)) e.fail("'rtol' and 'atol' must be >= 0");
  auto diff = e.un(UnaryOp::Abs, e.bin(BinaryOp::Sub, a, b));
  auto tol = e.bin(BinaryOp::Add, e.num(atol), e.bin(BinaryOp::Mul, e.num(rtol), e.un(UnaryOp::Abs, b)));
  auto close = e.bin(BinaryOp::BitOr, e.bin(BinaryOp::Le, diff, tol), e.bin(BinaryOp::Eq, a, b));
  return e.call("all", {close}, {});
}

// tril(x, k=0) / triu(x, k=0): x with the elements above (below) the k-th diagonal of its
// last two axes set to zero; a batch of matrices in the leading axes.
template <bool lower, class E>
typename E::V triangle_(E& e) {
  auto x = tensorArg(e, 0, "x");
  if (e.rank(x) < 2) e.fail(fmt::format("'x' must have rank >= 2 (a matrix or a batch of them), got rank {}", e.rank(x)));
  auto k = e.intValueArg(1, 0);  // the shape does not depend on it
  auto rows = e.call("expand_dims", {e.call("arange", {e.dim(x, -2)}, {}), e.integer(1)}, {});
  auto cols = e.call("arange", {e.dim(x, -1)}, {});
  auto off = e.bin(BinaryOp::Sub, cols, rows);  // j - i
  auto keep = e.bin(lower ? BinaryOp::Le : BinaryOp::Ge, off, k);
  return e.call("where", {keep, x, e.call("zeros_like", {x}, {})}, {});
}

// split(x, n_or_sizes, axis=0): a list of parts along axis: n equal parts (n must divide
// the axis), or parts of the given sizes (which must add up to it; one -1 takes the rest),
// TensorFlow's tf.split.
template <class E>
typename E::V split_(E& e) {
  auto x = tensorArg(e, 0, "x");
  int64_t r = e.rank(x);
  if (r == 0) e.fail("'x' must have rank >= 1, got a scalar");
  int64_t axis = axisArg(e, 2, 0, r);
  std::optional<int64_t> n = e.knownDim(x, axis);
  if (!n) e.failLimit(fmt::format("the size of axis {} must be known at trace time in a graph fn", axis));
  std::vector<int64_t> sizes = e.sizesArg(1);
  if (sizes.size() == 1 && e.isScalarArg(1)) {
    int64_t parts = sizes[0];
    if (parts <= 0) e.fail(fmt::format("the number of parts must be positive, got {}", parts));
    if (*n % parts != 0)
      e.fail(fmt::format("cannot split axis {} of size {} into {} equal parts", axis, *n, parts));
    sizes.assign(static_cast<size_t>(parts), *n / parts);
  } else {
    int64_t known = 0, rest = -1;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] == -1 && rest < 0) rest = static_cast<int64_t>(i);
      else if (sizes[i] < 0) e.fail(fmt::format("sizes must be >= 0 (one may be -1), got {}", sizes[i]));
      else known += sizes[i];
    }
    if (rest >= 0 && known <= *n) sizes[static_cast<size_t>(rest)] = *n - known, known = *n;
    if (known != *n)
      e.fail(fmt::format("sizes add up to {}, but axis {} has size {}", known, axis, *n));
  }
  std::vector<typename E::V> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(e.slice(x, axis, at, at + s));
    at += s;
  }
  return e.list(std::move(out));
}

// x with `axis` moved last, and the permutation that moves it back.
template <class E>
std::pair<typename E::V, std::vector<int64_t>> axisLast(E& e, const typename E::V& x, int64_t axis) {
  int64_t r = e.rank(x);
  if (axis == r - 1) return {x, {}};
  std::vector<int64_t> perm, back(static_cast<size_t>(r));
  for (int64_t a = 0; a < r; ++a)
    if (a != axis) perm.push_back(a);
  perm.push_back(axis);
  for (int64_t i = 0; i < r; ++i) back[static_cast<size_t>(perm[static_cast<size_t>(i)])] = i;
  std::vector<typename E::V> p;
  for (int64_t a : perm) p.push_back(e.integer(a));
  return {e.call("transpose", {x, e.list(p)}, {}), back};
}

template <class E>
typename E::V moveBack(E& e, const typename E::V& x, const std::vector<int64_t>& back) {
  if (back.empty()) return x;
  std::vector<typename E::V> p;
  for (int64_t a : back) p.push_back(e.integer(a));
  return e.call("transpose", {x, e.list(p)}, {});
}

// x[..., idx[..., j]] along the last axis (NumPy's take_along_axis): x flattened, and
// each row's indices offset by the row's start; a take, so gradients flow back to x.
template <class E>
typename E::V takeAlongLast(E& e, const typename E::V& x, const typename E::V& idx) {
  int64_t r = e.rank(x);
  auto n = e.dim(x, -1);
  std::vector<typename E::V> lead;
  for (int64_t a = 0; a + 1 < r; ++a) lead.push_back(e.dim(x, a));
  typename E::V count = e.integer(1);
  for (auto& d : lead) count = e.bin(BinaryOp::Mul, count, d);
  auto rows = e.call("arange", {count}, {});
  lead.push_back(e.integer(1));
  auto starts = e.call("reshape", {e.bin(BinaryOp::Mul, rows, n), e.list(lead)}, {});
  auto flat = e.call("reshape", {x, e.list({e.integer(-1)})}, {});
  return e.call("take", {flat, e.bin(BinaryOp::Add, idx, starts)}, {});
}

// sort(x, axis=-1, descending=false): x's values in order along axis (stable argsort,
// then a take: differentiable).
template <class E>
typename E::V sort_(E& e) {
  auto x = tensorArg(e, 0, "x");
  int64_t r = e.rank(x);
  if (r == 0) e.fail("'x' must have rank >= 1, got a scalar");
  int64_t axis = axisArg(e, 1, -1, r);
  auto [xl, back] = axisLast(e, x, axis);
  auto idx = e.argsort(xl, r - 1, e.boolArg(2, false));
  return moveBack(e, takeAlongLast(e, xl, idx), back);
}

// topk(x, k): the k largest values along the last axis, largest first, and their indices
// (equal values: the first first), as a tuple (values, indices).
// A k known only at run time (a graph fn's argument, as TensorFlow's top_k takes a tensor)
// gives a last axis of symbolic size, checked against the axis's size when the fn runs.
template <class E>
typename E::V topk_(E& e) {
  auto x = tensorArg(e, 0, "x");
  if (e.rank(x) == 0) e.fail("'x' must have rank >= 1, got a scalar");
  const int64_t last = e.rank(x) - 1;
  auto kv = e.intValueArg(1, 0);
  std::optional<int64_t> k = e.knownInt(kv);
  std::optional<int64_t> n = e.knownDim(x, last);
  if (k && (*k < 0 || (n && *k > *n)))
    e.fail(n ? fmt::format("k must be in [0, {}] (the size of the last axis), got {}", *n, *k)
             : fmt::format("k must be >= 0, got {}", *k));
  if (!k || !n) {  // a bound only the run knows: checked then, with eager's words
    auto nv = e.dim(x, last);
    e.require(e.bin(BinaryOp::LogicalAnd, e.bin(BinaryOp::Ge, kv, e.integer(0)), e.bin(BinaryOp::Le, kv, nv)),
              "k must be in [0, {}] (the size of the last axis), got {}", {nv, kv});
  }
  auto order = e.argsort(x, last, true);
  auto idx = k ? e.slice(order, last, 0, *k) : e.sliceTo(order, last, kv);
  return e.tuple({takeAlongLast(e, x, idx), idx});
}

// ------------------------------------------------------------ convolutions and pooling
// TensorFlow's layouts: x [N, H, W, C], w [KH, KW, C / groups, O]. A convolution is im2col
// (runtime/Conv.h: each output position's window taps, padding implicit) and one matrix
// product (BLAS) per group; pooling reduces the same taps with max or a sum.
// The dims other than N must be known (at trace time in graph fns).

// An int or a pair of ints known now (stride, dilation, size): (a, a) or (a, b).
template <class E>
std::pair<int64_t, int64_t> pairArg(E& e, size_t i, const char* name, int64_t dflt) {
  if (e.isNone(i)) return {dflt, dflt};
  std::vector<int64_t> v = e.sizesArg(i);
  if (v.size() == 1 && e.isScalarArg(i)) v.push_back(v[0]);
  if (v.size() != 2) e.fail(fmt::format("'{}' must be an int or a pair of ints", name));
  if (v[0] < 1 || v[1] < 1) e.fail(fmt::format("'{}' must be >= 1, got ({}, {})", name, v[0], v[1]));
  // Beyond any tensor's size (and the window arithmetic's range).
  constexpr int64_t kMax = int64_t{1} << 32;
  if (v[0] > kMax || v[1] > kMax) e.fail(fmt::format("'{}' must be at most 2^32, got ({}, {})", name, v[0], v[1]));
  return {v[0], v[1]};
}

// One spatial axis of a window: its padding before and after and the output size.
struct Window {
  int64_t before = 0, after = 0, out = 0;
};

// padding: "valid" (none), "same" (TensorFlow's: out = ceil(n / stride), the odd one after)
// or explicit amounts per axis, padded on both sides.
struct Padding {
  int kind = 0;  // 0 valid, 1 same, 2 explicit
  int64_t amount[2] = {0, 0};
};

template <class E>
Padding paddingArg(E& e, size_t i) {
  Padding p;
  if (e.isNone(i)) return p;
  if (auto str = e.strArg(i)) {
    if (*str == "valid") return p;
    if (*str == "same") return p.kind = 1, p;
    e.fail(fmt::format("'padding' must be \"valid\", \"same\" or a pair of ints, got \"{}\"", *str));
  }
  std::vector<int64_t> v = e.sizesArg(i);
  if (v.size() == 1 && e.isScalarArg(i)) v.push_back(v[0]);
  if (v.size() != 2 || v[0] < 0 || v[1] < 0) e.fail("'padding' must be \"valid\", \"same\" or a pair of ints >= 0");
  if (v[0] > (int64_t{1} << 32) || v[1] > (int64_t{1} << 32))
    e.fail(fmt::format("'padding' must be at most 2^32, got ({}, {})", v[0], v[1]));
  p.kind = 2, p.amount[0] = v[0], p.amount[1] = v[1];
  return p;
}

template <class E>
Window window(E& e, int64_t n, int64_t k, int64_t stride, int64_t dilation, const Padding& p, int axis) {
  Window w;
  int64_t eff = (k - 1) * dilation + 1;
  if (p.kind == 1) {
    w.out = (n + stride - 1) / stride;
    int64_t total = std::max<int64_t>((w.out - 1) * stride + eff - n, 0);
    w.before = total / 2, w.after = total - w.before;
    return w;
  }
  if (p.kind == 2) w.before = w.after = p.amount[axis];
  int64_t padded = n + w.before + w.after;
  if (padded < eff)
    e.fail(fmt::format("the window ({} with dilation {}) is larger than the input ({} with padding) along axis {}", k,
                       dilation, padded, axis + 1));
  w.out = (padded - eff) / stride + 1;
  return w;
}

template <class E>
std::vector<int64_t> knownDims(E& e, const typename E::V& v, const char* name, int64_t rank, int64_t from) {
  if (e.rank(v) != rank) e.fail(fmt::format("'{}' must have rank {}, got rank {}", name, rank, e.rank(v)));
  std::vector<int64_t> d(static_cast<size_t>(rank), -1);
  for (int64_t a = from; a < rank; ++a) {
    auto k = e.knownDim(v, a);
    if (!k) e.failLimit(fmt::format("axis {} of '{}' must have a size known at trace time in a graph fn", a, name));
    d[static_cast<size_t>(a)] = *k;
  }
  return d;
}

// A convolution's x [N, H, W, C] and w (rank 4, dims known but N), stride and padding:
// arguments 0 to 3 of conv2d and conv2d_transpose.
template <class E>
struct ConvArgs {
  typename E::V x, w;
  std::vector<int64_t> xd, wd;
  std::pair<int64_t, int64_t> stride;
  Padding pad;
};

template <class E>
ConvArgs<E> convArgs(E& e) {
  ConvArgs<E> c{tensorArg(e, 0, "x"), tensorArg(e, 1, "w"), {}, {}, {}, {}};
  c.xd = knownDims(e, c.x, "x", 4, 1);
  c.wd = knownDims(e, c.w, "w", 4, 0);
  c.stride = pairArg(e, 2, "stride", 1);
  c.pad = paddingArg(e, 3);
  return c;
}

// The leading size of a reshape that splits x's batch off again: x's batch times `times`,
// given the product `rest` of the other dims of the new shape. -1 where that works it out
// (a graph fn's symbolic batch keeps its symbol); -1 cannot where `rest` is 0 (an empty
// filter or channel axis): then the size itself, known or at run time.
template <class E>
typename E::V batchSize(E& e, const typename E::V& x, int64_t rest, int64_t times = 1) {
  if (rest != 0) return e.integer(-1);
  if (auto n = e.knownDim(x, 0)) return e.integer(*n * times);
  return times == 1 ? e.dim(x, 0) : e.bin(BinaryOp::Mul, e.dim(x, 0), e.integer(times));
}

inline rt::Window2d window2d(std::pair<int64_t, int64_t> k, std::pair<int64_t, int64_t> s, std::pair<int64_t, int64_t> d,
                      const Window& h, const Window& w) {
  return {k.first, k.second, s.first, s.second, d.first, d.second, h.before, w.before, h.out, w.out};
}

// conv2d(x, w, stride=1, padding="valid", dilation=1, groups=1): [N, H', W', O].
template <class E>
typename E::V conv2d_(E& e) {
  auto [x, wt, xd, wd, stride, pad] = convArgs(e);
  auto dil = pairArg(e, 4, "dilation", 1);
  int64_t groups = e.intArg(5, 1);
  int64_t C = xd[3], KH = wd[0], KW = wd[1], Cg = wd[2], O = wd[3];
  if (groups < 1) e.fail(fmt::format("'groups' must be >= 1, got {}", groups));
  if (C % groups != 0 || O % groups != 0)
    e.fail(fmt::format("groups ({}) must divide the input channels ({}) and the output channels ({})", groups, C, O));
  if (Cg * groups != C)
    e.fail(fmt::format("w has {} input channels per group, x has {} channels in {} group(s) (w: [KH, KW, C / groups, O])",
                       Cg, C, groups));
  Window h = window(e, xd[1], KH, stride.first, dil.first, pad, 0);
  Window w = window(e, xd[2], KW, stride.second, dil.second, pad, 1);
  rt::Window2d win = window2d({KH, KW}, stride, dil, h, w);
  int64_t Og = O / groups, K = KH * KW * Cg;
  std::vector<typename E::V> outs;
  for (int64_t g = 0; g < groups; ++g) {
    auto xg = groups == 1 ? x : e.slice(x, 3, g * Cg, (g + 1) * Cg);
    auto wg = groups == 1 ? wt : e.slice(wt, 3, g * Og, (g + 1) * Og);
    auto flat = e.call("reshape", {e.im2col(xg, win, 0.0), e.list({batchSize(e, x, K, h.out * w.out), e.integer(K)})}, {});
    auto y = e.call("matmul", {flat, e.call("reshape", {wg, e.list({e.integer(K), e.integer(Og)})}, {})}, {});
    outs.push_back(
        e.call("reshape", {y, e.list({batchSize(e, x, h.out * w.out * Og), e.integer(h.out), e.integer(w.out), e.integer(Og)})}, {}));
  }
  return outs.size() == 1 ? outs[0] : e.call("concat", {e.list(outs)}, {{"axis", e.integer(-1)}});
}

// conv1d(x, w, stride=1, padding="valid", dilation=1, groups=1) on x [N, W, C], w [KW, C / groups, O]:
// conv2d over a height of 1.
template <class E>
typename E::V conv1d_(E& e) {
  auto x = tensorArg(e, 0, "x"), wt = tensorArg(e, 1, "w");
  if (e.rank(x) != 3) e.fail(fmt::format("'x' must have rank 3 ([N, W, C]), got rank {}", e.rank(x)));
  if (e.rank(wt) != 3) e.fail(fmt::format("'w' must have rank 3 ([KW, C / groups, O]), got rank {}", e.rank(wt)));
  knownDims(e, x, "x", 3, 1);  // conv2d's needs, in conv1d's axes
  knownDims(e, wt, "w", 3, 0);
  auto one = [&](size_t i, const char* name) {
    int64_t v = 1;
    if (!e.isNone(i)) {
      if (!e.isScalarArg(i)) e.fail(fmt::format("'{}' must be an int", name));
      v = e.intArg(i, 1);
      if (v < 1) e.fail(fmt::format("'{}' must be >= 1, got {}", name, v));  // conv1d's words, not conv2d's pair
    }
    return e.list({e.integer(1), e.integer(v)});
  };
  auto padding = e.none();
  if (!e.isNone(3)) {
    if (e.strArg(3)) padding = e.arg(3);
    else padding = e.list({e.integer(0), e.integer(e.intArg(3, 0))});
  }
  auto y = e.call("conv2d", {e.call("expand_dims", {x, e.integer(1)}, {}), e.call("expand_dims", {wt, e.integer(0)}, {})},
                  {{"stride", one(2, "stride")}, {"padding", padding}, {"dilation", one(4, "dilation")},
                   {"groups", e.integer(e.intArg(5, 1))}});
  return e.call("squeeze", {y, e.integer(1)}, {});
}

// conv2d_transpose(x, w, stride=1, padding="valid") on x [N, H, W, C], w [KH, KW, O, C]
// (TensorFlow's filter layout): the gradient of conv2d with respect to its input, an output
// of (H - 1) * stride + KH ("valid"), H * stride ("same"), or "valid"'s less 2 * p (ints p,
// PyTorch's padding): each input position's product with w, summed into the output windows
// (col2im of x @ w^T).
template <class E>
typename E::V conv2d_transpose_(E& e) {
  auto [x, wt, xd, wd, stride, pad] = convArgs(e);
  int64_t H = xd[1], W = xd[2], C = xd[3], KH = wd[0], KW = wd[1], O = wd[2];
  if (wd[3] != C) e.fail(fmt::format("w has {} input channels, x has {} (w: [KH, KW, O, C])", wd[3], C));
  // The output size and the crop before, per axis.
  auto axis = [&](int64_t n, int64_t k, int64_t s, int a) {
    Window w;
    w.out = n;  // the window positions are x's
    int64_t full = (n - 1) * s + k;
    if (pad.kind == 1) {
      w.before = std::max<int64_t>(k - s, 0) / 2;
      return std::pair<Window, int64_t>{w, n * s};
    }
    int64_t p = pad.kind == 2 ? pad.amount[a] : 0;
    if (2 * p >= full) e.fail(fmt::format("padding {} leaves no output along axis {}", p, a + 1));
    w.before = p;
    return std::pair<Window, int64_t>{w, full - 2 * p};
  };
  auto [h, oh] = axis(H, KH, stride.first, 0);
  auto [w, ow] = axis(W, KW, stride.second, 1);
  rt::Window2d win = window2d({KH, KW}, stride, {1, 1}, h, w);
  int64_t K = KH * KW * O;
  auto wm = e.call("transpose", {e.call("reshape", {wt, e.list({e.integer(K), e.integer(C)})}, {}),
                                 e.list({e.integer(1), e.integer(0)})}, {});
  auto cols = e.call("matmul", {e.call("reshape", {x, e.list({batchSize(e, x, C, H * W), e.integer(C)})}, {}), wm}, {});
  cols = e.call("reshape", {cols, e.list({batchSize(e, x, H * W * K), e.integer(H), e.integer(W), e.integer(K)})}, {});
  return e.col2im(cols, oh, ow, win);
}

// max_pool2d(x, size, stride=size, padding="valid") / avg_pool2d on x [N, H, W, C]; "same"
// pads as conv2d does, and the average counts only the input's elements (TensorFlow's);
// explicit padding (PyTorch's form) counts the padded zeros too, as PyTorch's default
// (count_include_pad=True).
template <bool isMax, class E>
typename E::V pool_(E& e) {
  auto x = tensorArg(e, 0, "x");
  auto xd = knownDims(e, x, "x", 4, 1);
  auto size = pairArg(e, 1, "size", 1);
  auto stride = e.isNone(2) ? size : pairArg(e, 2, "stride", 1);
  Padding pad = paddingArg(e, 3);
  Window h = window(e, xd[1], size.first, stride.first, 1, pad, 0);
  Window w = window(e, xd[2], size.second, stride.second, 1, pad, 1);
  rt::Window2d win = window2d(size, stride, {1, 1}, h, w);
  int64_t taps = size.first * size.second;
  auto cols = e.im2col(x, win, isMax ? -std::numeric_limits<double>::infinity() : 0.0);
  auto byTap = e.call("reshape", {cols, e.list({batchSize(e, x, h.out * w.out * taps * xd[3]), e.integer(h.out), e.integer(w.out), e.integer(taps),
                                                e.integer(xd[3])})}, {});
  if (isMax) {
    // Each window's first maximum (argmax: a NaN counts as the largest, as max's value), so
    // its gradient goes to that element alone, as PyTorch's and TensorFlow's max pooling.
    auto first = e.call("argmax", {byTap}, {{"axis", e.integer(3)}, {"keepdims", e.boolean(true)}});
    auto tap = e.call("reshape", {e.call("arange", {e.integer(taps)}, {}),
                                  e.list({e.integer(1), e.integer(1), e.integer(1), e.integer(taps), e.integer(1)})}, {});
    auto at = e.bin(BinaryOp::Eq, tap, first);
    return e.call("sum", {e.call("where", {at, byTap, e.call("zeros_like", {byTap}, {})}, {})}, {{"axis", e.integer(3)}});
  }
  auto r = e.call("sum", {byTap}, {{"axis", e.integer(3)}});
  if ((!h.before && !h.after && !w.before && !w.after) || pad.kind == 2)
    return e.bin(BinaryOp::Div, r, e.num(static_cast<double>(taps)));
  // The number of the input's elements under each window: [1, oh, ow, 1].
  auto ones = e.call("ones", {e.list({e.integer(1), e.integer(xd[1]), e.integer(xd[2]), e.integer(1)})}, {});
  auto count = e.call("sum", {e.im2col(ones, win, 0.0)}, {{"axis", e.integer(3)}, {"keepdims", e.boolean(true)}});
  return e.bin(BinaryOp::Div, r, count);
}

// ------------------------------------------------------------------------- einsum
// einsum(subscripts, xs...): NumPy's notation ("ij,jk->ik", "bij,bjk->bik", "ii->i", "ij->",
// "...ij,...jk->...ik"; no "->": the '...' axes, then the labels seen once, in alphabetical
// order). Each operand's '...' stands for the axes its letters leave; those of all operands
// broadcast together, aligned from the right (labels of their own, 0x80 + i, named here:
// then they are labels as any other). Repeated labels in
// one operand take its diagonal; labels of one operand only that the result lacks are summed
// first; then the operands are contracted left to right, each pair as one (batched) matmul
// of transposed and reshaped operands: the batch labels (in both and needed later), the
// contracted ones (in both, not needed later) and each side's own.
template <class E>
typename E::V einsum_(E& e, const std::string& subscripts, std::vector<typename E::V> xs) {
  using V = typename E::V;
  std::string spec;
  for (char ch : subscripts)
    if (ch != ' ') spec += ch;
  std::string lhs = spec, out;
  bool explicitOut = false;
  if (auto arrow = spec.find("->"); arrow != std::string::npos) {
    lhs = spec.substr(0, arrow), out = spec.substr(arrow + 2), explicitOut = true;
  }
  std::vector<std::string> terms;
  size_t start = 0;
  for (size_t i = 0; i <= lhs.size(); ++i)
    if (i == lhs.size() || lhs[i] == ',') terms.push_back(lhs.substr(start, i - start)), start = i + 1;
  if (terms.size() != xs.size())
    e.fail(fmt::format("the subscripts name {} operand(s), {} given", terms.size(), xs.size()));
  auto isLetter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  auto isLabel = [&](char c) { return isLetter(c) || static_cast<unsigned char>(c) >= 0x80; };
  auto labelName = [](char c) {
    return static_cast<unsigned char>(c) >= 0x80 ? std::string("an axis of '...'") : fmt::format("label '{}'", c);
  };
  // '...': where each term has it (npos: not), checked; then the labels it stands for.
  auto ellipsisAt = [&](const std::string& t, const std::string& whose) {
    size_t at = t.find("...");
    for (size_t i = 0; i < t.size(); ++i) {
      if (at != std::string::npos && i >= at && i < at + 3) continue;
      if (t[i] == '.') e.fail(fmt::format("a '.' in the subscripts of {} is not part of an ellipsis ('...')", whose));
      size_t n = 1;  // a whole UTF-8 character
      while (i + n < t.size() && (static_cast<unsigned char>(t[i + n]) & 0xC0) == 0x80) ++n;
      if (!isLetter(t[i])) e.fail(fmt::format("invalid subscript '{}' in \"{}\"", t.substr(i, n), subscripts));
    }
    return at;
  };
  std::vector<size_t> dots(terms.size());
  std::vector<int64_t> extra(terms.size(), 0);
  int64_t ellipsisRank = 0;
  for (size_t k = 0; k < terms.size(); ++k) {
    dots[k] = ellipsisAt(terms[k], fmt::format("operand {}", k));
    if (!e.numeric(xs[k])) e.fail(fmt::format("operand {} must be a tensor, got {}", k, e.describe(xs[k])));
    if (dots[k] == std::string::npos) continue;
    extra[k] = e.rank(xs[k]) - static_cast<int64_t>(terms[k].size() - 3);
    if (extra[k] < 0)
      e.fail(fmt::format("operand {} has rank {}, its subscripts \"{}\" name {} axes", k, e.rank(xs[k]), terms[k],
                         terms[k].size() - 3));
    ellipsisRank = std::max(ellipsisRank, extra[k]);
  }
  auto ellipsisLabels = [](int64_t from, int64_t to) {
    std::string l;
    for (int64_t i = from; i < to; ++i) l += static_cast<char>(0x80 + i);
    return l;
  };
  for (size_t k = 0; k < terms.size(); ++k)
    if (dots[k] != std::string::npos)
      terms[k].replace(dots[k], 3, ellipsisLabels(ellipsisRank - extra[k], ellipsisRank));
  if (explicitOut) {
    size_t at = ellipsisAt(out, "the output");
    if (at != std::string::npos) out.replace(at, 3, ellipsisLabels(0, ellipsisRank));
    else if (ellipsisRank > 0)
      e.fail("the operands' '...' axes must be in the output: put '...' after '->' too (or sum them after)");
  }
  std::map<char, int> count;
  for (size_t k = 0; k < terms.size(); ++k) {
    if (static_cast<int64_t>(terms[k].size()) != e.rank(xs[k]))
      e.fail(fmt::format("operand {} has rank {}, its subscripts \"{}\" name {} axes", k, e.rank(xs[k]), terms[k],
                         terms[k].size()));
    for (char c : terms[k]) count[c]++;
  }
  if (!explicitOut) {
    out = ellipsisLabels(0, ellipsisRank);
    for (auto& [c, n] : count)
      if (n == 1 && isLetter(c)) out += c;
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (!isLabel(out[i]) || !count.count(out[i]))
      e.fail(fmt::format("output subscript '{}' names no input axis", out[i]));
    if (out.find(out[i]) != i) e.fail(fmt::format("output subscript '{}' is repeated", out[i]));
  }
  // Every label's size, checked where known; a size 1 broadcasts against another (NumPy's
  // einsum: "bij,bjk->bik" with b 2 and 1).
  std::map<char, V> size;
  std::map<char, std::optional<int64_t>> known;
  bool stretch = false;
  for (size_t k = 0; k < terms.size(); ++k)
    for (size_t a = 0; a < terms[k].size(); ++a) {
      char c = terms[k][a];
      auto d = e.knownDim(xs[k], static_cast<int64_t>(a));
      if (known.count(c) && known[c] && d && *known[c] != *d) {
        if (*known[c] != 1 && *d != 1) e.fail(fmt::format("{} has size {} and {}", labelName(c), *known[c], *d));
        stretch = true;
        if (*d == 1) continue;
      }
      if (!known.count(c) || (!known[c] && d) || (known[c] && d && *known[c] == 1 && *d != 1))
        known[c] = d, size[c] = e.dim(xs[k], static_cast<int64_t>(a));
    }
  // A label whose dims are known only at run time (graph fns' symbols) and may differ, one
  // of them 1: its size is their maximum, and every operand with it is broadcast to that.
  std::map<char, std::pair<size_t, size_t>> first;  // operand, axis
  std::set<char> runtime;
  for (size_t k = 0; k < terms.size(); ++k)
    for (size_t a = 0; a < terms[k].size(); ++a) {
      char c = terms[k][a];
      auto [it, fresh] = first.emplace(c, std::pair<size_t, size_t>{k, a});
      if (fresh) continue;
      const V& x0 = xs[it->second.first];
      const auto a0 = static_cast<int64_t>(it->second.second), ak = static_cast<int64_t>(a);
      if (e.sameDim(x0, a0, xs[k], ak) || (e.knownDim(x0, a0) && e.knownDim(xs[k], ak))) continue;
      {  // equal or one of them 1, checked when it runs, with eager's words
        auto d0 = e.dim(x0, a0), dk = e.dim(xs[k], ak);
        auto one = [&](const V& d) { return e.bin(BinaryOp::Eq, d, e.integer(1)); };
        e.require(e.bin(BinaryOp::LogicalOr, e.bin(BinaryOp::LogicalOr, e.bin(BinaryOp::Eq, d0, dk), one(d0)), one(dk)),
                  labelName(c) + " has size {} and {}", {d0, dk});
      }
      size[c] = e.call("maximum", {size[c], e.dim(xs[k], ak)}, {});
      runtime.insert(c);
      stretch = true;
    }
  if (stretch)  // the operands with a size-1 axis where their label is larger, broadcast to it
    for (size_t k = 0; k < terms.size(); ++k) {
      bool here = false;
      std::vector<V> dims;
      for (size_t a = 0; a < terms[k].size(); ++a) {
        char c = terms[k][a];
        auto d = e.knownDim(xs[k], static_cast<int64_t>(a));
        here = here || (d && *d == 1 && known[c] && *known[c] != 1) || runtime.count(c);
        dims.push_back(size[c]);
      }
      if (here) xs[k] = e.call("broadcast_to", {xs[k], e.list(dims)}, {});
    }
  auto ints = [&](const std::vector<int64_t>& v) {
    std::vector<V> l;
    for (int64_t i : v) l.push_back(e.integer(i));
    return e.list(l);
  };
  auto sumAxes = [&](V x, std::string& labels, const std::string& drop) {
    std::vector<int64_t> axes;
    std::string kept;
    for (size_t a = 0; a < labels.size(); ++a)
      if (drop.find(labels[a]) != std::string::npos) axes.push_back(static_cast<int64_t>(a));
      else kept += labels[a];
    if (axes.empty()) return x;
    labels = kept;
    return e.call("sum", {x}, {{"axis", ints(axes)}});
  };
  auto permute = [&](V x, std::string& labels, const std::string& order) {
    if (labels == order) return x;
    std::vector<int64_t> perm;
    for (char c : order) perm.push_back(static_cast<int64_t>(labels.find(c)));
    labels = order;
    return e.call("transpose", {x, ints(perm)}, {});
  };
  auto product = [&](const std::string& labels) {
    V p = e.integer(1);
    for (char c : labels) p = e.bin(BinaryOp::Mul, p, size[c]);
    return p;
  };
  // Diagonals of repeated labels, then the labels no one else needs.
  std::vector<std::string> labs = terms;
  for (size_t k = 0; k < xs.size(); ++k) {
    std::string& l = labs[k];
    for (size_t a = 0; a < l.size(); ++a)
      for (size_t b = a + 1; b < l.size(); ++b)
        if (l[a] == l[b]) {
          // x where eye on axes a and b (0 elsewhere, x's dtype kept), summed over b: the
          // diagonal stays on axis a.
          std::vector<V> shape(l.size(), e.integer(1));
          shape[a] = size[l[a]], shape[b] = size[l[a]];
          V mask = e.call("reshape", {e.bin(BinaryOp::Gt, e.call("eye", {size[l[a]]}, {}), e.num(0.5)), e.list(shape)}, {});
          V kept = e.call("where", {mask, xs[k], e.call("zeros_like", {xs[k]}, {})}, {});
          xs[k] = e.call("sum", {kept}, {{"axis", e.integer(static_cast<int64_t>(b))}});
          l.erase(b, 1);
          --b;
        }
    std::string drop;
    for (char c : l) {
      bool elsewhere = out.find(c) != std::string::npos;
      for (size_t j = 0; j < xs.size(); ++j) elsewhere = elsewhere || (j != k && labs[j].find(c) != std::string::npos);
      if (!elsewhere) drop += c;
    }
    xs[k] = sumAxes(xs[k], l, drop);
  }
  V acc = xs[0];
  std::string al = labs[0];
  for (size_t k = 1; k < xs.size(); ++k) {
    const std::string& bl = labs[k];
    std::string later = out;
    for (size_t j = k + 1; j < xs.size(); ++j) later += labs[j];
    std::string batch, contract, freeA, freeB;
    for (char c : al)
      if (bl.find(c) != std::string::npos) (later.find(c) != std::string::npos ? batch : contract) += c;
      else freeA += c;
    for (char c : bl)
      if (al.find(c) == std::string::npos) freeB += c;
    V a = permute(acc, al, batch + freeA + contract);
    std::string blab = bl;
    V b = permute(xs[k], blab, batch + contract + freeB);
    V a3 = e.call("reshape", {a, e.list({product(batch), product(freeA), product(contract)})}, {});
    V b3 = e.call("reshape", {b, e.list({product(batch), product(contract), product(freeB)})}, {});
    V r = e.call("matmul", {a3, b3}, {});
    al = batch + freeA + freeB;
    std::vector<V> shape;
    for (char c : al) shape.push_back(size[c]);
    acc = e.call("reshape", {r, e.list(shape)}, {});
  }
  std::string drop;
  for (char c : al)
    if (out.find(c) == std::string::npos) drop += c;
  acc = sumAxes(acc, al, drop);
  return permute(acc, al, out);
}

}  // namespace tdl::vm::composite
