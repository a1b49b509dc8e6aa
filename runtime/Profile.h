// `tdl run --profile` (SPEC §8): time per op kind and per graph fn, and the peak tensor
// memory. Off unless enable() is called at start; when off, a Scope costs one branch.
//   Sections: eager tensor ops (operators and builtins the VM runs on tensors), graph fn
//   calls served by compiled code (a call the VM runs instead shows as eager ops), runtime ops called
//   from compiled code (matmul, gemm, reduce, ...; fused loops are native code inside the
//   graph fn's own time) and graph fn compilation (trace, optimize, LLVM).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace tdl::rt::prof {

enum class Section { EagerOp, GraphFn, CompiledOp, Compile };

extern bool g_on;
inline bool enabled() { return g_on; }
void enable();

void record(Section s, std::string_view name, double seconds);

// Times its lifetime into (section, name) when profiling is on.
class Scope {
 public:
  Scope(Section s, std::string_view name) {
    if (g_on) [[unlikely]] {
      on_ = true;
      s_ = s;
      name_ = name;
      t0_ = std::chrono::steady_clock::now();
    }
  }
  ~Scope() {
    if (on_) [[unlikely]]
      record(s_, name_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
  }
  // Records nothing after all (a graph fn call the VM runs instead).
  void cancel() { on_ = false; }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  bool on_ = false;
  Section s_ = Section::EagerOp;
  std::string_view name_;
  std::chrono::steady_clock::time_point t0_;
};

// Tensor storage accounting (runtime/Storage.cpp calls these when profiling is on).
void note_alloc(size_t bytes);
void note_free(size_t bytes);

// The report: one table per section (by total time, largest first), then the peak tensor
// memory. Empty when profiling is off.
std::string report();

}  // namespace tdl::rt::prof
