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
//   double numArg(i, dflt)           a number known now
//   bool boolArg(i, dflt)
//   bool isNone(i)
//   std::vector<int64_t> sizesArg(i)  an int or a list of ints known now; isScalarArg(i): an int
//   [[noreturn]] fail(msg)           "NAME(): msg"
//   bool numeric(V)  int64_t rank(V)  std::string describe(V) (its type, in errors)
//   std::optional<int64_t> knownDim(V, axis)   a dim known now (axis normalized)
//   V dim(V, axis)                   the dim as an i64 scalar (known, or at run time)
//   V call(name, {positional...}, {{keyword, V}...})   another builtin
//   V bin(BinaryOp, a, b)  V un(UnaryOp, x)           the operators, weak scalars as usual
//   V num(double)  V integer(int64_t)  V boolean(bool)  V none()   weak constants
//   V list(vector<V>)  V tuple(vector<V>)
//   V slice(x, axis, start, stop)    x[..., start:stop, ...] along axis (known bounds)
#pragma once

#include <cstdint>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

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

// std(x, axis=none, keepdims=false) = sqrt(var(x, ...)).
template <class E>
typename E::V std_(E& e) {
  return e.un(UnaryOp::Sqrt, var_(e));
}

// norm(x, axis=none, keepdims=false): the 2-norm, sqrt(sum(x * x)).
template <class E>
typename E::V norm_(E& e) {
  auto x = tensorArg(e, 0, "x");
  return e.un(UnaryOp::Sqrt, e.call("sum", {e.bin(BinaryOp::Mul, x, x)}, reduceKw(e, 1, 2, false)));
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
template <class E>
typename E::V triangle(E& e, bool lower) {
  auto x = tensorArg(e, 0, "x");
  if (e.rank(x) < 2) e.fail(fmt::format("'x' must have rank >= 2 (a matrix or a batch of them), got rank {}", e.rank(x)));
  int64_t k = e.intArg(1, 0);
  auto rows = e.call("expand_dims", {e.call("arange", {e.dim(x, -2)}, {}), e.integer(1)}, {});
  auto cols = e.call("arange", {e.dim(x, -1)}, {});
  auto off = e.bin(BinaryOp::Sub, cols, rows);  // j - i
  auto keep = e.bin(lower ? BinaryOp::Le : BinaryOp::Ge, off, e.integer(k));
  return e.call("where", {keep, x, e.call("zeros_like", {x}, {})}, {});
}
template <class E>
typename E::V tril_(E& e) {
  return triangle(e, true);
}
template <class E>
typename E::V triu_(E& e) {
  return triangle(e, false);
}

// split(x, n_or_sizes, axis=0): a list of parts along axis: n equal parts (n must divide
// the axis), or parts of the given sizes (which must add up to it; one -1 takes the rest),
// TensorFlow's tf.split.
template <class E>
typename E::V split_(E& e) {
  auto x = tensorArg(e, 0, "x");
  int64_t r = e.rank(x);
  if (r == 0) e.fail("'x' must have rank >= 1, got a scalar");
  int64_t axis = e.intArg(2, 0);
  if (axis < -r || axis >= r) e.fail(fmt::format("axis {} is out of range for a tensor of rank {}", axis, r));
  if (axis < 0) axis += r;
  std::optional<int64_t> n = e.knownDim(x, axis);
  if (!n) e.fail(fmt::format("the size of axis {} must be known at trace time in a graph fn", axis));
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
  int64_t axis = e.intArg(1, -1);
  if (axis < -r || axis >= r) e.fail(fmt::format("axis {} is out of range for a tensor of rank {}", axis, r));
  if (axis < 0) axis += r;
  auto [xl, back] = axisLast(e, x, axis);
  auto idx = e.call("argsort", {xl}, {{"descending", e.boolean(e.boolArg(2, false))}});
  return moveBack(e, takeAlongLast(e, xl, idx), back);
}

// topk(x, k): the k largest values along the last axis, largest first, and their indices
// (equal values: the first first), as a tuple (values, indices).
template <class E>
typename E::V topk_(E& e) {
  auto x = tensorArg(e, 0, "x");
  if (e.rank(x) == 0) e.fail("'x' must have rank >= 1, got a scalar");
  int64_t k = e.intArg(1, 0);
  std::optional<int64_t> n = e.knownDim(x, e.rank(x) - 1);
  if (k < 0 || (n && k > *n))
    e.fail(n ? fmt::format("k must be in [0, {}] (the size of the last axis), got {}", *n, k)
             : fmt::format("k must be >= 0, got {}", k));
  auto order = e.call("argsort", {x}, {{"descending", e.boolean(true)}});
  auto idx = e.slice(order, e.rank(x) - 1, 0, k);
  return e.tuple({takeAlongLast(e, x, idx), idx});
}

}  // namespace tdl::vm::composite
