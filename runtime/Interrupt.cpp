#include "runtime/Interrupt.h"

#include "runtime/Error.h"

// Defined here, declared extern "C" in the header.
volatile int32_t tdl_interrupt_requested = 0;

namespace tdl::rt {

void check_interrupt_slow() {
  if (tdl_interrupt_requested == 0) return;
  tdl_interrupt_requested = 0;
  throw Error(kInterruptedMessage);
}

}  // namespace tdl::rt
