#include "Profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <vector>

namespace tdl::rt::prof {

bool g_on = false;

namespace {

struct Entry {
  long calls = 0;
  double seconds = 0;
};

struct State {
  std::mutex mu;
  std::map<std::string, Entry, std::less<>> sections[4];
  std::atomic<long long> live{0}, peak{0};  // signed: a buffer made before enable() may be freed after
  std::atomic<long> buffers{0};
  std::chrono::steady_clock::time_point start;
};

State& state() {
  static State* s = new State;  // never destroyed: the report may be taken at exit
  return *s;
}

}  // namespace

void enable() {
  state().start = std::chrono::steady_clock::now();
  g_on = true;
}

void record(Section s, std::string_view name, double seconds) {
  State& st = state();
  std::lock_guard<std::mutex> lk(st.mu);
  auto& m = st.sections[static_cast<int>(s)];
  auto it = m.find(name);
  if (it == m.end()) it = m.emplace(std::string(name), Entry{}).first;
  ++it->second.calls;
  it->second.seconds += seconds;
}

void note_alloc(size_t bytes) {
  State& st = state();
  long long b = static_cast<long long>(bytes);
  long long now = st.live.fetch_add(b, std::memory_order_relaxed) + b;
  long long p = st.peak.load(std::memory_order_relaxed);
  while (now > p && !st.peak.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
  }
  st.buffers.fetch_add(1, std::memory_order_relaxed);
}

void note_free(size_t bytes) { state().live.fetch_sub(static_cast<long long>(bytes), std::memory_order_relaxed); }

std::string report() {
  if (!g_on) return "";
  State& st = state();
  std::lock_guard<std::mutex> lk(st.mu);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - st.start).count();
  std::string out = fmt::format("profile: {:.3f} ms wall (the script, from its first statement)\n", wall * 1e3);
  static const char* titles[4] = {"eager tensor ops (operators and builtins run by the VM)",
                                  "graph fn calls served by compiled code (the first call of a signature compiles it; a call the VM runs instead counts its ops as eager ops)",
                                  "runtime ops inside compiled graph fns (fused loops are native code)",
                                  "compiling graph fns (trace, optimize, LLVM)"};
  for (int s = 0; s < 4; ++s) {
    auto& m = st.sections[s];
    if (m.empty()) continue;
    std::vector<std::pair<std::string, Entry>> rows(m.begin(), m.end());
    std::stable_sort(rows.begin(), rows.end(),
                     [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
    double total = 0;
    for (auto& r : rows) total += r.second.seconds;
    out += fmt::format("  {}\n    {:<28} {:>9} {:>11} {:>11} {:>6}\n", titles[s], "name", "calls", "total ms",
                       "mean us", "%");
    for (auto& [name, e] : rows)
      out += fmt::format("    {:<28} {:>9} {:>11.3f} {:>11.1f} {:>5.1f}%\n", name, e.calls, e.seconds * 1e3,
                         e.seconds * 1e6 / static_cast<double>(std::max<long>(e.calls, 1)),
                         total > 0 ? 100.0 * e.seconds / total : 0.0);
  }
  out += fmt::format("  peak tensor memory: {:.2f} MiB ({} buffers allocated)\n",
                     static_cast<double>(st.peak.load()) / (1024.0 * 1024.0), st.buffers.load());
  return out;
}

}  // namespace tdl::rt::prof
