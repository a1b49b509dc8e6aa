#include "Conv.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "DType.h"
#include "Error.h"
#include "Matmul.h"
#include "OpMath.h"
#include "ShapeOps.h"
#include "ThreadPool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tdl::rt {
namespace {

void checkWindow(const Window2d& w) {
  if (w.kh < 1 || w.kw < 1 || w.sh < 1 || w.sw < 1 || w.dh < 1 || w.dw < 1 || w.oh < 0 || w.ow < 0)
    throw Error(fmt::format("invalid window {}x{} stride {}x{} dilation {}x{} output {}x{}", w.kh, w.kw, w.sh, w.sw,
                            w.dh, w.dw, w.oh, w.ow));
}

// Copies n elements; RUN > 0: n is RUN at compile time (a few vector moves, no call). Only up
// to 192 bytes: GCC copies more as `rep movsq`, which is 2x slower than glibc's memcpy here.
template <int RUN, class T>
[[gnu::always_inline]] inline void copyRun(T* __restrict d, const T* __restrict s, int64_t n) {
  static_assert(RUN * sizeof(T) <= 192, "longer runs are copied by memcpy");
  if constexpr (RUN > 0) {
    std::memcpy(d, s, sizeof(T) * RUN);
  } else if (n > 16) {
    std::memcpy(d, s, sizeof(T) * static_cast<size_t>(n));
  } else {
    for (int64_t c = 0; c < n; ++c) d[c] = s[c];
  }
}

// Padded copies of the input rows that windows read, for convolution-like loops over output
// rows: row(n, hh) is image row hh of image n with the fill value around it (Wp positions,
// column u of the padded row is image column u - pl), so that no tap checks bounds. A ring
// of `slots` rows (slot hh % slots): the rows that one step reads (a window's kh rows, or a
// group of output rows' of one image) span at most `slots` consecutive rows, so they never
// share a slot, and each image row is copied once while the windows move down over it. One
// more row is fill only (rows above and below the image). Only the columns [u0, cl) and
// [cr, u1) of an image row are copied when the caller reads the others from the image.
template <class T>
class PaddedRows {
 public:
  PaddedRows(const Window2d& w, int64_t H, int64_t W, int64_t C, int64_t slots, T fill)
      : H_(H), W_(W), C_(C), pl_(w.pl), slots_(slots),
        Wp_((w.ow - 1) * w.sw + (w.kw - 1) * w.dw + 1), len_(Wp_ * C),
        u0_(std::clamp<int64_t>(w.pl, 0, Wp_)), u1_(std::clamp<int64_t>(w.pl + W, u0_, Wp_)), cl_(u1_), cr_(u1_),
        rows_(new T[static_cast<size_t>((slots + 1) * len_)]), held_(static_cast<size_t>(slots), -1) {
    for (int64_t r = 0; r <= slots; ++r) {
      T* pr = rows_.get() + r * len_;
      for (int64_t u = 0; u < (r == slots ? Wp_ : u0_) * C; ++u) pr[u] = fill;
      for (int64_t u = u1_ * C; u < len_; ++u) pr[u] = fill;
    }
  }
  int64_t Wp() const { return Wp_; }
  int64_t u0() const { return u0_; }
  int64_t u1() const { return u1_; }
  // Copy only the image columns [u0, cl) and [cr, u1) (u0 <= cl <= cr <= u1).
  void copyOnly(int64_t cl, int64_t cr) { cl_ = cl, cr_ = cr; }
  const T* row(const T* src, int64_t n, int64_t hh) {
    if (hh < 0 || hh >= H_) return rows_.get() + slots_ * len_;
    const int64_t slot = hh % slots_, want = n * H_ + hh;
    T* pr = rows_.get() + slot * len_;
    if (held_[static_cast<size_t>(slot)] != want) {
      // column u of the padded row is image column u - pl
      auto copy = [&](int64_t ua, int64_t ub) {
        if (ub > ua)
          std::memcpy(pr + ua * C_, src + (want * W_ + ua - pl_) * C_, sizeof(T) * static_cast<size_t>((ub - ua) * C_));
      };
      copy(u0_, cl_);
      copy(cr_, u1_);
      held_[static_cast<size_t>(slot)] = want;
    }
    return pr;
  }

