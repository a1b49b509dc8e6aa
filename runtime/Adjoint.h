// The backward rules of the ops that both engines differentiate besides the elementwise
// ones (whose rules are the grad columns of runtime/ops.def, OpMath.h): written once here
// as templates over an adjoint builder M, used by the eager tapes
// (vm/autodiff/GradRules.cpp, EagerAdjoint: tensor ops that record, for higher order)
// and by IR autodiff (ir/autodiff/Grad.cpp, IrAdjoint: IR ops; forward values are lazy,
// so only what a rule reads is saved inside loops).
//
// M provides, beside OpMath's unary<Op>, binary<Op>, k and select:
//   using V;                       a value (eager: vm::Value; IR: a lazy Value*)
//   int64_t rank(V)                its rank (without fetching a lazy value)
//   V fit(V g, V x)                g summed over the axes broadcasting added to x, in x's dtype
//   V zerosLike(V x, V g)          zeros of x's shape (in g's dtype where the engine types it)
//   V reshapeLike(V g, V x)        g reshaped to x's shape
//   V broadcastLike(V g, V x)      g broadcast to x's shape
//   V expandDims(V v, int64_t a)   a new axis of size 1 at a (0 <= a <= rank)
//   V squeeze(V v, int64_t a)      the axis a (of size 1) removed
//   V transpose(V v, perm)  V matmul(V a, V b)
//   V count(V x, axes, V g)        the number of elements of x over `axes`, a scalar of g's dtype
//   int64_t dim(V x, int64_t a)    a known dim (an error where the engine cannot have one)
//   O offsetDim(V x, int64_t a)    x's size along a as an offset O (eager: int64_t; IR: a known
//                                  size or a run-time value); O zeroOffset(); O addOffset(O, O)
//   V sliceAxis(V g, a, O off, O len)  g[..., off : off + len, ...] along a
//   V take(V g, V idx, a)  V indexAdd(V base, V idx, V src, a)
//   V scan(V g, a, reverse, prod=false)  g's running sum (product) along a (from the end
//                                  when reverse)
//   V reduceKeep(op, V x, axes)    x reduced over axes with keepdims
//   V im2col(V g, win)  V col2im(V g, h, w, win)   (runtime/Conv.h, padding zeros)
//   V getIndex(V g, S spec)  V setIndex(V base, S spec, V v)  (S: the engine's index spec)
// Axes are normalized (0 <= a < rank) and sorted; a rule is called only where some input
// wants a gradient, and reads the forward values it needs only for the gradients wanted.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "runtime/Elementwise.h"
#include "runtime/Reduce.h"

namespace tdl::rt::adjoint {

template <class M>
using Opt = std::optional<typename M::V>;

// cast, broadcast_to: gx = sum_to(g, x) in x's dtype.
template <class M>
typename M::V to_input(M& m, const typename M::V& g, const typename M::V& x) {
  return m.fit(g, x);
}

// reshape (and expand_dims, squeeze, flatten): gx = reshape(g, x.shape).
template <class M>
typename M::V reshape(M& m, const typename M::V& g, const typename M::V& x) {
  return m.fit(m.reshapeLike(g, x), x);
}

// transpose: gx = transpose(g, inverse(perm)).
template <class M>
typename M::V transpose(M& m, const typename M::V& g, const std::vector<int64_t>& perm) {
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
  return m.transpose(g, inv);
}

// where(c, a, b): ga = sum_to(where(c, g, 0), a); gb = sum_to(where(c, 0, g), b).
template <class M>
std::pair<Opt<M>, Opt<M>> where(M& m, const typename M::V& g, const typename M::V& c, const typename M::V& a,
                                const typename M::V& b, bool wa, bool wb) {
  std::pair<Opt<M>, Opt<M>> r;
  if (wa) r.first = m.fit(m.select(c, g, m.k(0.0, g)), a);
  if (wb) r.second = m.fit(m.select(c, m.k(0.0, g), g), b);
  return r;
}

template <class M>
typename M::V swap_last(M& m, const typename M::V& x) {
  int64_t r = m.rank(x);
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < r; ++i) perm.push_back(i);
  std::swap(perm[static_cast<size_t>(r - 2)], perm[static_cast<size_t>(r - 1)]);
  return m.transpose(x, perm);
}

