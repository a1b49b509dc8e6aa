#include "ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace tdl::rt {

namespace {

thread_local bool t_in_pool_task = false;

// One parallel_for call; shared by the threads that work on it.
struct Job {
  const std::function<void(int64_t, int64_t)>* fn;
  int64_t n, chunk, chunks;
  std::atomic<int64_t> next{0};
  int64_t done = 0;  // guarded by Pool::mu_
  std::exception_ptr error;  // guarded by Pool::mu_
};

class Pool {
 public:
  explicit Pool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { worker_loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int size() const { return static_cast<int>(threads_.size()) + 1; }

  // Returns false when the pool is busy (the caller then runs serially).
  bool run(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
    std::unique_lock<std::mutex> busy(job_mu_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    job->n = n;
    job->chunk = chunk;
    job->chunks = (n + chunk - 1) / chunk;
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = job;
      ++generation_;
    }
    cv_.notify_all();
    work(*job);
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return job->done == job->chunks; });
    job_.reset();
    if (job->error) std::rethrow_exception(job->error);
    return true;
  }

 private:
  void work(Job& job) {
    bool saved = t_in_pool_task;
    t_in_pool_task = true;
    int64_t finished = 0;
    for (;;) {
      int64_t c = job.next.fetch_add(1);
      if (c >= job.chunks) break;
      int64_t b = c * job.chunk, e = std::min(job.n, b + job.chunk);
      try {
        (*job.fn)(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!job.error) job.error = std::current_exception();
      }
      ++finished;
    }
    t_in_pool_task = saved;
    if (finished) {
      std::lock_guard<std::mutex> lk(mu_);
      job.done += finished;
      if (job.done == job.chunks) done_cv_.notify_all();
    }
  }

  void worker_loop() {
    uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || (job_ && generation_ != seen); });
        if (stop_) return;
        job = job_;
        seen = generation_;
      }
      work(*job);
    }
  }

  std::vector<std::thread> threads_;
  std::mutex job_mu_;  // one job at a time
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  bool stop_ = false;
  std::shared_ptr<Job> job_;
  uint64_t generation_ = 0;
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