 private:
  int64_t H_, W_, C_, pl_, slots_, Wp_, len_, u0_, u1_, cl_, cr_;
  std::unique_ptr<T[]> rows_;
  std::vector<int64_t> held_;  // which image row (n * H + hh) each slot holds
};

// The rows one output row's window reads: kh rows spread over (kh - 1) * dh + 1.
int64_t windowSlots(const Window2d& w) { return (w.kh - 1) * w.dh + 1; }

// Output rows [b, e) of [N * oh]. With dilation 1, a position's taps in window row i are one
// run of kw * C elements: read straight from the image row where the window is inside it
// (positions [q0, q1)), and at the edges from the padded rows (PaddedRows), so that no copy
// checks bounds (RUN > 0: the run's length at compile time). Other dilations copy tap by tap
// from the padded rows.
template <class T, int RUN>
void im2colRows(const T* src, T* dst, int64_t b, int64_t e, int64_t H, int64_t W, int64_t C, const Window2d& w,
                T fill) {
  // The window's fields as locals: stores through T* (a char type when T is int8_t) could
  // otherwise alias them, and they would be loaded again after every copy.
  const int64_t kh = w.kh, kw = w.kw, sh = w.sh, sw = w.sw, dh = w.dh, dw = w.dw, pt = w.pt, pl = w.pl, oh = w.oh,
                ow = w.ow;
  const int64_t K = kh * kw * C, run = kw * C;
  PaddedRows<T> pad(w, H, W, C, windowSlots(w), fill);
  // An output row of more than 16 KiB is written position by position (one stream in
  // order: 2x faster than kh passes over it for a 28x28x32 image), reading the window rows
  // inside the image from the image itself; a smaller one window row by window row from the
  // padded rows only (the loops over short runs are simpler, and read L1).
  const bool byPosition = dw == 1 && ow * K * static_cast<int64_t>(sizeof(T)) > (int64_t{16} << 10);
  // Positions whose window row is inside the image (dilation 1): p * sw - pl in [0, W - kw].
  int64_t q0 = ow, q1 = ow;
  if (byPosition) {
    q0 = 0;
    while (q0 < ow && q0 * sw - pl < 0) ++q0;
    q1 = q0;
    while (q1 < ow && q1 * sw - pl + kw <= W) ++q1;
    if (q0 == q1) q0 = q1 = ow;
  }
  if (q0 < q1) {
    // The padded rows then need only the columns the other positions read.
    const int64_t cl = std::min(pad.u1(), q0 == 0 ? pad.u0() : std::min(pad.Wp(), (q0 - 1) * sw + kw));
    pad.copyOnly(cl, std::clamp(q1 * sw, cl, pad.u1()));
  }
  // Per window row i of the current output row: its padded row, and the image row (null when
  // the window row is outside the image).
  std::vector<const T*> padOf(static_cast<size_t>(kh)), lineOf(static_cast<size_t>(kh));
  for (int64_t no = b; no < e; ++no) {
    const int64_t n = no / oh, o = no % oh;
    for (int64_t i = 0; i < kh; ++i) {
      const int64_t hh = o * sh + i * dh - pt;
      padOf[static_cast<size_t>(i)] = pad.row(src, n, hh);
      lineOf[static_cast<size_t>(i)] = hh >= 0 && hh < H ? src + (n * H + hh) * W * C : nullptr;
    }
    T* base = dst + no * ow * K;
    if (dw != 1) {
      for (int64_t p = 0; p < ow; ++p)
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j)
            copyRun<0>(base + p * K + i * run + j * C, padOf[static_cast<size_t>(i)] + (p * sw + j * dw) * C, C);
    } else if (byPosition) {
      // Position by position, so that the output is written in order (one stream, not kh).
      T* d = base;
      for (int64_t p = 0; p < ow; ++p) {
        const bool inside = p >= q0 && p < q1;
        for (int64_t i = 0; i < kh; ++i, d += run) {
          const T* line = lineOf[static_cast<size_t>(i)];
          copyRun<RUN>(d, inside && line ? line + (p * sw - pl) * C : padOf[static_cast<size_t>(i)] + p * sw * C, run);
        }
      }
    } else {
      // Window row by window row: short runs, simple loops.
      for (int64_t i = 0; i < kh; ++i) {
        const T* s = padOf[static_cast<size_t>(i)];
        T* di = base + i * run;
        for (int64_t p = 0; p < ow; ++p, s += sw * C) copyRun<RUN>(di + p * K, s, run);
      }
    }
  }
}

}  // namespace

