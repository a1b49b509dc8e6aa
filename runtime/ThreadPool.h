// A small fixed thread pool for data-parallel kernels.
#pragma once

#include <cstdint>
#include <functional>

namespace tdl::rt {

// Kernels below this many elements run on the calling thread (thread hand-off costs
// more than the work).
inline constexpr int64_t kParallelThreshold = int64_t{1} << 16;

// Runs fn(begin, end) over [0, n) in chunks of at least `grain` indices, on the pool's
// threads and the caller. Runs serially when n < 2 * grain, when called from inside a
// pool task, or while another thread's job occupies the pool. The first exception thrown
// by a chunk is rethrown in the caller after all chunks finish.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Threads used, caller included (default: hardware concurrency, or TDL_NUM_THREADS).
int num_threads();

}  // namespace tdl::rt
