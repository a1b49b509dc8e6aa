// Element conversions with cast() semantics (SPEC §2): float -> integer truncates toward
// zero, -> bool tests != 0. NaN and out-of-range floats become the integer type's minimum
// (what x86 gives), never undefined behaviour.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

namespace tdl::rt {

template <class To, class From>
inline To convert(From x) {
  if constexpr (std::is_same_v<To, bool>) {
    return x != From(0);
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    constexpr From lo = static_cast<From>(std::numeric_limits<To>::min());  // -2^(n-1), exact
    if (x >= lo && x < -lo) return static_cast<To>(x);
    return std::numeric_limits<To>::min();
  } else {
    return static_cast<To>(x);
  }
}

}  // namespace tdl::rt
