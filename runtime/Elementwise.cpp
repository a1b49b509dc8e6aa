// Elementwise kernels. Inner loops are plain indexed loops over contiguous memory (or
// with one operand held in a register) so that g++ -O2/-O3 vectorises them; large
// tensors are split over the thread pool by detail::for_each_row.
#include "Elementwise.h"

#include <cmath>
#include <cstring>
#include <type_traits>

#include <fmt/format.h>

#include "Arith.h"
#include "Convert.h"
#include "Error.h"
#include "Kernels.h"
#include "Libm.h"
#include "Loop.h"
#include "OpMath.h"
#include "ThreadPool.h"

namespace tdl::rt {

std::string_view op_name(BinaryOp op) {
  switch (op) {
#define TDL_BINARY_OP(e, n, ...) \
  case BinaryOp::e: return #n;
#include "ops.def"
  }
  return "?";
}

std::string_view op_name(UnaryOp op) {
  switch (op) {
#define TDL_UNARY_OP(e, n, ...) \
  case UnaryOp::e: return #n;
#include "ops.def"
  }
  return "?";
}

std::optional<UnaryOp> unary_by_name(std::string_view name) {
#define TDL_UNARY_OP(e, n, ...) \
  if (name == #n) return UnaryOp::e;
#include "ops.def"
  return std::nullopt;
}

std::optional<BinaryOp> binary_by_name(std::string_view name) {
#define TDL_BINARY_OP(e, n, ...) \
  if (name == #n) return BinaryOp::e;
#include "ops.def"
  return std::nullopt;
}

BinaryParams binary_params(BinaryOp op) {
  std::string s = builtin_params(op);
  auto trim = [](std::string t) {
    while (!t.empty() && t.front() == ' ') t.erase(t.begin());
    while (!t.empty() && t.back() == ' ') t.pop_back();
    return t;
  };
  size_t comma = s.find(',');
  BinaryParams p;
  p.a = trim(s.substr(0, comma));
  std::string second = comma == std::string::npos ? "b" : trim(s.substr(comma + 1));
  size_t eq = second.find('=');
  p.b = trim(second.substr(0, eq));
  if (eq != std::string::npos) p.b_default = std::stod(second.substr(eq + 1));
  return p;
}

namespace {

// ---- dtype rules (the props column of ops.def) ---------------------------------------

bool is_comparison(BinaryOp op) { return (props(op) & kPred) != 0 && (props(op) & kLogical) == 0; }

}  // namespace

DType binary_compute_dtype(BinaryOp op, DType a, DType b) {
  DType c = promote(a, b);
  uint32_t p = props(op);
  if (p & kFloat) return is_float(c) ? c : DType::F32;
  if (p & kLogical) return DType::Bool;
  if ((p & kBits) && is_float(c))
    throw Error(fmt::format("'{}' needs bool or integer operands, got {} and {}", op_name(op), dtype_name(a),
                            dtype_name(b)));
  if (p & kBoolI64) return c == DType::Bool ? DType::I64 : c;
  return c;
}

DType unary_compute_dtype(UnaryOp op, DType x) {
  uint32_t p = props(op);
  if (p & kFloat) return is_float(x) ? x : DType::F32;
  if (p & kLogical) return DType::Bool;
  if ((p & kBits) && is_float(x)) throw Error(fmt::format("'~' needs a bool or integer operand, got {}", dtype_name(x)));
  if (p & kBoolI64) return x == DType::Bool ? DType::I64 : x;
  return x;
}

namespace {

// ---- scalar semantics ---------------------------------------------------------------

using detail::floordiv_of;
using detail::max_of;
using detail::mod_of;
using detail::min_of;
using detail::wrap_add;
using detail::wrap_mul;
using detail::wrap_neg;
using detail::wrap_sub;

template <class T> inline T pow_of(T a, T b) {
  if constexpr (std::is_integral_v<T>) {  // b >= 0 was checked
    T r = 1;
    while (b > 0) {
      if (b & 1) r = wrap_mul(r, a);
      a = wrap_mul(a, a);
      b >>= 1;
    }
    return r;
  } else {
    if (b == T(2)) return a * a;  // x ** 2 is x * x, correctly rounded (NumPy squares too)
    return std::pow(a, b);
  }
}
// ---- loops ------------------------------------------------------------------------

// out[i] = f(a[i*sa], b[i*sb]) with sa, sb in {0, 1}; one loop per case so each one
// vectorises.
template <class T, class R, class F>
inline void binary_inner(const T* a, int64_t sa, const T* b, int64_t sb, R* out, int64_t n, F f) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
  } else if (sa == 0 && sb == 1) {
    const T x = a[0];
    for (int64_t i = 0; i < n; ++i) out[i] = f(x, b[i]);
  } else if (sa == 1 && sb == 0) {
    const T y = b[0];
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], y);
  } else {
    const R v = f(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) out[i] = v;
  }
}

