#include "ThreadPool.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace tdl::rt {

namespace {

thread_local bool t_in_pool_task = false;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// How long an idle thread keeps polling for the next job before it sleeps (TDL_SPIN_US,
// default 100 µs): a graph fn's parallel kernels follow each other within microseconds,
// and waking a sleeping thread costs tens of microseconds on a virtual machine. Polling
// yields the CPU (sched_yield) after a short busy phase, so another runnable thread, such
// as OpenBLAS's, is not starved.
std::chrono::nanoseconds spin_time() {
  static const std::chrono::nanoseconds t = [] {
    long us = 100;
    if (const char* env = std::getenv("TDL_SPIN_US")) us = std::max(0L, std::min(std::atol(env), 100000L));
    return std::chrono::nanoseconds(us * 1000);
  }();
  return t;
}

// Polls `ready` until it returns true or the spin time passes; returns its last value.
template <class F>
bool spin_until(F&& ready) {
  if (ready()) return true;
  const auto limit = spin_time();
  if (limit.count() == 0) return false;
  for (int i = 0; i < 256; ++i) {
    cpu_relax();
    if (ready()) return true;
  }
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < limit) {
    for (int i = 0; i < 16; ++i) {
      cpu_relax();
      if (ready()) return true;
    }
    sched_yield();
    if (ready()) return true;
  }
  return false;
}

// The pool runs one job (a parallel_for call) at a time. Publishing a job: the generation
// becomes odd while the job's fields are written (after every worker has left the previous
// job), then even and new. A worker announces itself in `inside_` and re-reads the
// generation before it touches the job (both sequentially consistent: either the writer
// sees the worker and waits, or the worker sees the odd or newer generation and backs off).
class Pool {
 public:
  explicit Pool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { worker_loop(); });
  }
  ~Pool() {
    stop_.store(true);
    {
      std::lock_guard<std::mutex> lk(mu_);
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int size() const { return static_cast<int>(threads_.size()) + 1; }

  // Returns false when the pool is busy (the caller then runs serially).
  bool run(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
    std::unique_lock<std::mutex> busy(job_mu_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    uint64_t g = gen_.load();
    gen_.store(g + 1);  // odd: being written
    while (inside_.load() != 0) cpu_relax();
    fn_ = &fn;
    n_ = n;
    chunk_ = chunk;
    chunks_ = (n + chunk - 1) / chunk;
    next_.store(0);
    done_.store(0);
    error_ = nullptr;
    gen_.store(g + 2);
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lk(mu_);
      cv_.notify_all();
    }
    work();
    auto finished = [&] { return done_.load() == chunks_; };
    if (!spin_until(finished)) {
      std::unique_lock<std::mutex> lk(mu_);
      waiting_.store(true);
      done_cv_.wait(lk, finished);
      waiting_.store(false);
    }
    std::exception_ptr err = error_;
    error_ = nullptr;
    if (err) std::rethrow_exception(err);
    return true;
  }

 private:
  // Takes chunks of the current job until none is left.
  void work() {
    bool saved = t_in_pool_task;
    t_in_pool_task = true;
    int64_t finished = 0;
    for (;;) {
      int64_t c = next_.fetch_add(1);
      if (c >= chunks_) break;
      int64_t b = c * chunk_, e = std::min(n_, b + chunk_);
      try {
        (*fn_)(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lk(error_mu_);
        if (!error_) error_ = std::current_exception();
      }
      ++finished;
    }
    t_in_pool_task = saved;
    if (finished && done_.fetch_add(finished) + finished == chunks_ && waiting_.load()) {
      std::lock_guard<std::mutex> lk(mu_);
      done_cv_.notify_all();
    }
  }

  void worker_loop() {
    uint64_t seen = 0;
    for (;;) {
      auto fresh = [&] {
        uint64_t g = gen_.load();
        return stop_.load() || (g != seen && g % 2 == 0);
      };
      if (!spin_until(fresh)) {
        std::unique_lock<std::mutex> lk(mu_);
        sleepers_.fetch_add(1);
        cv_.wait(lk, fresh);
        sleepers_.fetch_sub(1);
      }
      if (stop_.load()) return;
      uint64_t g = gen_.load();
      if (g % 2 != 0) continue;
      inside_.fetch_add(1);
      if (gen_.load() == g) {
        seen = g;
        work();
      }
      inside_.fetch_sub(1);
    }
  }

  std::vector<std::thread> threads_;
  std::mutex job_mu_;  // one job at a time
  std::mutex mu_;      // sleeping and waking
  std::condition_variable cv_, done_cv_;
  std::atomic<bool> stop_{false}, waiting_{false};
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> inside_{0}, sleepers_{0};
  // The current job (written only while the generation is odd and no worker is inside).
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, chunk_ = 1, chunks_ = 0;
  std::atomic<int64_t> next_{0}, done_{0};
  std::mutex error_mu_;
  std::exception_ptr error_;
};

int configured_threads() {
  if (const char* env = std::getenv("TDL_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return std::min(n, 256);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(std::min(hw, 256u));
}

Pool& pool() {
  static Pool p(configured_threads() - 1);
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (n < 2 * grain || t_in_pool_task || num_threads() == 1) {
    fn(0, n);
    return;
  }
  int64_t threads = num_threads();
  int64_t chunks = std::min<int64_t>(n / grain, threads * 4);
  int64_t chunk = (n + chunks - 1) / chunks;
  if (!pool().run(n, chunk, fn)) fn(0, n);
}

}  // namespace tdl::rt
