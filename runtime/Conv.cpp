#include "Conv.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "DType.h"
#include "Error.h"
#include "ThreadPool.h"

namespace tdl::rt {
namespace {

void checkWindow(const Window2d& w) {
  if (w.kh < 1 || w.kw < 1 || w.sh < 1 || w.sw < 1 || w.dh < 1 || w.dw < 1 || w.oh < 0 || w.ow < 0)
    throw Error(fmt::format("invalid window {}x{} stride {}x{} dilation {}x{} output {}x{}", w.kh, w.kw, w.sh, w.sw,
                            w.dh, w.dw, w.oh, w.ow));
}

// Copies n elements; RUN > 0: n is RUN at compile time (a few vector moves, no call).
template <int RUN, class T>
[[gnu::always_inline]] inline void copyRun(T* __restrict d, const T* __restrict s, int64_t n) {
  if constexpr (RUN > 0) {
    std::memcpy(d, s, sizeof(T) * RUN);
  } else if (n > 16) {
    std::memcpy(d, s, sizeof(T) * static_cast<size_t>(n));
  } else {
    for (int64_t c = 0; c < n; ++c) d[c] = s[c];
  }
}

// Output rows [b, e) of [N * oh]. Each window row i reads one image row, which is first
// copied into `padded` with the fill value around it (the padding, and the taps a stride or
// size leaves outside), so that every position copies its taps without bounds checks: one
// run of kw * C elements when the dilation is 1 (RUN > 0: that length at compile time).
template <class T, int RUN>
void im2colRows(const T* src, T* dst, int64_t b, int64_t e, int64_t H, int64_t W, int64_t C, const Window2d& w,
                T fill) {
  const int64_t K = w.kh * w.kw * C, run = w.kw * C;
  const int64_t Wp = (w.ow - 1) * w.sw + (w.kw - 1) * w.dw + 1;  // padded row length, positions
  std::unique_ptr<T[]> padded(new T[static_cast<size_t>(Wp * C)]);
  // The part of the padded row that the image covers: u = ww + pl in [u0, u1).
  const int64_t u0 = std::clamp<int64_t>(w.pl, 0, Wp), u1 = std::clamp<int64_t>(w.pl + W, u0, Wp);
  T* pad = padded.get();
  for (int64_t u = 0; u < u0 * C; ++u) pad[u] = fill;
  for (int64_t u = u1 * C; u < Wp * C; ++u) pad[u] = fill;
  int64_t filledRow = -2;  // which image row `padded` holds (-1: all fill)
  for (int64_t no = b; no < e; ++no) {
    const int64_t n = no / w.oh, o = no % w.oh;
    T* base = dst + no * w.ow * K;
    for (int64_t i = 0; i < w.kh; ++i) {
      const int64_t hh = o * w.sh + i * w.dh - w.pt;
      const int64_t want = hh >= 0 && hh < H ? n * H + hh : -1;
      if (want != filledRow) {
        if (want < 0) {
          for (int64_t u = u0 * C; u < u1 * C; ++u) pad[u] = fill;
        } else {
          std::memcpy(pad + u0 * C, src + (want * W + (u0 - w.pl)) * C, sizeof(T) * static_cast<size_t>((u1 - u0) * C));
        }
        filledRow = want;
      }
      T* di = base + i * run;
      if (w.dw == 1) {
        const T* s = pad;
        for (int64_t p = 0; p < w.ow; ++p, s += w.sw * C) copyRun<RUN>(di + p * K, s, run);
      } else {
        for (int64_t p = 0; p < w.ow; ++p)
          for (int64_t j = 0; j < w.kw; ++j) copyRun<0>(di + p * K + j * C, pad + (p * w.sw + j * w.dw) * C, C);
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
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = x.data<T>();
    T* dst = out.mutable_data<T>();
    const T fill = static_cast<T>(pad);
    const int64_t rowWork = std::max<int64_t>(1, w.ow * K);
    parallel_for(N * w.oh, std::max<int64_t>(1, kParallelThreshold / 4 / rowWork), [&](int64_t b, int64_t e) {
      if constexpr (sizeof(T) == 4) {
        // The runs of common windows (3 or 2 taps of 1, 3, 16, 32 or 64 channels) at
        // compile time.
        switch (w.kw * C) {
          case 3: return im2colRows<T, 3>(src, dst, b, e, H, W, C, w, fill);
          case 9: return im2colRows<T, 9>(src, dst, b, e, H, W, C, w, fill);
          case 32: return im2colRows<T, 32>(src, dst, b, e, H, W, C, w, fill);
          case 48: return im2colRows<T, 48>(src, dst, b, e, H, W, C, w, fill);
          case 64: return im2colRows<T, 64>(src, dst, b, e, H, W, C, w, fill);
          case 96: return im2colRows<T, 96>(src, dst, b, e, H, W, C, w, fill);
          case 128: return im2colRows<T, 128>(src, dst, b, e, H, W, C, w, fill);
          case 192: return im2colRows<T, 192>(src, dst, b, e, H, W, C, w, fill);
          default: break;
        }
      }
      im2colRows<T, 0>(src, dst, b, e, H, W, C, w, fill);
    });
  });
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

}  // namespace tdl::rt