Tensor im2col(const Tensor& x, const Window2d& w, double pad) {
  if (x.rank() != 4) throw Error(fmt::format("im2col: needs x of rank 4 ([N, H, W, C]), got {}", x.type_str()));
  checkWindow(w);
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const int64_t K = w.kh * w.kw * C;
  Tensor out = Tensor::empty(x.dtype(), {N, w.oh, w.ow, K});
  if (out.numel() == 0) return out;
  auto body = [&](auto tag) {
    using T = decltype(tag);
    const T* src = x.data<T>();
    T* dst = out.mutable_data<T>();
    const T fill = static_cast<T>(pad);
    const int64_t rowWork = std::max<int64_t>(1, w.ow * K);
    parallel_for(N * w.oh, std::max<int64_t>(1, kParallelThreshold / 4 / rowWork), [&](int64_t b, int64_t e) {
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, int8_t>) {
        // The runs of common windows (3 or 2 taps of 1, 3, 16, 32 or 64 channels) at
        // compile time, up to 192 bytes: f32, and the quantized pixels of int8 convolutions.
        switch (w.kw * C) {
          case 3: return im2colRows<T, 3>(src, dst, b, e, H, W, C, w, fill);
          case 9: return im2colRows<T, 9>(src, dst, b, e, H, W, C, w, fill);
          case 32: return im2colRows<T, 32>(src, dst, b, e, H, W, C, w, fill);
          case 48: return im2colRows<T, 48>(src, dst, b, e, H, W, C, w, fill);
          default: break;
        }
        if constexpr (sizeof(T) == 1) {
          switch (w.kw * C) {
            case 64: return im2colRows<T, 64>(src, dst, b, e, H, W, C, w, fill);
            case 96: return im2colRows<T, 96>(src, dst, b, e, H, W, C, w, fill);
            case 192: return im2colRows<T, 192>(src, dst, b, e, H, W, C, w, fill);
            default: break;
          }
        }
      }
      im2colRows<T, 0>(src, dst, b, e, H, W, C, w, fill);
    });
  };
  // i8: the windows of quantized pixels (ir/passes/Quantize.cpp), padded with 0.
  if (x.dtype() == DType::I8) {
    if (pad != 0.0) throw Error("internal: im2col of i8 pads with 0 only");
    body(int8_t{});
  } else {
    dispatch(x.dtype(), body);
  }
  return out;
}

