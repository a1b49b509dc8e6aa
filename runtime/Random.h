// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11, as in Random123).
//
// The global state is a 64-bit key (the seed) and a 64-bit block counter. Every draw of
// n values reserves a contiguous range of counter blocks and value i of the draw is a
// pure function of (key, first block, i), so compiled code calling these entry points
// (or reproducing them) draws exactly the same numbers, in any thread split.
// Default state: seed 0, counter 0.
#pragma once

#include <array>
#include <cstdint>

#include "Tensor.h"

namespace tdl::rt {

// One Philox4x32-10 block.
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

struct RngState {
  uint64_t key = 0;
  uint64_t counter = 0;  // next unused block
};

void seed(uint64_t s);  // key = s, counter = 0
RngState rng_state();
void set_rng_state(RngState s);
// Reserves `blocks` counter blocks; returns the first.
uint64_t rng_reserve(uint64_t blocks);

// U[0, 1) in f32 (24 random bits) or f64 (53 bits).
Tensor rand(const Shape& shape, DType dtype = DType::F32);
// Standard normal by Box–Muller.
Tensor randn(const Shape& shape, DType dtype = DType::F32);
// Uniform integers in [lo, hi), i64; lo < hi else Error.
Tensor randint(int64_t lo, int64_t hi, const Shape& shape);
// A random permutation of 0..n-1, i64 (Fisher–Yates).
Tensor permutation(int64_t n);

}  // namespace tdl::rt