// matmul (batched, NumPy's rules): ga = sum_to(g @ swap(b), a); gb = sum_to(swap(a) @ g, b).
// A 1-D operand gets its dim back first (a: in front, b: at the end), and g with it; two
// 1-D operands: ga = g * b, gb = g * a.
template <class M>
std::pair<Opt<M>, Opt<M>> matmul(M& m, const typename M::V& g, const typename M::V& a, const typename M::V& b,
                                 bool wa, bool wb) {
  using V = typename M::V;
  using BO = BinaryOp;
  std::pair<Opt<M>, Opt<M>> r;
  int64_t ra = m.rank(a), rb = m.rank(b);
  if (ra == 1 && rb == 1) {
    if (wa) r.first = m.fit(m.template binary<BO::Mul>(g, b), a);
    if (wb) r.second = m.fit(m.template binary<BO::Mul>(g, a), b);
    return r;
  }
  V g2 = g;
  if (rb == 1) g2 = m.expandDims(g2, m.rank(g2));
  if (ra == 1) g2 = m.expandDims(g2, m.rank(g2) - 1);
  if (wa) {
    V b2 = rb == 1 ? m.expandDims(b, 1) : b;
    V ga = m.matmul(g2, swap_last(m, b2));
    if (ra == 1) ga = m.squeeze(ga, m.rank(ga) - 2);
    r.first = m.fit(ga, a);
  }
  if (wb) {
    V a2 = ra == 1 ? m.expandDims(a, 0) : a;
    V gb = m.matmul(swap_last(m, a2), g2);
    if (rb == 1) gb = m.squeeze(gb, m.rank(gb) - 1);
    r.second = m.fit(gb, b);
  }
  return r;
}

// Reductions over `axes` (normalized, sorted; all of x's axes for axis=none):
//   sum: bcast(g); mean: bcast(g / count); max/min: bcast(g) shared evenly among the extreme
//   elements of each group (ties split, as TensorFlow's reduce_max, JAX's max and PyTorch's
//   amax do; a group holding NaN: its NaNs, PyTorch's rule), 0 elsewhere; prod: bcast(g)
//   times the product of the group's other elements
//   (zero-safe, below); logsumexp: bcast(g) * exp(x - bcast(out))
// where bcast(v) puts the reduced axes back (unless keepdims) and broadcasts to x's shape.
template <class M>
typename M::V reduce(M& m, ReduceOp op, const typename M::V& g, const typename M::V& x, const typename M::V& out,
                     const std::vector<int64_t>& axes, bool keepdims) {
  using V = typename M::V;
  using BO = BinaryOp;
  if (axes.empty()) return m.fit(g, x);  // nothing reduced: the identity
  auto bcast = [&](V v) {
    if (!keepdims)
      for (int64_t a : axes) v = m.expandDims(v, a);
    return m.broadcastLike(v, x);
  };
  switch (op) {
    case ReduceOp::Sum: return m.fit(bcast(g), x);
    case ReduceOp::Mean: return m.fit(bcast(m.template binary<BO::Div>(g, m.count(x, axes, g))), x);
    case ReduceOp::Max:
    case ReduceOp::Min: {
      V o = bcast(out);
      V at = m.template binary<BO::LogicalOr>(
          m.template binary<BO::Eq>(x, o),
          m.template binary<BO::LogicalAnd>(m.template binary<BO::Ne>(x, x), m.template binary<BO::Ne>(o, o)));
      V zero = m.broadcastLike(m.k(0.0, g), x), one = m.broadcastLike(m.k(1.0, g), x);
      V ties = m.broadcastLike(m.reduceKeep(ReduceOp::Sum, m.select(at, one, zero), axes), x);
      return m.fit(m.select(at, m.template binary<BO::Div>(bcast(g), ties), zero), x);
    }
    case ReduceOp::Prod: {
      // g_i = the product of the group's other elements (TensorFlow's and PyTorch's values;
      // out / x is 0/0 = NaN at a zero). With p the product of the nonzero elements and S
      // the sum of the zero ones (0, but it carries their derivative): no zero: p / x_i; one
      // zero: p there, p / x_i * S elsewhere; two zeros: p * (S - x_i) at each, 0 elsewhere;
      // more: 0. Exact to the second derivative.
      (void)out;
      V zero = m.broadcastLike(m.k(0.0, x), x), one = m.broadcastLike(m.k(1.0, x), x);
      V z = m.template binary<BO::Eq>(x, zero);
      V xnz = m.select(z, one, x);
      V p = m.broadcastLike(m.reduceKeep(ReduceOp::Prod, xnz, axes), x);
      V zs = m.broadcastLike(m.reduceKeep(ReduceOp::Sum, m.select(z, one, zero), axes), x);
      V S = m.broadcastLike(m.reduceKeep(ReduceOp::Sum, m.select(z, x, zero), axes), x);
      V pi = m.template binary<BO::Div>(p, xnz);
      auto count = [&](double c) { return m.template binary<BO::Eq>(zs, m.broadcastLike(m.k(c, x), x)); };
      V two = m.select(z, m.template binary<BO::Mul>(p, m.template binary<BO::Sub>(S, x)), zero);
      V t = m.select(count(0), pi,
                     m.select(count(1), m.select(z, p, m.template binary<BO::Mul>(pi, S)), m.select(count(2), two, zero)));
      return m.fit(m.template binary<BO::Mul>(bcast(g), t), x);
    }
    case ReduceOp::LogSumExp: {
      V e = m.template unary<UnaryOp::Exp>(m.template binary<BO::Sub>(x, bcast(out)));
      return m.fit(m.template binary<BO::Mul>(bcast(g), e), x);
    }
    default: return m.fit(m.k(0.0, g), x);  // all/any/argmax/argmin: no gradient (not recorded)
  }
}