Tensor col2im(const Tensor& cols, int64_t H, int64_t W, const Window2d& w) {
  if (cols.rank() != 4 || cols.dim(1) != w.oh || cols.dim(2) != w.ow || cols.dim(3) % (w.kh * w.kw) != 0)
    throw Error(fmt::format("col2im: columns {} do not fit a {}x{} window over {}x{} positions", cols.type_str(), w.kh,
                            w.kw, w.oh, w.ow));
  checkWindow(w);
  if (H < 0 || W < 0) throw Error(fmt::format("col2im: negative size {}x{}", H, W));
  const int64_t N = cols.dim(0), K = cols.dim(3), C = K / (w.kh * w.kw);
  Tensor out = Tensor::zeros(cols.dtype(), {N, H, W, C});
  if (out.numel() == 0 || cols.numel() == 0) return out;
  dispatch(cols.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = cols.data<T>();
    T* dst = out.mutable_data<T>();
    // One image per task: the windows of one image overlap, different images do not.
    parallel_for(N, 1, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n)
        for (int64_t o = 0; o < w.oh; ++o)
          for (int64_t p = 0; p < w.ow; ++p) {
            const T* row = src + ((n * w.oh + o) * w.ow + p) * K;
            for (int64_t i = 0; i < w.kh; ++i) {
              int64_t hh = o * w.sh + i * w.dh - w.pt;
              if (hh < 0 || hh >= H) continue;
              for (int64_t j = 0; j < w.kw; ++j) {
                int64_t ww = p * w.sw + j * w.dw - w.pl;
                if (ww < 0 || ww >= W) continue;
                T* d = dst + ((n * H + hh) * W + ww) * C;
                const T* s = row + (i * w.kw + j) * C;
                if constexpr (std::is_same_v<T, bool>) {
                  for (int64_t c = 0; c < C; ++c) d[c] = d[c] || s[c];
                } else {
                  for (int64_t c = 0; c < C; ++c) d[c] += s[c];
                }
              }
            }
          }
    });
  });
  return out;
}

// ---- direct convolution -----------------------------------------------------------------

namespace {

// What a forward convolution adds to each result as it writes it (the layer's bias and
// activation after it): + bias[o] (when not null), then relu (when relu); the same float
// operations as the elementwise ops they replace.
struct ConvEpilogue {
  const float* bias = nullptr;
  bool relu = false;
};

#if defined(__x86_64__)
#define TDL_CONV_AVX512 "avx2,fma,avx512f"

bool directConvCpu() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  return ok;
}

// Whether a product of `macs` multiply-adds in dtype d runs a direct kernel (every size is
// then positive: macs is their product).
bool useDirect(DType d, int64_t macs) { return d == DType::F32 && macs >= kConvDirectMinMacs && directConvCpu(); }

// R positions (R <= 6) x NV vectors of 16 output channels (NV <= 4), starting at output
// position p0 and channel 16 * v0 of output row `yr`. rows[i]: padded input row of window
// row i (Wp positions of C), so tap (i, j) of position p is rows[i][(p * sw + j * dw) * C].
template <int R, int NV>
__attribute__((target(TDL_CONV_AVX512))) void convBlock(const float* const* rows, const float* wm, float* yr,
                                                       int64_t p0, int64_t v0, int64_t C, int64_t O, const Window2d& w,
                                                       int64_t left, const ConvEpilogue& epi) {
  __m512 acc[R][NV];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  const __mmask16 last = left >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << left) - 1);
  const int64_t step = w.sw * C;
  for (int64_t i = 0; i < w.kh; ++i)
    for (int64_t j = 0; j < w.kw; ++j) {
      const float* xr = rows[i] + (p0 * w.sw + j * w.dw) * C;
      const float* wt = wm + ((i * w.kw + j) * C) * O + 16 * v0;
      for (int64_t c = 0; c < C; ++c) {
        __m512 wv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
          wv[v] = v + 1 < NV ? _mm512_loadu_ps(wt + c * O + 16 * v) : _mm512_maskz_loadu_ps(last, wt + c * O + 16 * v);
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
          const __m512 xb = _mm512_set1_ps(xr[r * step + c]);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(xb, wv[v], acc[r][v]);
        }
      }
    }
  __m512 bias[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v)
    bias[v] = !epi.bias ? _mm512_setzero_ps()
              : v + 1 < NV ? _mm512_loadu_ps(epi.bias + 16 * (v0 + v))
                           : _mm512_maskz_loadu_ps(last, epi.bias + 16 * (v0 + v));
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* o = yr + (p0 + r) * O + 16 * (v0 + v);
      __m512 y = acc[r][v];
      if (epi.bias) y = _mm512_add_ps(y, bias[v]);
      // relu as the runtime's: y <= 0 -> 0 (so -0 -> 0), NaN stays
      if (epi.relu) y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_LE_OQ), _mm512_setzero_ps());
      if (v + 1 < NV) _mm512_storeu_ps(o, y);
      else _mm512_mask_storeu_ps(o, last, y);
    }
}

