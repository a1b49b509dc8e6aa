// A request to stop the running code (issue 23): a notebook's interrupt, delivered as
// SIGINT. Whoever handles the signal (the Jupyter kernel's signal thread) sets the flag;
// the VM tests it at every loop back-edge and compiled graph fns at each iteration of a
// `while` whose trip count is not known to be bounded, and both stop with the error
// "interrupted" at the running line. Nothing else in the process is touched, so the
// session and its names survive. Without a handler (tdl run), SIGINT ends the process as
// before and the flag stays clear.
#pragma once

#include <cstdint>

// Read by generated code (codegen/Lower.cpp) by this name: a plain C symbol.
extern "C" volatile int32_t tdl_interrupt_requested;

namespace tdl::rt {

inline constexpr const char* kInterruptedMessage = "interrupted";

inline bool interrupt_pending() { return tdl_interrupt_requested != 0; }
inline void request_interrupt() { tdl_interrupt_requested = 1; }
inline void clear_interrupt() { tdl_interrupt_requested = 0; }
// Throws Error("interrupted") (and clears the request) when one is pending.
void check_interrupt_slow();
inline void check_interrupt() {
  if (__builtin_expect(tdl_interrupt_requested != 0, 0)) check_interrupt_slow();
}

}  // namespace tdl::rt
