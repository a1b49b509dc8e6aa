// Reductions. The input is viewed as [O, R, I] (outer kept dims, reduced dims, inner kept
// dims); when the reduced axes are not adjacent the kept axes are first moved to the
// front by a transpose, giving [O, R, 1]. Rows (I == 1) reduce contiguous memory; columns
// (I > 1) accumulate R rows into I accumulators, which vectorises across I.
#include "Reduce.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "Arith.h"
#include "Create.h"
#include "Elementwise.h"
#include "Error.h"
#include "ShapeOps.h"
#include "Simd.h"
#include "ThreadPool.h"

namespace tdl::rt {

std::string_view reduce_op_name(ReduceOp op) {
  static constexpr std::string_view names[] = {"sum", "mean", "max", "min", "prod",
                                               "all", "any", "argmax", "argmin", "logsumexp"};
  return names[static_cast<int>(op)];
}

DType reduce_result_dtype(ReduceOp op, DType x) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Prod: return is_float(x) ? x : DType::I64;
    case ReduceOp::Mean:
    case ReduceOp::LogSumExp: return is_float(x) ? x : DType::F32;
    case ReduceOp::Max:
    case ReduceOp::Min: return x;
    case ReduceOp::All:
    case ReduceOp::Any: return DType::Bool;
    case ReduceOp::ArgMax:
    case ReduceOp::ArgMin: return DType::I64;
  }
  return x;
}

namespace {

struct Layout {
  int64_t outer = 1, red = 1, inner = 1;
};

// Pairwise summation as NumPy does it: blocks of 128 with 8 accumulators.
template <class T>
T pairwise_sum(const T* p, int64_t n) {
  if (n < 8) {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += p[i];
    return s;
  }
  if (n <= 128) {
    T r[8];
    for (int j = 0; j < 8; ++j) r[j] = p[j];
    int64_t i = 8;
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; ++j) r[j] += p[i + j];
    T s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) s += p[i];
    return s;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(p, n2) + pairwise_sum(p + n2, n - n2);
}

// Accumulation policies: Acc is the accumulator type, Out the result element type.
template <class T>
struct SumPolicy {
  using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
  static Acc init() { return Acc(0); }
  static Acc row(const T* p, int64_t n) {
    if constexpr (std::is_floating_point_v<T>) {
      return static_cast<Acc>(pairwise_sum(p, n));
    } else {
      std::make_unsigned_t<T> s = 0;
      for (int64_t i = 0; i < n; ++i) s += static_cast<std::make_unsigned_t<T>>(p[i]);
      return static_cast<T>(s);
    }
  }
  static Acc step(Acc a, T x) { return detail::wrap_add<Acc>(a, static_cast<Acc>(x)); }
  static Acc combine(Acc a, Acc b) { return detail::wrap_add(a, b); }
};

template <class T>
struct ProdPolicy {
  using Acc = T;
  static Acc init() { return T(1); }
  static Acc row(const T* p, int64_t n) {
    Acc a = init();
    for (int64_t i = 0; i < n; ++i) a = detail::wrap_mul(a, p[i]);
    return a;
  }
  static Acc step(Acc a, T x) { return detail::wrap_mul(a, x); }
  static Acc combine(Acc a, Acc b) { return detail::wrap_mul(a, b); }
};

// A max/min row in 8 independent lanes that the compiler vectorizes (`x > a ? x : a` is
// the SSE/AVX max instruction exactly); NaNs are tracked on the side and win, like
// detail::max_of/min_of. Only the sign of a zero result may depend on the order (SPEC §11
// allows reassociation of reductions).
template <class T, bool kMax>
T lanes_row(const T* p, int64_t n, T init) {
  constexpr int64_t kLanes = 8;
  T acc[kLanes];
  T bad[kLanes];  // 0 or 1: a NaN was seen in this lane
  for (int64_t k = 0; k < kLanes; ++k) acc[k] = init, bad[k] = T(0);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t k = 0; k < kLanes; ++k) {
      T x = p[i + k];
      acc[k] = (kMax ? x > acc[k] : x < acc[k]) ? x : acc[k];
      bad[k] = (x != x) ? T(1) : bad[k];
    }
  T a = init;
  bool nan = false;
  for (int64_t k = 0; k < kLanes; ++k) {
    a = (kMax ? acc[k] > a : acc[k] < a) ? acc[k] : a;
    nan = nan || bad[k] != T(0);
  }
  for (; i < n; ++i) {
    a = (kMax ? p[i] > a : p[i] < a) ? p[i] : a;
    nan = nan || p[i] != p[i];
  }
  if constexpr (std::is_floating_point_v<T>)
    if (nan) return std::numeric_limits<T>::quiet_NaN();
  return a;
}

