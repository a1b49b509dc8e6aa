#include "Conv.h"

#include <cstring>

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
    // A window's row is one run of kw * C elements when the taps are adjacent (dilation 1)
    // and inside the image: copied at once. Short runs are copied without a call.
    const int64_t run = w.kw * C;
    auto copy = [](T* d, const T* src, int64_t len) {
      if (len > 16) {
        std::memcpy(d, src, sizeof(T) * static_cast<size_t>(len));
      } else {
        for (int64_t c = 0; c < len; ++c) d[c] = src[c];
      }
    };
    const int64_t rowWork = std::max<int64_t>(1, w.ow * K);
    parallel_for(N * w.oh, std::max<int64_t>(1, kParallelThreshold / 4 / rowWork), [&](int64_t b, int64_t e) {
      for (int64_t no = b; no < e; ++no) {
        int64_t n = no / w.oh, o = no % w.oh;
        for (int64_t p = 0; p < w.ow; ++p) {
          T* row = dst + (no * w.ow + p) * K;
          const int64_t w0 = p * w.sw - w.pl;
          const bool inside = w.dw == 1 && w0 >= 0 && w0 + w.kw <= W;
          for (int64_t i = 0; i < w.kh; ++i) {
            int64_t hh = o * w.sh + i * w.dh - w.pt;
            T* d = row + i * run;
            if (hh < 0 || hh >= H) {
              for (int64_t c = 0; c < run; ++c) d[c] = fill;
              continue;
            }
            const T* line = src + (n * H + hh) * W * C;
            if (inside) {
              copy(d, line + w0 * C, run);
              continue;
            }
            for (int64_t j = 0; j < w.kw; ++j) {
              int64_t ww = w0 + j * w.dw;
              T* dj = d + j * C;
              if (ww < 0 || ww >= W) {
                for (int64_t c = 0; c < C; ++c) dj[c] = fill;
              } else {
                copy(dj, line + ww * C, C);
              }
            }
          }
        }
      }
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