template <int NV>
__attribute__((target(TDL_CONV_AVX512))) void convRow(const float* const* rows, const float* wm, float* yr, int64_t v0,
                                                     int64_t C, int64_t O, const Window2d& w, int64_t left,
                                                     const ConvEpilogue& epi) {
  int64_t p = 0;
  for (; p + 6 <= w.ow; p += 6) convBlock<6, NV>(rows, wm, yr, p, v0, C, O, w, left, epi);
  switch (w.ow - p) {
    case 5: return convBlock<5, NV>(rows, wm, yr, p, v0, C, O, w, left, epi);
    case 4: return convBlock<4, NV>(rows, wm, yr, p, v0, C, O, w, left, epi);
    case 3: return convBlock<3, NV>(rows, wm, yr, p, v0, C, O, w, left, epi);
    case 2: return convBlock<2, NV>(rows, wm, yr, p, v0, C, O, w, left, epi);
    case 1: return convBlock<1, NV>(rows, wm, yr, p, v0, C, O, w, left, epi);
    default: return;
  }
}

// y [N, oh, ow, O] = im2col(x, w, 0) @ wm, directly.
void convDirect(const float* x, const float* wm, float* y, int64_t N, int64_t H, int64_t W, int64_t C, int64_t O,
                const Window2d& w, const ConvEpilogue& epi = {}) {
  parallel_for(N * w.oh, 1, [&](int64_t b, int64_t e) {
    PaddedRows<float> pad(w, H, W, C, windowSlots(w), 0.0f);
    std::vector<const float*> rows(static_cast<size_t>(w.kh));
    for (int64_t no = b; no < e; ++no) {
      const int64_t n = no / w.oh, o = no % w.oh;
      for (int64_t i = 0; i < w.kh; ++i) rows[static_cast<size_t>(i)] = pad.row(x, n, o * w.sh + i * w.dh - w.pt);
      float* yr = y + no * w.ow * O;
      for (int64_t v0 = 0; v0 < (O + 15) / 16; v0 += 4) {
        const int64_t nv = std::min<int64_t>(4, (O + 15) / 16 - v0), left = O - 16 * (v0 + nv - 1);
        switch (nv) {
          case 4: convRow<4>(rows.data(), wm, yr, v0, C, O, w, left, epi); break;
          case 3: convRow<3>(rows.data(), wm, yr, v0, C, O, w, left, epi); break;
          case 2: convRow<2>(rows.data(), wm, yr, v0, C, O, w, left, epi); break;
          default: convRow<1>(rows.data(), wm, yr, v0, C, O, w, left, epi); break;
        }
      }
    }
  });
}

// The filter gradient: gw[(i * kw + j) * C + c][o] += x[n, hh, ww, c] * g[n, o', p, o] over the
// output positions (o', p) of a group of output rows, for TC channels c0.. of tap (i, j) and
// NV vectors of 16 outputs from 16 * v0: TC x NV accumulators loaded from and stored back
// to gw once per group. xrows[r][i]: padded input row of window row i for output row r.
template <int TC, int NV>
__attribute__((target(TDL_CONV_AVX512))) void filterTile(const float* const* const* xrows, const float* const* grows,
                                                        int rows, float* gw, int64_t i, int64_t j, int64_t c0,
                                                        int64_t v0, int64_t C, int64_t O, const Window2d& w,
                                                        int64_t left) {
  const __mmask16 last = left >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << left) - 1);
  float* at = gw + ((i * w.kw + j) * C + c0) * O + 16 * v0;
  __m512 acc[TC][NV];