template <class T, class R, class F>
void binary_loop(const detail::LoopPlan& p, const T* a, const T* b, R* out, F f) {
  const int last = p.rank - 1;
  const int64_t sa = p.strides[1][last], sb = p.strides[2][last];
  if (p.rank >= 2 && p.inner() < 16) {
    // Short rows (k-means' [N, K, 2] differences): one call covers a run of rows along the
    // next axis, so the per-row bookkeeping (offsets, the odometer) is paid once per run.
    detail::LoopPlan q = p;
    q.rank = p.rank - 1;
    const int64_t n = p.inner();
    const int64_t to = p.strides[0][last - 1], ta = p.strides[1][last - 1], tb = p.strides[2][last - 1];
    detail::for_each_row(q, [&](const int64_t* offs, int64_t beg, int64_t end) {
      for (int64_t j = beg; j < end; ++j) {
        const T* aj = a + offs[1] + j * ta;
        const T* bj = b + offs[2] + j * tb;
        R* oj = out + offs[0] + j * to;
        for (int64_t i = 0; i < n; ++i) oj[i] = f(aj[i * sa], bj[i * sb]);  // strides 0 or 1
      }
    });
    return;
  }
  detail::for_each_row(p, [&](const int64_t* offs, int64_t beg, int64_t end) {
    binary_inner(a + offs[1] + beg * sa, sa, b + offs[2] + beg * sb, sb, out + offs[0] + beg,
                 end - beg, f);
  });
}

// An op without a kernel for a dtype (the dtype rules never ask for one): one function
// for all of them, so each kernel does not carry its own formatting of the message.
[[noreturn, gnu::noinline]] void no_kernel(std::string_view op, DType dt) {
  throw InternalError(fmt::format("elementwise op '{}' has no kernel for {}", op, dtype_name(dt)));
}

// One op's loops for one dtype (op is a constant: each kernel holds only its own loops).
template <BinaryOp op, class T>
void binary_typed(const detail::LoopPlan& p, const T* a, const T* b, void* out) {
  T* o = static_cast<T*>(out);
  bool* ob = static_cast<bool*>(out);
  constexpr bool kInt = std::is_integral_v<T> && !std::is_same_v<T, bool>;
  constexpr bool kIsFloat = std::is_floating_point_v<T>;
  constexpr bool kBool = std::is_same_v<T, bool>;
  switch (op) {
    case BinaryOp::Eq: return binary_loop(p, a, b, ob, [](T x, T y) { return x == y; });
    case BinaryOp::Ne: return binary_loop(p, a, b, ob, [](T x, T y) { return x != y; });
    case BinaryOp::Lt: return binary_loop(p, a, b, ob, [](T x, T y) { return x < y; });
    case BinaryOp::Le: return binary_loop(p, a, b, ob, [](T x, T y) { return x <= y; });
    case BinaryOp::Gt: return binary_loop(p, a, b, ob, [](T x, T y) { return x > y; });
    case BinaryOp::Ge: return binary_loop(p, a, b, ob, [](T x, T y) { return x >= y; });
    case BinaryOp::Maximum: return binary_loop(p, a, b, o, [](T x, T y) { return max_of(x, y); });
    case BinaryOp::Minimum: return binary_loop(p, a, b, o, [](T x, T y) { return min_of(x, y); });
    default: break;
  }
  if constexpr (kBool) {
    switch (op) {
      case BinaryOp::BitAnd:
      case BinaryOp::LogicalAnd: return binary_loop(p, a, b, o, [](T x, T y) -> T { return x & y; });
      case BinaryOp::BitOr:
      case BinaryOp::LogicalOr: return binary_loop(p, a, b, o, [](T x, T y) -> T { return x | y; });
      case BinaryOp::BitXor: return binary_loop(p, a, b, o, [](T x, T y) -> T { return x != y; });
      default: break;
    }
  } else {
    switch (op) {
      case BinaryOp::Add: return binary_loop(p, a, b, o, [](T x, T y) { return wrap_add(x, y); });
      case BinaryOp::Sub: return binary_loop(p, a, b, o, [](T x, T y) { return wrap_sub(x, y); });
      case BinaryOp::Mul: return binary_loop(p, a, b, o, [](T x, T y) { return wrap_mul(x, y); });
      case BinaryOp::FloorDiv: return binary_loop(p, a, b, o, [](T x, T y) { return floordiv_of(x, y); });
      case BinaryOp::Mod: return binary_loop(p, a, b, o, [](T x, T y) { return mod_of(x, y); });
      case BinaryOp::Pow: return binary_loop(p, a, b, o, [](T x, T y) { return pow_of(x, y); });
      default: break;
    }
    if constexpr (kIsFloat) {
      if (op == BinaryOp::Div) return binary_loop(p, a, b, o, [](T x, T y) { return x / y; });
      switch (op) {
        // The composite ops: their formula in ops.def.
#define TDL_BINARY_OP(e, ...)                                                                       \
  case BinaryOp::e:                                                                                 \
    if constexpr (!opmath::is_primitive_v2<BinaryOp::e>)                                            \
      return binary_loop(p, a, b, o, [](T x, T y) { return opmath::ScalarMath<T>{}.template binary<BinaryOp::e>(x, y); }); \
    break;
#include "ops.def"
      }
    }
    if constexpr (kInt) {
      switch (op) {
        case BinaryOp::BitAnd: return binary_loop(p, a, b, o, [](T x, T y) -> T { return x & y; });
        case BinaryOp::BitOr: return binary_loop(p, a, b, o, [](T x, T y) -> T { return x | y; });
        case BinaryOp::BitXor: return binary_loop(p, a, b, o, [](T x, T y) -> T { return x ^ y; });
        default: break;
      }
    }
  }
  no_kernel(op_name(op), dtype_of<T>());
}

