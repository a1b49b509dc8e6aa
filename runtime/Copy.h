// Internal: dtype-agnostic copies. Elements are moved as same-sized unsigned integers
// (1, 4 or 8 bytes), so one kernel serves every dtype.
#pragma once

#include <cstdint>
#include <cstring>

#include "DType.h"
#include "Error.h"

namespace tdl::rt::detail {

// Calls f(U{}) with U the unsigned integer type of `item` bytes.
template <class F>
decltype(auto) dispatch_bits(size_t item, F&& f) {
  switch (item) {
    case 1: return f(uint8_t{});
    case 2: return f(uint16_t{});
    case 4: return f(uint32_t{});
    case 8: break;
    default: throw InternalError("dispatch_bits: unsupported item size");
  }
  return f(uint64_t{});
}

}  // namespace tdl::rt::detail