#pragma GCC unroll 6
  for (int t = 0; t < TC; ++t)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[t][v] = v + 1 < NV ? _mm512_loadu_ps(at + t * O + 16 * v) : _mm512_maskz_loadu_ps(last, at + t * O + 16 * v);
  const int64_t step = w.sw * C;
  for (int r = 0; r < rows; ++r) {
    const float* xr = xrows[r][i] + j * w.dw * C + c0;
    const float* gr = grows[r] + 16 * v0;
    for (int64_t p = 0; p < w.ow; ++p, xr += step, gr += O) {
      __m512 gv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) gv[v] = v + 1 < NV ? _mm512_loadu_ps(gr + 16 * v) : _mm512_maskz_loadu_ps(last, gr + 16 * v);
#pragma GCC unroll 6
      for (int t = 0; t < TC; ++t) {
        const __m512 xb = _mm512_set1_ps(xr[t]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[t][v] = _mm512_fmadd_ps(xb, gv[v], acc[t][v]);
      }
    }
  }
#pragma GCC unroll 6
  for (int t = 0; t < TC; ++t)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      if (v + 1 < NV) _mm512_storeu_ps(at + t * O + 16 * v, acc[t][v]);
      else _mm512_mask_storeu_ps(at + t * O + 16 * v, last, acc[t][v]);
    }
}

template <int TC>
__attribute__((target(TDL_CONV_AVX512))) void filterTiles(const float* const* const* xrows, const float* const* grows,
                                                         int rows, float* gw, int64_t i, int64_t j, int64_t c0,
                                                         int64_t C, int64_t O, const Window2d& w) {
  const int64_t nvAll = (O + 15) / 16;
  for (int64_t v0 = 0; v0 < nvAll; v0 += 4) {
    const int64_t nv = std::min<int64_t>(4, nvAll - v0), left = O - 16 * (v0 + nv - 1);
    switch (nv) {
      case 4: filterTile<TC, 4>(xrows, grows, rows, gw, i, j, c0, v0, C, O, w, left); break;
      case 3: filterTile<TC, 3>(xrows, grows, rows, gw, i, j, c0, v0, C, O, w, left); break;
      case 2: filterTile<TC, 2>(xrows, grows, rows, gw, i, j, c0, v0, C, O, w, left); break;
      default: filterTile<TC, 1>(xrows, grows, rows, gw, i, j, c0, v0, C, O, w, left); break;
    }
  }
}