template <class T>
bool contains(const Tensor& t, T v) {
  const T* p = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (p[i] == v) return true;
  return false;
}

template <class T>
bool contains_negative(const Tensor& t) {
  const T* p = t.data<T>();
  if constexpr (std::is_signed_v<T>) {
    for (int64_t i = 0; i < t.numel(); ++i)
      if (p[i] < 0) return true;
  }
  return false;
}

// Runs fn(i) for i in [0, n), in parallel chunks when n is large.
template <class F>
void flat_loop(int64_t n, F&& fn) {
  parallel_for(n, kParallelThreshold / 2, [&](int64_t b, int64_t e) { fn(b, e); });
}

template <UnaryOp op, class T>
void unary_typed(const T* x, void* out, int64_t n) {
  T* o = static_cast<T*>(out);
  bool* ob = static_cast<bool*>(out);
  auto map = [&](auto* dst, auto f) {
    flat_loop(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dst[i] = f(x[i]);
    });
  };
  if constexpr (op == UnaryOp::Tanh && std::is_same_v<T, float>) {  // vectorized (Libm.h)
    return flat_loop(n, [&](int64_t b, int64_t e) { tanh_f32_loop(x + b, o + b, e - b); });
  }
  if constexpr (op == UnaryOp::Exp && std::is_same_v<T, float>) {  // vectorized (Libm.h)
    return flat_loop(n, [&](int64_t b, int64_t e) { exp_f32_loop(x + b, o + b, e - b); });
  }
  if (op == UnaryOp::IsNan) {
    if constexpr (std::is_floating_point_v<T>) return map(ob, [](T v) { return v != v; });
    else return map(ob, [](T) { return false; });
  }
  if (op == UnaryOp::IsFinite) {
    if constexpr (std::is_floating_point_v<T>) return map(ob, [](T v) { return std::isfinite(v); });
    else return map(ob, [](T) { return true; });
  }
  if constexpr (std::is_same_v<T, bool>) {
    switch (op) {
      case UnaryOp::BitNot:
      case UnaryOp::LogicalNot: return map(o, [](T v) -> T { return !v; });
      case UnaryOp::Abs:
      case UnaryOp::Relu:
      case UnaryOp::Floor:
      case UnaryOp::Ceil:
      case UnaryOp::Round: return map(o, [](T v) { return v; });
      default: break;
    }
  } else if constexpr (std::is_integral_v<T>) {
    switch (op) {
      case UnaryOp::Neg: return map(o, [](T v) { return wrap_neg(v); });
      case UnaryOp::BitNot: return map(o, [](T v) -> T { return ~v; });
      case UnaryOp::Abs: return map(o, [](T v) { return v < 0 ? wrap_neg(v) : v; });
      case UnaryOp::Relu: return map(o, [](T v) { return v > 0 ? v : T(0); });
      case UnaryOp::Floor:
      case UnaryOp::Ceil:
      case UnaryOp::Round: return map(o, [](T v) { return v; });
      case UnaryOp::Sign: return map(o, [](T v) { return static_cast<T>((v > 0) - (v < 0)); });
      case UnaryOp::Square: return map(o, [](T v) { return wrap_mul(v, v); });
      default: break;
    }
  } else {
    // Every float op through its one C++ definition (OpMath.h: a primitive's C library
    // call, or the op's formula in ops.def).
    switch (op) {
#define TDL_UNARY_OP(e, n, p, ...)                                                                  \
  case UnaryOp::e:                                                                                  \
    if constexpr (((p) & (kPred | kBits | kLogical)) == 0)                                          \
      return map(o, [](T v) { return opmath::ScalarMath<T>{}.template unary<UnaryOp::e>(v); });     \
    break;
#include "ops.def"
    }
  }
  no_kernel(op_name(op), dtype_of<T>());
}

