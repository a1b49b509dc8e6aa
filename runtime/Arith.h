// Internal: scalar arithmetic shared by kernels. Integers wrap (two's complement) by
// computing in the unsigned type, so there is no signed-overflow UB. max/min propagate
// NaN as NumPy's maximum/minimum do.
#pragma once

#include <cmath>
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

// Python floor division / modulo (the kernels', and the VM's scalar fast path). Integers: b != 0 was checked; b == -1 avoids the
// INT_MIN / -1 trap. Floats follow NumPy's npy_divmod.
template <class T>
inline T floordiv_of(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == -1) return wrap_neg(a);
    T q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
  } else {
    if (b == 0) return a / b;
    T m = std::fmod(a, b);
    T div = (a - m) / b;
    if (m != 0 && ((b < 0) != (m < 0))) div -= 1;
    if (div == 0) return std::copysign(T(0), a / b);
    T fl = std::floor(div);
    if (div - fl > T(0.5)) fl += 1;
    return fl;
  }
}
template <class T>
inline T mod_of(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == -1) return 0;
    T r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  } else {
    T m = std::fmod(a, b);
    if (b == 0) return m;
    if (m != 0) {
      if ((b < 0) != (m < 0)) m += b;
    } else {
      m = std::copysign(T(0), b);
    }
    return m;
  }
}
}  // namespace tdl::rt::detail
