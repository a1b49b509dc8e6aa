#include "Random.h"

#include <fmt/format.h>

#include <cmath>
#include <mutex>

#include "Error.h"
#include "ThreadPool.h"

namespace tdl::rt {

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(kM0) * c[0];
    uint64_t p1 = static_cast<uint64_t>(kM1) * c[2];
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k[0] += kW0;
    k[1] += kW1;
  }
  return c;
}

namespace {

std::mutex g_mu;
RngState g_state;

std::array<uint32_t, 4> block(uint64_t key, uint64_t ctr) {
  return philox4x32_10({static_cast<uint32_t>(ctr), static_cast<uint32_t>(ctr >> 32), 0u, 0u},
                       {static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32)});
}

// Fills n values, `per_block` values from each block: fn(block words, value index in the
// draw, how many of this block's values to produce).
template <class F>
void fill_blocks(int64_t n, int64_t per_block, F&& fn) {
  const uint64_t blocks = static_cast<uint64_t>((n + per_block - 1) / per_block);
  const uint64_t key = rng_state().key;
  const uint64_t first = rng_reserve(blocks);
  parallel_for(static_cast<int64_t>(blocks), kParallelThreshold / (2 * per_block), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      auto w = block(key, first + static_cast<uint64_t>(i));
      int64_t base = i * per_block;
      fn(w, base, std::min<int64_t>(per_block, n - base));
    }
  });
}

inline float u01_f32(uint32_t w) { return static_cast<float>(w >> 8) * 0x1.0p-24f; }
inline double u01_f64(uint32_t a, uint32_t b) {
  uint64_t x = (static_cast<uint64_t>(a) << 32 | b) >> 11;
  return static_cast<double>(x) * 0x1.0p-53;
}

}  // namespace

void seed(uint64_t s) {
  std::lock_guard<std::mutex> lk(g_mu);
  g_state = RngState{s, 0};
}

RngState rng_state() {
  std::lock_guard<std::mutex> lk(g_mu);
  return g_state;
}

void set_rng_state(RngState s) {
  std::lock_guard<std::mutex> lk(g_mu);
  g_state = s;
}

uint64_t rng_reserve(uint64_t blocks) {
  std::lock_guard<std::mutex> lk(g_mu);
  uint64_t first = g_state.counter;
  g_state.counter += blocks;
  return first;
}

Tensor rand(const Shape& shape, DType dtype) {
  if (!is_float(dtype)) throw Error(fmt::format("rand: dtype must be f32 or f64, got {}", dtype_name(dtype)));
  Tensor t = Tensor::empty(dtype, shape);
  const int64_t n = t.numel();
  if (dtype == DType::F32) {
    float* p = t.mutable_data<float>();
    fill_blocks(n, 4, [&](const std::array<uint32_t, 4>& w, int64_t base, int64_t cnt) {
      for (int64_t j = 0; j < cnt; ++j) p[base + j] = u01_f32(w[j]);
    });
  } else {
    double* p = t.mutable_data<double>();
    fill_blocks(n, 2, [&](const std::array<uint32_t, 4>& w, int64_t base, int64_t cnt) {
      for (int64_t j = 0; j < cnt; ++j) p[base + j] = u01_f64(w[2 * j], w[2 * j + 1]);
    });
  }
  return t;
}

Tensor randn(const Shape& shape, DType dtype) {
  if (!is_float(dtype)) throw Error(fmt::format("randn: dtype must be f32 or f64, got {}", dtype_name(dtype)));
  Tensor t = Tensor::empty(dtype, shape);
  const int64_t n = t.numel();
  constexpr double kTwoPi = 6.283185307179586;
  // Box–Muller on (u1, u2) with u1 in (0, 1] so log(u1) is finite.
  if (dtype == DType::F32) {
    float* p = t.mutable_data<float>();
    fill_blocks(n, 4, [&](const std::array<uint32_t, 4>& w, int64_t base, int64_t cnt) {
      for (int pair = 0; pair < 2; ++pair) {
        float u1 = 1.0f - u01_f32(w[2 * pair]);
        float u2 = u01_f32(w[2 * pair + 1]);
        float r = std::sqrt(-2.0f * std::log(u1));
        float th = static_cast<float>(kTwoPi) * u2;
        if (2 * pair < cnt) p[base + 2 * pair] = r * std::cos(th);
        if (2 * pair + 1 < cnt) p[base + 2 * pair + 1] = r * std::sin(th);
      }
    });
  } else {
    double* p = t.mutable_data<double>();
    fill_blocks(n, 2, [&](const std::array<uint32_t, 4>& w, int64_t base, int64_t cnt) {
      double u1 = 1.0 - u01_f64(w[0], w[1]);
      double u2 = u01_f64(w[2], w[3]);
      double r = std::sqrt(-2.0 * std::log(u1));
      p[base] = r * std::cos(kTwoPi * u2);
      if (cnt > 1) p[base + 1] = r * std::sin(kTwoPi * u2);
    });
  }
  return t;
}

Tensor randint(int64_t lo, int64_t hi, const Shape& shape) {
  if (lo >= hi) throw Error(fmt::format("randint: need lo < hi, got lo={} hi={}", lo, hi));
  Tensor t = Tensor::empty(DType::I64, shape);
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  int64_t* p = t.mutable_data<int64_t>();
  fill_blocks(t.numel(), 2, [&](const std::array<uint32_t, 4>& w, int64_t base, int64_t cnt) {
    for (int64_t j = 0; j < cnt; ++j) {
      uint64_t x = static_cast<uint64_t>(w[2 * j]) << 32 | w[2 * j + 1];
      uint64_t v = static_cast<uint64_t>((static_cast<unsigned __int128>(x) * range) >> 64);
      p[base + j] = static_cast<int64_t>(static_cast<uint64_t>(lo) + v);
    }
  });
  return t;
}

Tensor permutation(int64_t n) {
  if (n < 0) throw Error(fmt::format("permutation: n must be >= 0, got {}", n));
  Tensor t = Tensor::empty(DType::I64, {n});
  int64_t* p = t.mutable_data<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  if (n < 2) return t;
  // One 64-bit draw per position: j = floor(x * (i + 1) / 2^64).
  std::vector<uint64_t> draws(n);
  fill_blocks(n, 2, [&](const std::array<uint32_t, 4>& w, int64_t base, int64_t cnt) {
    for (int64_t j = 0; j < cnt; ++j) draws[base + j] = static_cast<uint64_t>(w[2 * j]) << 32 | w[2 * j + 1];
  });
  for (int64_t i = n - 1; i > 0; --i) {
    uint64_t j = static_cast<uint64_t>((static_cast<unsigned __int128>(draws[i]) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(p[i], p[j]);
  }
  return t;
}

}  // namespace tdl::rt