template <class To, class From>
void cast_loop(const From* src, To* dst, int64_t n) {
  flat_loop(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dst[i] = convert<To>(src[i]);
  });
}

}  // namespace

// The kernels, one function per op over every dtype, called through the kernel tables
// (Kernels.h): a minimal runtime's tables name only those its models use, and the linker
// drops the rest (docs/edge.md).
extern "C" {
#define TDL_BINARY_OP(e, n, ...)                                                                   \
  void tdlk_binary_##e(int32_t ct, const void* plan, const void* a, const void* b, void* o) { \
    dispatch(static_cast<DType>(ct), [&](auto tag) {                                              \
      using T = decltype(tag);                                                                    \
      binary_typed<BinaryOp::e, T>(*static_cast<const detail::LoopPlan*>(plan), static_cast<const T*>(a), \
                                   static_cast<const T*>(b), o);                                  \
    });                                                                                           \
  }
#define TDL_UNARY_OP(e, n, ...)                                                          \
  void tdlk_unary_##e(int32_t ct, const void* x, void* o, int64_t count) {          \
    dispatch(static_cast<DType>(ct), [&](auto tag) {                                    \
      using T = decltype(tag);                                                          \
      unary_typed<UnaryOp::e, T>(static_cast<const T*>(x), o, count);                   \
    });                                                                                 \
  }
#include "ops.def"
}

std::string missing_kernel_message(std::string_view what) {
  return fmt::format("{} is not in this runtime: it is a minimal runtime made by `tdl runtime` for {}; make one "
                     "for this model too (docs/edge.md)",
                     what, tdlk_kernels_for);
}

bool full_kernel_tables() { return tdlk_kernels_for[0] == '\0'; }

namespace {
BinaryKernel binary_kernel(BinaryOp op) {
  tdlk_fn f = tdlk_binary_kernels[static_cast<size_t>(op)];
  if (!f) throw Error(missing_kernel_message(fmt::format("op '{}'", op_name(op))));
  return reinterpret_cast<BinaryKernel>(f);
}
UnaryKernel unary_kernel(UnaryOp op) {
  tdlk_fn f = tdlk_unary_kernels[static_cast<size_t>(op)];
  if (!f) throw Error(missing_kernel_message(fmt::format("op '{}'", op_name(op))));
  return reinterpret_cast<UnaryKernel>(f);
}
}  // namespace

DType binary_result_dtype(BinaryOp op, DType a, DType b) {
  DType c = binary_compute_dtype(op, a, b);
  return is_comparison(op) ? DType::Bool : c;
}

DType unary_result_dtype(UnaryOp op, DType x) {
  DType c = unary_compute_dtype(op, x);
  return (props(op) & kPred) ? DType::Bool : c;
}

Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = Tensor::empty(dtype, x.shape());
  dispatch(x.dtype(), [&](auto from_tag) {
    using From = decltype(from_tag);
    dispatch(dtype, [&](auto to_tag) {
      using To = decltype(to_tag);
      cast_loop<To, From>(x.data<From>(), out.mutable_data<To>(), x.numel());
    });
  });
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a_in, const Tensor& b_in) { return binary(op, a_in, b_in, nullptr); }

