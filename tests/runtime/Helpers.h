// Small helpers for the runtime tests.
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "runtime/Runtime.h"

namespace tdl::rt::test {

inline Tensor f32(const std::vector<float>& v, Shape s = {}) {
  if (s.empty()) s = {static_cast<int64_t>(v.size())};
  return Tensor::from_vector(v, s);
}
inline Tensor f64(const std::vector<double>& v, Shape s = {}) {
  if (s.empty()) s = {static_cast<int64_t>(v.size())};
  return Tensor::from_vector(v, s);
}
inline Tensor i64(const std::vector<int64_t>& v, Shape s = {}) {
  if (s.empty()) s = {static_cast<int64_t>(v.size())};
  return Tensor::from_vector(v, s);
}
inline Tensor i32(const std::vector<int32_t>& v, Shape s = {}) {
  if (s.empty()) s = {static_cast<int64_t>(v.size())};
  return Tensor::from_vector(v, s);
}
inline Tensor b8(const std::vector<bool>& v, Shape s = {}) {
  if (s.empty()) s = {static_cast<int64_t>(v.size())};
  Tensor t = Tensor::empty(DType::Bool, s);
  for (size_t i = 0; i < v.size(); ++i) t.mutable_data<bool>()[i] = v[i];
  return t;
}
inline std::string str(const Tensor& t) { return format_tensor(t); }

// The message of the Error thrown by f ("" when none is thrown).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace tdl::rt::test