// GCC's vector types of 32 bytes (the compiler lowers them to what the target has: one AVX
// register, two SSE ones, two NEON ones) for the float row kernels below, with the integer
// vector of the same width for comparison masks and element indices.
template <class T>
struct Vec32;
template <>
struct Vec32<float> {
  typedef float V __attribute__((vector_size(32)));
  typedef int32_t I __attribute__((vector_size(32)));
};
template <>
struct Vec32<double> {
  typedef double V __attribute__((vector_size(32)));
  typedef int64_t I __attribute__((vector_size(32)));
};

// Loads vector v from p (any alignment). A macro, not a function returning V: GCC warns that
// returning a 32-byte vector by value changes the ABI where the baseline build lacks AVX.
#define TDL_LOAD_VEC(v, p) std::memcpy(&(v), (p), sizeof(v))

// The max (kMax) or min of a float row of n values, NaN if any is NaN: four vector
// accumulators (independent chains), `x > a ? x : a` per lane (the max instruction exactly),
// NaNs or-ed into a mask on the side. Only the sign of a zero result may depend on the order
// (SPEC §11 allows reassociation of reductions).
// Compiled for each x86 ISA (float and double only).
template <class T, bool kMax>
TDL_SIMD_CLONES T extreme_row_vec(const T* p, int64_t n) {
  using V = typename Vec32<T>::V;
  using I = typename Vec32<T>::I;
  constexpr int64_t L = sizeof(V) / sizeof(T);
  const T init = kMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  V a0 = V{} + init, a1 = a0, a2 = a0, a3 = a0;
  I bad = I{};
  int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    V x0, x1, x2, x3;
    TDL_LOAD_VEC(x0, p + i);
    TDL_LOAD_VEC(x1, p + i + L);
    TDL_LOAD_VEC(x2, p + i + 2 * L);
    TDL_LOAD_VEC(x3, p + i + 3 * L);
    a0 = (kMax ? x0 > a0 : x0 < a0) ? x0 : a0;
    a1 = (kMax ? x1 > a1 : x1 < a1) ? x1 : a1;
    a2 = (kMax ? x2 > a2 : x2 < a2) ? x2 : a2;
    a3 = (kMax ? x3 > a3 : x3 < a3) ? x3 : a3;
    bad |= (x0 != x0) | (x1 != x1) | (x2 != x2) | (x3 != x3);
  }
  a0 = (kMax ? a1 > a0 : a1 < a0) ? a1 : a0;
  a2 = (kMax ? a3 > a2 : a3 < a2) ? a3 : a2;
  a0 = (kMax ? a2 > a0 : a2 < a0) ? a2 : a0;
  T a = init;
  bool nan = false;
  for (int64_t k = 0; k < L; ++k) {
    a = (kMax ? a0[k] > a : a0[k] < a) ? a0[k] : a;
    nan = nan || bad[k] != 0;
  }
  for (; i < n; ++i) {
    a = (kMax ? p[i] > a : p[i] < a) ? p[i] : a;
    nan = nan || p[i] != p[i];
  }
  return nan ? std::numeric_limits<T>::quiet_NaN() : a;
}

template <class T, bool kMax>
T extreme_row(const T* p, int64_t n, T init) {
  if constexpr (std::is_floating_point_v<T>) return extreme_row_vec<T, kMax>(p, n);
  else return lanes_row<T, kMax>(p, n, init);
}