Tensor binary(BinaryOp op, const Tensor& a_in, const Tensor& b_in, Tensor* reuse) {
  DType ct = binary_compute_dtype(op, a_in.dtype(), b_in.dtype());
  DType rt = is_comparison(op) ? DType::Bool : ct;
  Shape shape = broadcast_shapes(a_in.shape(), b_in.shape());
  // Decided before the casts below take their own references to the buffers.
  bool inPlace = reuse && reuse->is_unique() && reuse->dtype() == rt && reuse->shape() == shape;
  Tensor a = cast(a_in, ct), b = cast(b_in, ct);
  if ((op == BinaryOp::FloorDiv || op == BinaryOp::Mod) && is_integer(ct)) {
    bool zero = dispatch(ct, [&](auto tag) { return contains<decltype(tag)>(b, 0); });
    if (zero) throw Error("division by zero");
  }
  if (op == BinaryOp::Pow && is_integer(ct)) {
    bool neg = dispatch(ct, [&](auto tag) { return contains_negative<decltype(tag)>(b); });
    if (neg) throw Error("integers cannot be raised to negative integer powers");
  }
  Tensor out = inPlace ? *reuse : Tensor::empty(rt, shape);
  if (out.numel() == 0) return out;
  detail::LoopPlan plan = detail::make_loop_plan(shape, {&shape, &a.shape(), &b.shape()});
  // In place: the buffer is shared with `a`/`b` and `reuse` now, but by
  // nothing outside this call, so it is written without a copy.
  void* o = inPlace ? const_cast<void*>(out.raw()) : out.mutable_raw();
  binary_kernel(op)(static_cast<int32_t>(ct), &plan, a.raw(), b.raw(), o);
  return out;
}

Tensor unary(UnaryOp op, const Tensor& x_in) {
  DType ct = unary_compute_dtype(op, x_in.dtype());
  DType rt = unary_result_dtype(op, x_in.dtype());
  Tensor x = cast(x_in, ct);
  if (rt == ct && (op == UnaryOp::Floor || op == UnaryOp::Ceil || op == UnaryOp::Round) && !is_float(ct))
    return x;
  Tensor out = Tensor::empty(rt, x.shape());
  void* o = out.mutable_raw();
  unary_kernel(op)(static_cast<int32_t>(ct), x.raw(), o, x.numel());
  return out;
}

namespace {
template <class T>
void where_loop(const detail::LoopPlan& p, const bool* c, const T* a, const T* b, T* out) {
  const int last = p.rank - 1;
  const int64_t sc = p.strides[1][last], sa = p.strides[2][last], sb = p.strides[3][last];
  detail::for_each_row(p, [&](const int64_t* offs, int64_t beg, int64_t end) {
    const bool* cc = c + offs[1] + beg * sc;
    const T* aa = a + offs[2] + beg * sa;
    const T* bb = b + offs[3] + beg * sb;
    T* oo = out + offs[0] + beg;
    int64_t n = end - beg;
    if (sc == 1 && sa == 1 && sb == 1) {
      for (int64_t i = 0; i < n; ++i) oo[i] = cc[i] ? aa[i] : bb[i];
    } else {
      for (int64_t i = 0; i < n; ++i) oo[i] = cc[i * sc] ? aa[i * sa] : bb[i * sb];
    }
  });
}
}  // namespace

Tensor where(const Tensor& c_in, const Tensor& a_in, const Tensor& b_in) {
  DType ct = promote(a_in.dtype(), b_in.dtype());
  Shape shape = broadcast_shapes(broadcast_shapes(c_in.shape(), a_in.shape()), b_in.shape());
  Tensor c = cast(c_in, DType::Bool), a = cast(a_in, ct), b = cast(b_in, ct);
  Tensor out = Tensor::empty(ct, shape);
  if (out.numel() == 0) return out;
  detail::LoopPlan plan = detail::make_loop_plan(shape, {&shape, &c.shape(), &a.shape(), &b.shape()});
  dispatch(ct, [&](auto tag) {
    using T = decltype(tag);
    where_loop<T>(plan, c.data<bool>(), a.data<T>(), b.data<T>(), out.mutable_data<T>());
  });
  return out;
}

Tensor clip(const Tensor& x, const Tensor& lo, const Tensor& hi) {
  return minimum(maximum(x, lo), hi);
}

}  // namespace tdl::rt