// gw [kh * kw * C, O] = im2col(x, w, 0)^T @ g over all output positions, directly: the
// output rows in a fixed number of chunks (each its own partial sum, added in chunk order,
// so the result does not depend on the thread count), each chunk in groups of up to 4
// output rows of one image, whose input rows are the padded rows.
void filterDirect(const float* x, const float* g, float* gw, int64_t N, int64_t H, int64_t W, int64_t C, int64_t O,
                  const Window2d& w) {
  const int64_t K = w.kh * w.kw * C, rowsAll = N * w.oh;
  constexpr int RG = 4;
  // At most 16 chunks, and at most 64 MiB of partial sums (a 3x3x512x512 filter has 9 MiB).
  const int64_t maxByMemory = std::max<int64_t>(1, (int64_t{64} << 20) / (static_cast<int64_t>(sizeof(float)) * K * O));
  const int64_t chunks = std::max<int64_t>(1, std::min({int64_t{16}, rowsAll / RG, maxByMemory}));
  std::vector<float> partial(static_cast<size_t>(chunks * K * O), 0.0f);
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    // A group's rows span (RG - 1) * sh + (kh - 1) * dh + 1 image rows.
    PaddedRows<float> pad(w, H, W, C, (RG - 1) * w.sh + windowSlots(w), 0.0f);
    std::vector<const float*> xr(static_cast<size_t>(RG * w.kh));
    const float* grows[RG];
    const float* const* xrp[RG];
    for (int64_t ch = cb; ch < ce; ++ch) {
      float* part = partial.data() + ch * K * O;
      const int64_t b = rowsAll * ch / chunks, e = rowsAll * (ch + 1) / chunks;
      for (int64_t g0 = b; g0 < e;) {
        const int64_t n = g0 / w.oh, o0 = g0 % w.oh;
        const int rows = static_cast<int>(std::min({int64_t{RG}, e - g0, w.oh - o0}));
        for (int r = 0; r < rows; ++r) {
          grows[r] = g + (g0 + r) * w.ow * O;
          for (int64_t i = 0; i < w.kh; ++i)
            xr[static_cast<size_t>(r * w.kh + i)] = pad.row(x, n, (o0 + r) * w.sh + i * w.dh - w.pt);
          xrp[r] = xr.data() + r * w.kh;
        }
        for (int64_t i = 0; i < w.kh; ++i)
          for (int64_t j = 0; j < w.kw; ++j)
            for (int64_t c0 = 0; c0 < C; c0 += 6) {
              switch (std::min<int64_t>(6, C - c0)) {
                case 6: filterTiles<6>(xrp, grows, rows, part, i, j, c0, C, O, w); break;
                case 5: filterTiles<5>(xrp, grows, rows, part, i, j, c0, C, O, w); break;
                case 4: filterTiles<4>(xrp, grows, rows, part, i, j, c0, C, O, w); break;
                case 3: filterTiles<3>(xrp, grows, rows, part, i, j, c0, C, O, w); break;
                case 2: filterTiles<2>(xrp, grows, rows, part, i, j, c0, C, O, w); break;
                default: filterTiles<1>(xrp, grows, rows, part, i, j, c0, C, O, w); break;
              }
            }
        g0 += rows;
      }
    }
  });
  std::copy(partial.begin(), partial.begin() + K * O, gw);
  for (int64_t ch = 1; ch < chunks; ++ch)
    for (int64_t k = 0; k < K * O; ++k) gw[k] += partial[static_cast<size_t>(ch * K * O + k)];
}
#endif

void checkConv(const Tensor& x, const Tensor& wm, const Window2d& w, const char* what) {
  if (x.rank() != 4 || wm.rank() != 2 || wm.dim(0) != w.kh * w.kw * x.dim(3) || x.dtype() != wm.dtype())
    throw Error(fmt::format("internal: {} of {} and {} with a {}x{} window", what, x.type_str(), wm.type_str(), w.kh, w.kw));
}

}  // namespace

Tensor conv_nhwc(const Tensor& x, const Tensor& wm, const Window2d& w, const std::optional<Tensor>& bias, bool relu) {
  checkConv(x, wm, w, "conv_nhwc");
  const int64_t N = x.dim(0), O = wm.dim(1);
  if (bias && (bias->dtype() != x.dtype() || bias->shape() != Shape{O}))
    throw Error(fmt::format("internal: conv_nhwc's bias must be {}[{}], got {}", dtype_name(x.dtype()), O, bias->type_str()));
  if ((bias || relu) && x.dtype() != DType::F32) throw Error("internal: conv_nhwc's bias and relu are for f32");
  const float* bp = bias ? bias->data<float>() : nullptr;
#if defined(__x86_64__)
  if (useDirect(x.dtype(), N * w.oh * w.ow * wm.dim(0) * O)) {
    checkWindow(w);
    Tensor y = Tensor::empty(DType::F32, {N, w.oh, w.ow, O});
    convDirect(x.data<float>(), wm.data<float>(), y.mutable_data<float>(), N, x.dim(1), x.dim(2), x.dim(3), O, w,
               ConvEpilogue{bp, relu});
    return y;
  }
#endif
  Tensor cols = im2col(x, w, 0.0);
  Tensor y = reshape(matmul(reshape(cols, {N * w.oh * w.ow, wm.dim(0)}), wm), {N, w.oh, w.ow, O});
  if (bp || relu) {
    float* p = y.mutable_data<float>();
    const int64_t n = y.numel();
    for (int64_t i = 0; i < n; ++i) {
      float v = p[i];
      if (bp) v = v + bp[i % O];
      if (relu) v = opmath::ScalarMath<float>().unary<UnaryOp::Relu>(v);  // the eager relu
      p[i] = v;
    }
  }
  return y;
}