// The index of the first max (kMax) or min of a float row of n >= 1 values, or of its first
// NaN (NumPy's rules), in one pass: per lane of two vector accumulators the running extreme
// and the index of its first occurrence (a lane takes a later value only when it is strictly
// better, or the first NaN), then the best lane, ties to the lowest index. Indices are
// counted in the float's width (n < 2^31 for f32). Compiled for each x86 ISA.
template <class T, bool kMax>
TDL_SIMD_CLONES int64_t arg_row_vec(const T* p, int64_t n) {
  using V = typename Vec32<T>::V;
  using I = typename Vec32<T>::I;
  using IE = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  constexpr int64_t L = sizeof(V) / sizeof(T);
  int64_t i = 0;
  T b = p[0];
  int64_t bi = 0;
  if (n >= 2 * L) {
    V b0, b1;
    TDL_LOAD_VEC(b0, p);
    TDL_LOAD_VEC(b1, p + L);
    IE first[2 * L];
    for (int64_t k = 0; k < 2 * L; ++k) first[k] = static_cast<IE>(k);
    I i0, i1;
    TDL_LOAD_VEC(i0, first);
    TDL_LOAD_VEC(i1, first + L);
    I c0 = i0, c1 = i1;
    for (i = 2 * L; i + 2 * L <= n; i += 2 * L) {
      V x0, x1;
      TDL_LOAD_VEC(x0, p + i);
      TDL_LOAD_VEC(x1, p + i + L);
      c0 += static_cast<IE>(2 * L);
      c1 += static_cast<IE>(2 * L);
      I t0 = (kMax ? x0 > b0 : x0 < b0) | ((x0 != x0) & (b0 == b0));
      I t1 = (kMax ? x1 > b1 : x1 < b1) | ((x1 != x1) & (b1 == b1));
      b0 = t0 ? x0 : b0;
      i0 = t0 ? c0 : i0;
      b1 = t1 ? x1 : b1;
      i1 = t1 ? c1 : i1;
    }
    b = b0[0];
    bi = i0[0];
    auto better = [&](T v, int64_t j) {
      const bool vn = v != v, bn = b != b;
      if (vn || bn) return vn && (!bn || j < bi);
      return (kMax ? v > b : v < b) || (v == b && j < bi);
    };
    for (int64_t k = 0; k < L; ++k) {
      if (k > 0 && better(b0[k], i0[k])) b = b0[k], bi = i0[k];
      if (better(b1[k], i1[k])) b = b1[k], bi = i1[k];
    }
  } else {
    i = 1;
  }
  // The tail: later indices, so only a strictly better value (or a first NaN) replaces.
  for (; i < n && b == b; ++i) {
    const T v = p[i];
    if (v != v || (kMax ? v > b : v < b)) b = v, bi = i;
  }
  return bi;
}

#undef TDL_LOAD_VEC

template <class T>
struct MaxPolicy {
  using Acc = T;
  static Acc init() {
    if constexpr (std::is_floating_point_v<T>) return -std::numeric_limits<T>::infinity();
    else return std::numeric_limits<T>::lowest();
  }
  static Acc row(const T* p, int64_t n) { return extreme_row<T, true>(p, n, init()); }
  static Acc step(Acc a, T x) { return detail::max_of(x, a); }
  static Acc combine(Acc a, Acc b) { return detail::max_of(a, b); }
};

template <class T>
struct MinPolicy {
  using Acc = T;
  static Acc init() {
    if constexpr (std::is_floating_point_v<T>) return std::numeric_limits<T>::infinity();
    else return std::numeric_limits<T>::max();
  }
  static Acc row(const T* p, int64_t n) { return extreme_row<T, false>(p, n, init()); }
  static Acc step(Acc a, T x) { return detail::min_of(x, a); }
  static Acc combine(Acc a, Acc b) { return detail::min_of(a, b); }
};

// acc[i] = P::step(acc[i], row[i]) for i < n: one row of a column reduction, compiled for
// each x86 ISA for floats (the baseline's SSE2 has half the lanes).
template <class P, class T, class Acc>
TDL_SIMD_CLONES void column_step(Acc* __restrict acc, const T* __restrict row, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] = P::step(acc[i], row[i]);
}