// concat(parts, axis): g_i = g[..., offset_i : offset_i + d_i, ...] along axis.
template <class M>
std::vector<Opt<M>> concat(M& m, const typename M::V& g, const std::vector<typename M::V>& parts,
                           const std::vector<char>& want, int64_t axis) {
  std::vector<Opt<M>> r(parts.size());
  auto off = m.zeroOffset();
  for (size_t i = 0; i < parts.size(); ++i) {
    auto d = m.offsetDim(parts[i], axis);
    if (want[i]) r[i] = m.fit(m.sliceAxis(g, axis, off, d), parts[i]);
    off = m.addOffset(off, d);
  }
  return r;
}

// The running sum (cumsum) or product (cumprod) along `axis` (from the end when reverse):
// cumsum: gx = g's running sum the other way. cumprod: gx_i = sum over k >= i of g_k times
// the product of x_j for j <= k, j != i (in scan order). Before a row's first zero (at z)
// that is the running sum the other way of g * out, divided by x_i; at z, that of g * c with
// c the running product of x with x_z as 1; after z, that of g * c times x_z / x_i (0, but
// it carries x_z's derivative). Exact to the second derivative with one zero in a row.
template <class M>
typename M::V scan(M& m, const typename M::V& g, const typename M::V& x, const typename M::V& out, bool prod,
                   int64_t axis, bool reverse) {
  using BO = BinaryOp;
  using V = typename M::V;
  if (!prod) return m.scan(g, axis, !reverse);
  V zero = m.broadcastLike(m.k(0.0, x), x), one = m.broadcastLike(m.k(1.0, x), x);
  V z = m.template binary<BO::Eq>(x, zero);
  V xnz = m.select(z, one, x);
  V seen = m.scan(m.select(z, one, zero), axis, reverse);  // zeros up to here, in scan order
  V first = m.template binary<BO::BitAnd>(z, m.template binary<BO::Eq>(seen, one));
  V before = m.template binary<BO::Div>(m.scan(m.template binary<BO::Mul>(g, out), axis, !reverse), xnz);
  V skip = m.scan(m.template binary<BO::Mul>(g, m.scan(m.select(first, one, x), axis, reverse, true)), axis, !reverse);
  V xz = m.broadcastLike(m.reduceKeep(ReduceOp::Sum, m.select(first, x, zero), {axis}), x);
  V after = m.template binary<BO::Mul>(m.template binary<BO::Div>(skip, xnz), xz);
  return m.select(m.template binary<BO::Eq>(seen, zero), before, m.select(first, skip, after));
}

// im2col(x, window): gx = col2im(g) over x's positions; col2im(c, size, window): gc = im2col(g)
// (zeros outside). W is the engine's window.
template <class M, class W>
typename M::V im2col(M& m, const typename M::V& g, const typename M::V& x, const W& win) {
  return m.col2im(g, m.dim(x, 1), m.dim(x, 2), win);
}
template <class M, class W>
typename M::V col2im(M& m, const typename M::V& g, const W& win) {
  return m.im2col(g, win);
}

// take(x, idx, axis): gx = index_add(zeros(x.shape), idx, g, axis) (repeated indices add up).
template <class M>
typename M::V take(M& m, const typename M::V& g, const typename M::V& x, const typename M::V& idx, int64_t axis) {
  return m.fit(m.indexAdd(m.zerosLike(x, g), idx, g, axis), x);
}

// index_add(base, idx, src, axis): gbase = g; gsrc = take(g, idx, axis).
template <class M>
std::pair<Opt<M>, Opt<M>> index_add(M& m, const typename M::V& g, const typename M::V& base,
                                    const typename M::V& idx, const typename M::V& src, int64_t axis, bool wbase,
                                    bool wsrc) {
  std::pair<Opt<M>, Opt<M>> r;
  if (wbase) r.first = m.fit(g, base);
  if (wsrc) r.second = m.fit(m.take(g, idx, axis), src);
  return r;
}

// x[spec]: gx = set_index(zeros(x.shape), spec, g).
template <class M, class S>
typename M::V get_index(M& m, const typename M::V& g, const typename M::V& x, const S& spec) {
  return m.fit(m.setIndex(m.zerosLike(x, g), spec, g), x);
}

// x[spec] = v (functional): gx = set_index(g, spec, 0); gv = sum_to(g[spec], v).
template <class M, class S>
std::pair<Opt<M>, Opt<M>> set_index(M& m, const typename M::V& g, const typename M::V& x, const typename M::V& v,
                                    const S& spec, bool wx, bool wv) {
  std::pair<Opt<M>, Opt<M>> r;
  if (wx) r.first = m.fit(m.setIndex(g, spec, m.k(0.0, g)), x);
  if (wv) r.second = m.fit(m.getIndex(g, spec), v);
  return r;
}

}  // namespace tdl::rt::adjoint