Tensor conv_nhwc_adjoint(const Tensor& g, const Tensor& wm, const Window2d& w, int64_t h, int64_t wd) {
  if (g.rank() != 4 || wm.rank() != 2 || g.dim(3) != wm.dim(1) || g.dim(1) != w.oh || g.dim(2) != w.ow ||
      wm.dim(0) % (w.kh * w.kw) != 0 || g.dtype() != wm.dtype())
    throw Error(fmt::format("internal: conv_nhwc_adjoint of {} and {} with a {}x{} window", g.type_str(), wm.type_str(),
                            w.kh, w.kw));
  const int64_t N = g.dim(0), O = g.dim(3);
#if defined(__x86_64__)
  if (w.sh == 1 && w.sw == 1 && useDirect(g.dtype(), N * h * wd * wm.dim(0) * O)) {
    checkWindow(w);
    const int64_t C = wm.dim(0) / (w.kh * w.kw);
    // Output position (y, x) of the adjoint reads g at (y + pt - i * dh, x + pl - j * dw): a
    // window over g with the taps reversed, padding (k - 1) * d - p, and the filter's taps
    // flipped and its channels swapped: wf[((kh-1-i) * kw + (kw-1-j)) * O + o][c] = wm[(i * kw + j) * C + c][o].
    Window2d a{w.kh, w.kw, 1, 1, w.dh, w.dw, (w.kh - 1) * w.dh - w.pt, (w.kw - 1) * w.dw - w.pl, h, wd};
    Tensor wf = Tensor::empty(DType::F32, {w.kh * w.kw * O, C});
    const float* src = wm.data<float>();
    float* dst = wf.mutable_data<float>();
    for (int64_t i = 0; i < w.kh; ++i)
      for (int64_t j = 0; j < w.kw; ++j)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t o = 0; o < O; ++o)
            dst[(((w.kh - 1 - i) * w.kw + (w.kw - 1 - j)) * O + o) * C + c] = src[((i * w.kw + j) * C + c) * O + o];
    Tensor y = Tensor::empty(DType::F32, {N, h, wd, C});
    convDirect(g.data<float>(), dst, y.mutable_data<float>(), N, w.oh, w.ow, O, C, a);
    return y;
  }
#endif
  Tensor cols = gemm(reshape(g, {N * w.oh * w.ow, O}), wm, std::nullopt, false, true, 1.0, 0.0);
  return col2im(reshape(cols, {N, w.oh, w.ow, wm.dim(0)}), h, wd, w);
}

Tensor conv_nhwc_filter_grad(const Tensor& x, const Tensor& g, const Window2d& w) {
  if (x.rank() != 4 || g.rank() != 4 || g.dim(0) != x.dim(0) || g.dim(1) != w.oh || g.dim(2) != w.ow ||
      x.dtype() != g.dtype())
    throw Error(fmt::format("internal: conv_nhwc_filter_grad of {} and {} with a {}x{} window", x.type_str(),
                            g.type_str(), w.kh, w.kw));
  const int64_t N = x.dim(0), O = g.dim(3), K = w.kh * w.kw * x.dim(3);
#if defined(__x86_64__)
  if (useDirect(x.dtype(), N * w.oh * w.ow * K * O)) {
    checkWindow(w);
    Tensor gw = Tensor::empty(DType::F32, {K, O});
    filterDirect(x.data<float>(), g.data<float>(), gw.mutable_data<float>(), N, x.dim(1), x.dim(2), x.dim(3), O, w);
    return gw;
  }
#endif
  const int64_t M = N * w.oh * w.ow;
  return gemm(reshape(im2col(x, w, 0.0), {M, K}), reshape(g, {M, O}), std::nullopt, true, false, 1.0, 0.0);
}

}  // namespace tdl::rt
