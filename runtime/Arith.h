// Internal: scalar arithmetic shared by kernels. Integers wrap (two's complement) by
// computing in the unsigned type, so there is no signed-overflow UB. max/min propagate
// NaN as NumPy's maximum/minimum do.
#pragma once

#include <type_traits>

namespace tdl::rt::detail {

template <class T> using uns_t = std::make_unsigned_t<T>;

template <class T> inline T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return static_cast<T>(static_cast<uns_t<T>>(a) + static_cast<uns_t<T>>(b));
  else return a + b;
}
template <class T> inline T wrap_sub(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return static_cast<T>(static_cast<uns_t<T>>(a) - static_cast<uns_t<T>>(b));
  else return a - b;
}
template <class T> inline T wrap_mul(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return static_cast<T>(static_cast<uns_t<T>>(a) * static_cast<uns_t<T>>(b));
  else return a * b;
}
template <class T> inline T wrap_neg(T a) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    return static_cast<T>(uns_t<T>(0) - static_cast<uns_t<T>>(a));
  else return -a;
}
template <class T> inline T max_of(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) return (a > b || a != a) ? a : b;
  else return a > b ? a : b;
}
template <class T> inline T min_of(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) return (a < b || a != a) ? a : b;
  else return a < b ? a : b;
}

}  // namespace tdl::rt::detail
