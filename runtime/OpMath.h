// The math and backward rules of the elementwise ops, written once (runtime/ops.def) and
// evaluated by every engine.
//
// A formula in ops.def is a C++ expression over Ex<M>: a value of some engine M with the
// ops as operators and functions (`1 / (1 + exp(-x))`, `g * out * (1 - out)`). Each engine
// supplies an M:
//   - ScalarMath<T> (here): C++ arithmetic on one float element, for the eager kernels;
//   - codegen's ScalarEmitter: LLVM IR, for CPU code and PTX kernels alike;
//   - the eager tape's and the IR autodiff's adjoint builders: tensor ops (recorded on
//     tapes, or IR), for the backward rules.
// An M provides, on its value type V:
//   template <UnaryOp Op> V unary(const V&);  template <BinaryOp Op> V binary(const V&, const V&);
//   V k(double c, const V& like);  (a constant for arithmetic with `like`)
//   V select(const V& c, const V& a, const V& b);  (c: a comparison's result)
// A primitive's math (PRIM) is each target's own; ZERO is "no gradient". Whether an op is
// differentiable (kDiff) is checked against its grad column at compile time.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "Libm.h"
#include "Arith.h"
#include "Elementwise.h"

namespace tdl::rt::opmath {

struct Prim {};  // a primitive's math: each target computes it
struct Zero {};  // no gradient

template <class M>
struct Ex {
  M* m;
  typename M::V v;
};

template <class M>
Ex<M> lift(const Ex<M>& like, double c) {
  return {like.m, like.m->k(c, like.v)};
}

#define TDL_OPMATH_OPERATOR(OP, E)                                                        \
  template <class M>                                                                      \
  Ex<M> operator OP(const Ex<M>& a, const Ex<M>& b) {                                     \
    return {a.m, a.m->template binary<BinaryOp::E>(a.v, b.v)};                            \
  }                                                                                       \
  template <class M>                                                                      \
  Ex<M> operator OP(const Ex<M>& a, double b) {                                           \
    return a OP lift(a, b);                                                               \
  }                                                                                       \
  template <class M>                                                                      \
  Ex<M> operator OP(double a, const Ex<M>& b) {                                           \
    return lift(b, a) OP b;                                                               \
  }
TDL_OPMATH_OPERATOR(+, Add)
TDL_OPMATH_OPERATOR(-, Sub)
TDL_OPMATH_OPERATOR(*, Mul)
TDL_OPMATH_OPERATOR(/, Div)
TDL_OPMATH_OPERATOR(<, Lt)
TDL_OPMATH_OPERATOR(<=, Le)
TDL_OPMATH_OPERATOR(>, Gt)
TDL_OPMATH_OPERATOR(>=, Ge)
TDL_OPMATH_OPERATOR(==, Eq)
#undef TDL_OPMATH_OPERATOR

template <class M>
Ex<M> operator-(const Ex<M>& x) {
  return {x.m, x.m->template unary<UnaryOp::Neg>(x.v)};
}

template <class M>
Ex<M> select(const Ex<M>& c, const Ex<M>& a, const Ex<M>& b) {
  return {c.m, c.m->select(c.v, a.v, b.v)};
}
template <class M>
Ex<M> select(const Ex<M>& c, const Ex<M>& a, double b) {
  return select(c, a, lift(a, b));
}
template <class M>
Ex<M> select(const Ex<M>& c, double a, const Ex<M>& b) {
  return select(c, lift(b, a), b);
}

// Each op by its name: exp(x), pow(a, b), leaky_relu(x, alpha), ...
#define TDL_UNARY_OP(e, n, ...)                   \
  template <class M>                              \
  Ex<M> n(const Ex<M>& x) {                       \
    return {x.m, x.m->template unary<UnaryOp::e>(x.v)}; \
  }
#define TDL_BINARY_OP(e, n, ...)                              \
  template <class M>                                          \
  Ex<M> n(const Ex<M>& a, const Ex<M>& b) {                   \
    return {a.m, a.m->template binary<BinaryOp::e>(a.v, b.v)}; \
  }                                                           \
  template <class M>                                          \
  Ex<M> n(const Ex<M>& a, double b) {                         \
    return n(a, lift(a, b));                                  \
  }
#include "ops.def"

// The rules: math (the formula, or Prim) and grad (the adjoint(s), or Zero).
template <UnaryOp Op>
struct UnaryRule;
template <BinaryOp Op>
struct BinaryRule;

#define PRIM Prim{}
#define ZERO Zero{}
#define TDL_UNARY_OP(e, n, props, d, math_, grad_)                                                     \
  template <>                                                                                          \
  struct UnaryRule<UnaryOp::e> {                                                                       \
    template <class M>                                                                                 \
    static auto math([[maybe_unused]] const Ex<M>& x) {                                                \
      return math_;                                                                                    \
    }                                                                                                  \
    template <class M>                                                                                 \
    static auto grad([[maybe_unused]] const Ex<M>& g, [[maybe_unused]] const Ex<M>& x,                 \
                     [[maybe_unused]] const Ex<M>& out) {                                              \
      return grad_;                                                                                    \
    }                                                                                                  \
  };
#define TDL_BINARY_OP(e, n, params, props, d, math_, ga_, gb_)                                         \
  template <>                                                                                          \
  struct BinaryRule<BinaryOp::e> {                                                                     \
    template <class M>                                                                                 \
    static auto math([[maybe_unused]] const Ex<M>& a, [[maybe_unused]] const Ex<M>& b) {               \
      return math_;                                                                                    \
    }                                                                                                  \
    template <class M>                                                                                 \
    static auto grad_a([[maybe_unused]] const Ex<M>& g, [[maybe_unused]] const Ex<M>& a,               \
                       [[maybe_unused]] const Ex<M>& b, [[maybe_unused]] const Ex<M>& out) {           \
      return ga_;                                                                                      \
    }                                                                                                  \
    template <class M>                                                                                 \
    static auto grad_b([[maybe_unused]] const Ex<M>& g, [[maybe_unused]] const Ex<M>& a,               \
                       [[maybe_unused]] const Ex<M>& b, [[maybe_unused]] const Ex<M>& out) {           \
      return gb_;                                                                                      \
    }                                                                                                  \
  };
#include "ops.def"
#undef PRIM
#undef ZERO

// An engine for type checks only (never evaluated).
struct Probe {
  using V = double;
  template <UnaryOp>
  V unary(const V&);
  template <BinaryOp>
  V binary(const V&, const V&);
  V k(double, const V&);
  V select(const V&, const V&, const V&);
};
using PEx = Ex<Probe>;

template <UnaryOp Op>
constexpr bool is_primitive_v = std::is_same_v<decltype(UnaryRule<Op>::math(std::declval<PEx>())), Prim>;
template <BinaryOp Op>
constexpr bool is_primitive_v2 =
    std::is_same_v<decltype(BinaryRule<Op>::math(std::declval<PEx>(), std::declval<PEx>())), Prim>;
template <UnaryOp Op>
constexpr bool has_grad_v =
    !std::is_same_v<decltype(UnaryRule<Op>::grad(std::declval<PEx>(), std::declval<PEx>(), std::declval<PEx>())),
                    Zero>;
template <BinaryOp Op>
constexpr bool has_grad_a_v = !std::is_same_v<decltype(BinaryRule<Op>::grad_a(std::declval<PEx>(), std::declval<PEx>(),
                                                                                std::declval<PEx>(), std::declval<PEx>())),
                                               Zero>;
template <BinaryOp Op>
constexpr bool has_grad_b_v = !std::is_same_v<decltype(BinaryRule<Op>::grad_b(std::declval<PEx>(), std::declval<PEx>(),
                                                                                std::declval<PEx>(), std::declval<PEx>())),
                                               Zero>;

// kDiff is exactly "has a gradient formula": a differentiable op without a rule does not build.
#define TDL_UNARY_OP(e, n, props, ...)                                      \
  static_assert((((props) & kDiff) != 0) == has_grad_v<UnaryOp::e>,         \
                "ops.def: " #n ": kDiff and the grad column disagree");
#define TDL_BINARY_OP(e, n, params, props, ...)                                                          \
  static_assert((((props) & kDiff) != 0) == (has_grad_a_v<BinaryOp::e> || has_grad_b_v<BinaryOp::e>),    \
                "ops.def: " #n ": kDiff and the grad columns disagree");
#include "ops.def"

constexpr bool is_primitive(UnaryOp op) {
  switch (op) {
#define TDL_UNARY_OP(e, ...) \
  case UnaryOp::e: return is_primitive_v<UnaryOp::e>;
#include "ops.def"
  }
  return true;
}
constexpr bool is_primitive(BinaryOp op) {
  switch (op) {
#define TDL_BINARY_OP(e, ...) \
  case BinaryOp::e: return is_primitive_v2<BinaryOp::e>;
#include "ops.def"
  }
  return true;
}

// The formula of a composite op on engine M (not for primitives).
template <UnaryOp Op, class M>
typename M::V unary_math(M& m, const typename M::V& x) {
  if constexpr (is_primitive_v<Op>) {
    static_assert(!is_primitive_v<Op>, "unary_math of a primitive");
    return x;
  } else {
    return UnaryRule<Op>::math(Ex<M>{&m, x}).v;
  }
}
template <BinaryOp Op, class M>
typename M::V binary_math(M& m, const typename M::V& a, const typename M::V& b) {
  if constexpr (is_primitive_v2<Op>) {
    static_assert(!is_primitive_v2<Op>, "binary_math of a primitive");
    return a;
  } else {
    return BinaryRule<Op>::math(Ex<M>{&m, a}, Ex<M>{&m, b}).v;
  }
}

// The adjoint of a unary op's operand on engine M; nullopt where it has none.
template <class M>
std::optional<typename M::V> unary_grad(M& m, UnaryOp op, const typename M::V& g, const typename M::V& x,
                                        const typename M::V& out) {
  switch (op) {
#define TDL_UNARY_OP(e, ...)                                                                  \
  case UnaryOp::e:                                                                            \
    if constexpr (has_grad_v<UnaryOp::e>)                                                     \
      return UnaryRule<UnaryOp::e>::grad(Ex<M>{&m, g}, Ex<M>{&m, x}, Ex<M>{&m, out}).v;       \
    else                                                                                      \
      return std::nullopt;
#include "ops.def"
  }
  return std::nullopt;
}

// The adjoints of a binary op's operands (before summing to their shapes), each computed
// only where wanted; nullopt where it has none.
template <class M>
std::pair<std::optional<typename M::V>, std::optional<typename M::V>> binary_grad(
    M& m, BinaryOp op, const typename M::V& g, const typename M::V& a, const typename M::V& b,
    const typename M::V& out, bool want_a, bool want_b) {
  std::pair<std::optional<typename M::V>, std::optional<typename M::V>> r;
  Ex<M> G{&m, g}, A{&m, a}, B{&m, b}, O{&m, out};
  switch (op) {
#define TDL_BINARY_OP(e, ...)                                                                   \
  case BinaryOp::e:                                                                             \
    if constexpr (has_grad_a_v<BinaryOp::e>)                                                    \
      if (want_a) r.first = BinaryRule<BinaryOp::e>::grad_a(G, A, B, O).v;                      \
    if constexpr (has_grad_b_v<BinaryOp::e>)                                                    \
      if (want_b) r.second = BinaryRule<BinaryOp::e>::grad_b(G, A, B, O).v;                     \
    break;
#include "ops.def"
  }
  return r;
}

template <auto>
inline constexpr bool always_false = false;

// One float element in C++: the eager kernels' math (Elementwise.cpp). The primitives
// call the C library (std::log(float) is logf), as CPU code does, so both agree bit for
// bit, except f32 exp and tanh, TDL's own in both (Libm.h); composite ops evaluate their
// formula.
template <class T>
struct ScalarMath {
  static_assert(std::is_floating_point_v<T>);
  using V = T;
  V k(double c, const V&) const { return static_cast<T>(c); }
  V select(const V& c, const V& a, const V& b) const { return c != T(0) ? a : b; }

  template <UnaryOp Op>
  V unary(const V& v) {
    using U = UnaryOp;
    if constexpr (Op == U::Neg) return -v;
    else if constexpr (Op == U::Abs) return std::fabs(v);
    else if constexpr (Op == U::Exp) {
      if constexpr (std::is_same_v<T, float>) return exp_f32_host(v);  // TDL's own, as compiled code's (Libm.h)
      else return std::exp(v);
    }
    else if constexpr (Op == U::Expm1) return std::expm1(v);
    else if constexpr (Op == U::Log) return std::log(v);
    else if constexpr (Op == U::Log1p) return std::log1p(v);
    else if constexpr (Op == U::Log2) return std::log2(v);
    else if constexpr (Op == U::Log10) return std::log10(v);
    else if constexpr (Op == U::Sqrt) return std::sqrt(v);
    else if constexpr (Op == U::Sin) return std::sin(v);
    else if constexpr (Op == U::Cos) return std::cos(v);
    else if constexpr (Op == U::Tanh) {
      if constexpr (std::is_same_v<T, float>) return tanh_f32(v);  // TDL's own, as compiled code's (Libm.h)
      else return std::tanh(v);
    }
    else if constexpr (Op == U::Erf) return std::erf(v);
    else if constexpr (Op == U::Relu) return (v > 0 || v != v) ? v : T(0);
    else if constexpr (Op == U::Floor) return std::floor(v);
    else if constexpr (Op == U::Ceil) return std::ceil(v);
    else if constexpr (Op == U::Round) return std::nearbyint(v);
    else if constexpr (Op == U::Sign) return v != v ? v : static_cast<T>((v > 0) - (v < 0));
    else if constexpr (Op == U::Square) return v * v;
    else if constexpr (!is_primitive_v<Op>) return unary_math<Op>(*this, v);
    else static_assert(always_false<Op>, "a float primitive without a C++ kernel (runtime/OpMath.h)");
  }

  template <BinaryOp Op>
  V binary(const V& a, const V& b) {
    using B = BinaryOp;
    if constexpr (Op == B::Add) return a + b;
    else if constexpr (Op == B::Sub) return a - b;
    else if constexpr (Op == B::Mul) return a * b;
    else if constexpr (Op == B::Div) return a / b;
    else if constexpr (Op == B::Maximum) return detail::max_of(a, b);
    else if constexpr (Op == B::Minimum) return detail::min_of(a, b);
    else if constexpr (Op == B::Lt) return T(a < b);
    else if constexpr (Op == B::Le) return T(a <= b);
    else if constexpr (Op == B::Gt) return T(a > b);
    else if constexpr (Op == B::Ge) return T(a >= b);
    else if constexpr (!is_primitive_v2<Op>) return binary_math<Op>(*this, a, b);
    else static_assert(always_false<Op>, "a float primitive without a C++ kernel (runtime/OpMath.h)");
  }
};

}  // namespace tdl::rt::opmath
