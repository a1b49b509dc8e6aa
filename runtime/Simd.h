// Functions compiled for several x86 instruction sets, the best chosen when the program
// loads (GCC's target_clones): the runtime is built for baseline x86-64, where hot loops
// (the small-k product, argmax over a middle axis) vectorize poorly.
#pragma once

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define TDL_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TDL_SIMD_CLONES
#endif