// Reduces x viewed as [O, R, I] into out [O, I] with policy P.
template <class T, class P, class Out>
void reduce_kernel(const T* x, Out* out, const Layout& L) {
  using Acc = typename P::Acc;
  const int64_t O = L.outer, R = L.red, I = L.inner;
  const int64_t grain = kParallelThreshold / 2;
  if (I == 1) {
    if (O == 1 && R >= 2 * grain) {
      // One long row: partial results per chunk, combined in order.
      int64_t chunks = std::min<int64_t>(num_threads() * 4, R / grain);
      int64_t len = (R + chunks - 1) / chunks;
      std::unique_ptr<Acc[]> part(new Acc[chunks]);
      for (int64_t c = 0; c < chunks; ++c) part[c] = P::init();
      parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
        for (int64_t c = b; c < e; ++c) {
          int64_t s = c * len, n = std::min(R, s + len) - s;
          if (n > 0) part[c] = P::row(x + s, n);
        }
      });
      Acc a = part[0];
      for (int64_t c = 1; c < chunks; ++c) a = P::combine(a, part[c]);
      out[0] = static_cast<Out>(a);
      return;
    }
    parallel_for(O, std::max<int64_t>(1, grain / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) out[o] = static_cast<Out>(P::row(x + o * R, R));
    });
    return;
  }
  // Rows o in [ob, oe), columns [ib, ie): one accumulator buffer per call (a chunk of the
  // parallel loop), on the stack when it is small.
  auto columns = [&](int64_t ob, int64_t oe, int64_t ib, int64_t ie) {
    const int64_t n = ie - ib;
    constexpr int64_t kStack = 256;
    Acc stackAcc[kStack];
    std::unique_ptr<Acc[]> heap;
    Acc* a = stackAcc;
    if (!std::is_same_v<Acc, Out> && n > kStack) {
      heap.reset(new Acc[n]);
      a = heap.get();
    }
    for (int64_t o = ob; o < oe; ++o) {
      // Accumulated in the result itself when it has the accumulator's type.
      Acc* acc = a;
      if constexpr (std::is_same_v<Acc, Out>) acc = out + o * I + ib;
      for (int64_t i = 0; i < n; ++i) acc[i] = P::init();
      for (int64_t r = 0; r < R; ++r) {
        const T* row = x + (o * R + r) * I + ib;
        if constexpr (std::is_floating_point_v<T>) column_step<P, T, Acc>(acc, row, n);
        else
          for (int64_t i = 0; i < n; ++i) acc[i] = P::step(acc[i], row[i]);
      }
      if constexpr (!std::is_same_v<Acc, Out>)
        for (int64_t i = 0; i < n; ++i) out[o * I + ib + i] = static_cast<Out>(acc[i]);
    }
  };
  if (O == 1) {
    parallel_for(I, std::max<int64_t>(16, grain / std::max<int64_t>(R, 1)),
                 [&](int64_t b, int64_t e) { columns(0, 1, b, e); });
  } else {
    parallel_for(O, std::max<int64_t>(1, grain / std::max<int64_t>(R * I, 1)),
                 [&](int64_t b, int64_t e) { columns(b, e, 0, I); });
  }
}

// One block of n (<= 256) values of an inner run: the running extreme over R rows r
// (row r at p + r * stride) and its row, into at[]; ties keep the first row, the first NaN
// wins. Branch-free, so it vectorizes.
template <class T, bool kMax, class Row>
[[gnu::always_inline]] inline void arg_block(const T* __restrict p, int64_t stride, int64_t R, int64_t n,
                                             int64_t* __restrict at) {
  T best[256];
  Row row[256];
  for (int64_t i = 0; i < n; ++i) {
    best[i] = p[i];
    row[i] = 0;
  }
  for (int64_t r = 1; r < R; ++r) {
    const T* __restrict pr = p + r * stride;
    for (int64_t i = 0; i < n; ++i) {
      T v = pr[i], c = best[i];
      bool take = kMax ? v > c : v < c;
      if constexpr (std::is_floating_point_v<T>) take = (take || v != v) && c == c;
      best[i] = take ? v : c;
      row[i] = take ? static_cast<Row>(r) : row[i];
    }
  }
  for (int64_t i = 0; i < n; ++i) at[i] = row[i];
}

// The same for float, compiled for each x86 ISA (rows counted in 32 bits: 16 lanes).
template <bool kMax>
TDL_SIMD_CLONES void arg_block_f32(const float* p, int64_t stride, int64_t R, int64_t n, int64_t* at) {
  arg_block<float, kMax, int32_t>(p, stride, R, n, at);
}

