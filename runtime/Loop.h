// Internal: the broadcasting loop plan shared by elementwise kernels, where() and
// broadcast_to(). Operand shapes are right-aligned against the output shape; broadcast
// dims get stride 0; adjacent dims that stay contiguous for every operand are merged,
// so same-shape and scalar-broadcast cases become one flat loop whose inner strides are
// 0 or 1.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "Shape.h"
#include "ThreadPool.h"

namespace tdl::rt::detail {

inline constexpr int kMaxLoopOperands = 4;  // output + up to 3 inputs

struct LoopPlan {
  int rank = 1;  // >= 1 after collapsing
  int nops = 0;
  int64_t shape[kMaxRank] = {1};
  int64_t strides[kMaxLoopOperands][kMaxRank] = {};
  int64_t inner() const { return shape[rank - 1]; }
  int64_t rows() const {
    int64_t r = 1;
    for (int i = 0; i + 1 < rank; ++i) r *= shape[i];
    return r;
  }
};

inline LoopPlan make_loop_plan(const Shape& out, std::initializer_list<const Shape*> ins) {
  LoopPlan p;
  p.nops = static_cast<int>(ins.size());
  int64_t r = static_cast<int64_t>(out.size());
  // Per output dim (skipping size-1 dims), the input strides.
  int n = 0;
  int64_t shp[kMaxRank];
  int64_t st[kMaxLoopOperands][kMaxRank];
  for (int64_t d = 0; d < r; ++d) {
    if (out[d] == 1) continue;
    shp[n] = out[d];
    int k = 0;
    for (const Shape* s : ins) {
      int64_t off = r - static_cast<int64_t>(s->size());
      int64_t stride = 0;
      if (d >= off && (*s)[d - off] != 1) {
        stride = 1;
        for (int64_t e = d - off + 1; e < static_cast<int64_t>(s->size()); ++e) stride *= (*s)[e];
      }
      st[k++][n] = stride;
    }
    ++n;
  }
  if (n == 0) {  // all dims 1: a single element
    p.rank = 1;
    p.shape[0] = 1;
    for (int k = 0; k < p.nops; ++k) p.strides[k][0] = 0;
    return p;
  }
  // Merge dim i into i+1 when contiguous for every operand.
  int m = 0;
  p.shape[0] = shp[0];
  for (int k = 0; k < p.nops; ++k) p.strides[k][0] = st[k][0];
  for (int i = 1; i < n; ++i) {
    bool merge = true;
    for (int k = 0; k < p.nops; ++k)
      if (p.strides[k][m] != st[k][i] * shp[i]) merge = false;
    if (merge) {
      p.shape[m] *= shp[i];
      for (int k = 0; k < p.nops; ++k) p.strides[k][m] = st[k][i];
    } else {
      ++m;
      p.shape[m] = shp[i];
      for (int k = 0; k < p.nops; ++k) p.strides[k][m] = st[k][i];
    }
  }
  p.rank = m + 1;
  return p;
}

// Calls fn(offsets, inner_begin, inner_end) for every row (all dims but the last) in
// [0, rows), splitting the work over the pool when it is large; `offsets[k]` is operand
// k's element offset at the start of the row. A single-row plan is split along the row.
// By convention operand 0 is the (contiguous) output.
template <class F>
void for_each_row(const LoopPlan& p, F&& fn) {
  const int64_t inner = p.inner();
  const int64_t rows = p.rows();
  const int64_t grain_elems = kParallelThreshold / 2;
  if (rows == 1) {
    parallel_for(inner, grain_elems, [&](int64_t b, int64_t e) {
      int64_t offs[kMaxLoopOperands] = {};
      fn(offs, b, e);
    });
    return;
  }
  int64_t grain_rows = std::max<int64_t>(1, grain_elems / std::max<int64_t>(inner, 1));
  parallel_for(rows, grain_rows, [&](int64_t rb, int64_t re) {
    int outer = p.rank - 1;
    int64_t idx[kMaxRank];
    int64_t rem = rb;
    for (int d = outer - 1; d >= 0; --d) {
      idx[d] = rem % p.shape[d];
      rem /= p.shape[d];
    }
    int64_t offs[kMaxLoopOperands];
    for (int k = 0; k < p.nops; ++k) {
      offs[k] = 0;
      for (int d = 0; d < outer; ++d) offs[k] += idx[d] * p.strides[k][d];
    }
    for (int64_t row = rb; row < re; ++row) {
      fn(offs, int64_t{0}, inner);
      for (int d = outer - 1; d >= 0; --d) {  // odometer step
        for (int k = 0; k < p.nops; ++k) offs[k] += p.strides[k][d];
        if (++idx[d] < p.shape[d]) break;
        for (int k = 0; k < p.nops; ++k) offs[k] -= p.strides[k][d] * p.shape[d];
        idx[d] = 0;
      }
    }
  });
}

}  // namespace tdl::rt::detail