// argmax (kMax) / argmin over [O, R, I] into i64 [O, I]. Ties give the first index; the
// first NaN wins (NumPy's rules). Branch-free: data-dependent branches mispredict.
template <class T, bool kMax>
void arg_kernel(const T* x, int64_t* out, const Layout& L) {
  const int64_t O = L.outer, R = L.red, I = L.inner;
  if (I == 1) {
    // Rows of R contiguous values (argmin(d, axis=1) of k-means' [N, K] distances): the
    // extreme first, then the first index that holds it (or the first NaN), by masks.
    parallel_for(O, std::max<int64_t>(1, (kParallelThreshold / 2) / std::max<int64_t>(R, 1)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t k = b; k < e; ++k) {
                     const T* p = x + k * R;
                     if constexpr (std::is_same_v<T, float>) {
                       if (R <= INT32_MAX) {
                         out[k] = arg_row_vec<float, kMax>(p, R);
                         continue;
                       }
                     } else if constexpr (std::is_same_v<T, double>) {
                       out[k] = arg_row_vec<double, kMax>(p, R);
                       continue;
                     }
                     T best = p[0];
                     for (int64_t r = 1; r < R; ++r) best = (kMax ? p[r] > best : p[r] < best) ? p[r] : best;
                     int64_t bi = 0, ni = R;
                     for (int64_t r = R - 1; r >= 0; --r) {
                       bi ^= (bi ^ r) & -static_cast<int64_t>(p[r] == best);
                       if constexpr (std::is_floating_point_v<T>) ni ^= (ni ^ r) & -static_cast<int64_t>(p[r] != p[r]);
                     }
                     out[k] = ni < R ? ni : bi;
                   }
                 });
    return;
  }
  // Inner runs of I contiguous values (max-pool windows [.., 4, C] over axis -2): the running
  // extreme and its index for a block of the run at once, row r after row r (vectorizes).
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (I + kBlock - 1) / kBlock;
  parallel_for(O * blocks, std::max<int64_t>(1, (kParallelThreshold / 2) / std::max<int64_t>(R * std::min(I, kBlock), 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t k = b; k < e; ++k) {
                   const int64_t o = k / blocks, i0 = (k % blocks) * kBlock, n = std::min(kBlock, I - i0);
                   const T* p = x + o * R * I + i0;
                   if constexpr (std::is_same_v<T, float>) {
                     if (R <= INT32_MAX) {
                       arg_block_f32<kMax>(p, I, R, n, out + o * I + i0);
                       continue;
                     }
                   }
                   arg_block<T, kMax, int64_t>(p, I, R, n, out + o * I + i0);
                 }
               });
}

// Moves the reduced axes after the kept ones when they are not adjacent; returns the
// [O, R, I] layout of the (possibly transposed) tensor.
Layout plan_layout(Tensor& x, const std::vector<bool>& mask) {
  const int64_t r = x.rank();
  const Shape s = x.shape();  // a copy: x may be replaced below
  int64_t first = -1, last = -1;
  bool gap = false;
  for (int64_t d = 0; d < r; ++d) {
    if (!mask[d] || s[d] == 1) continue;
    if (first < 0) first = d;
    last = d;
  }
  for (int64_t d = first + 1; first >= 0 && d < last; ++d)
    if (!mask[d] && s[d] != 1) gap = true;
  Layout L;
  if (first < 0) {  // nothing (of size > 1) reduced
    L.outer = x.numel();
    return L;
  }
  if (gap) {
    std::vector<int64_t> perm;
    for (int64_t d = 0; d < r; ++d)
      if (!mask[d]) perm.push_back(d);
    for (int64_t d = 0; d < r; ++d)
      if (mask[d]) perm.push_back(d);
    x = transpose(x, perm);
    for (int64_t d = 0; d < r; ++d) (mask[perm[d]] ? L.red : L.outer) *= s[perm[d]];
    return L;
  }
  for (int64_t d = 0; d < r; ++d) {
    if (d < first) L.outer *= s[d];
    else if (d <= last) L.red *= s[d];
    else L.inner *= s[d];
  }
  return L;
}

}  // namespace

Tensor reduce(ReduceOp op, const Tensor& x_in, const Axes& axes, bool keepdims) {
  std::vector<bool> mask = reduction_mask(axes, x_in.rank());
  Shape out_shape = reduced_shape(x_in.shape(), mask, keepdims);
  int64_t count = 1;
  for (int64_t d = 0; d < x_in.rank(); ++d)
    if (mask[d]) count *= x_in.shape()[d];
  const DType rdt = reduce_result_dtype(op, x_in.dtype());

  switch (op) {
    case ReduceOp::Mean: {
      if (count == 0) return full(out_shape, std::numeric_limits<double>::quiet_NaN(), rdt);
      Tensor xs = is_float(x_in.dtype()) ? x_in : cast(x_in, DType::F64);
      Tensor s = reduce(ReduceOp::Sum, xs, axes, keepdims);
      return cast(div(s, Tensor::scalar_of(s.dtype(), static_cast<double>(count))), rdt);
    }
    case ReduceOp::LogSumExp: {
      if (count == 0) return full(out_shape, -std::numeric_limits<double>::infinity(), rdt);
      Tensor xf = cast(x_in, rdt);
      Tensor m = reduce(ReduceOp::Max, xf, axes, true);
      Tensor m_safe = where(isfinite(m), m, Tensor::scalar_of(rdt, 0.0));
      Tensor s = reduce(ReduceOp::Sum, exp(sub(xf, m_safe)), axes, true);
      return reshape(add(log(s), m_safe), out_shape);
    }
    case ReduceOp::Max:
    case ReduceOp::Min:
    case ReduceOp::ArgMax:
    case ReduceOp::ArgMin:
      if (count == 0)
        throw Error(fmt::format("cannot take {} over an empty axis (shape {})", reduce_op_name(op),
                                shape_str(x_in.shape())));
      break;
    default: break;
  }

  DType cdt = x_in.dtype();  // compute dtype
  if (op == ReduceOp::Sum || op == ReduceOp::Prod) cdt = rdt;
  if (op == ReduceOp::All || op == ReduceOp::Any) cdt = DType::Bool;
  Tensor x = cast(x_in, cdt);
  Tensor out = Tensor::empty(rdt, out_shape);
  if (out.numel() == 0) return out;
  Layout L = plan_layout(x, mask);

  dispatch(cdt, [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    switch (op) {
      case ReduceOp::Sum:
        if constexpr (!std::is_same_v<T, bool>) reduce_kernel<T, SumPolicy<T>>(p, out.mutable_data<T>(), L);
        return;
      case ReduceOp::Prod:
        if constexpr (!std::is_same_v<T, bool>) reduce_kernel<T, ProdPolicy<T>>(p, out.mutable_data<T>(), L);
        return;
      case ReduceOp::Max:
      case ReduceOp::Any: return reduce_kernel<T, MaxPolicy<T>>(p, out.mutable_data<T>(), L);
      case ReduceOp::Min:
      case ReduceOp::All: return reduce_kernel<T, MinPolicy<T>>(p, out.mutable_data<T>(), L);
      case ReduceOp::ArgMax: return arg_kernel<T, true>(p, out.mutable_data<int64_t>(), L);
      case ReduceOp::ArgMin: return arg_kernel<T, false>(p, out.mutable_data<int64_t>(), L);
      default: throw InternalError("reduce: unhandled op");
    }
  });
  return out;
}

std::vector<int64_t> broadcast_axes(const Shape& g, const Shape& to) {
  const size_t lead = g.size() - to.size();
  std::vector<int64_t> axes;
  for (size_t i = 0; i < g.size(); ++i)
    if (i < lead || (to[i - lead] == 1 && g[i] != 1)) axes.push_back(static_cast<int64_t>(i));
  return axes;
}

Tensor sum_to(const Tensor& g, const Shape& to) {
  const Shape& gs = g.shape();
  if (gs == to) return g;
  if (gs.size() < to.size()) throw Error(fmt::format("internal: cannot sum shape {} to {}", shape_str(gs), shape_str(to)));
  const std::vector<int64_t> axes = broadcast_axes(gs, to);
  Tensor r = axes.empty() ? g : reduce(ReduceOp::Sum, g, axes, false);
  if (r.shape() != to) {
    if (r.numel() != numel_of(to))
      throw Error(fmt::format("internal: cannot sum shape {} to {}", shape_str(gs), shape_str(to)));
    r = r.with_shape(to);  // size-1 axes the sum dropped
  }
  return r;
}

}  // namespace tdl::rt
