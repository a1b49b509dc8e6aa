// Element types of tensors (SPEC §2): bool < i32 < i64 < f32 < f64. And i8, which the
// language does not name: the storage of int8-quantized weights in exported models
// (`tdl export --quantize int8`, docs/quantization.md), read only by the quantization ops
// (dequantize, qgemm) and the weight I/O; every other kernel refuses it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tdl::rt {

enum class DType : uint8_t { Bool, I32, I64, F32, F64, I8 };

inline constexpr int kNumDTypes = 6;

// "bool", "i32", "i64", "f32", "f64", "i8".
std::string_view dtype_name(DType d);
// The inverse of dtype_name; nullopt for an unknown name.
std::optional<DType> dtype_from_name(std::string_view name);

constexpr size_t itemsize(DType d) {
  switch (d) {
    case DType::Bool: return 1;
    case DType::I8: return 1;
    case DType::I32: return 4;
    case DType::F32: return 4;
    case DType::I64: return 8;
    case DType::F64: return 8;
  }
  return 0;
}

constexpr bool is_float(DType d) { return d == DType::F32 || d == DType::F64; }
constexpr bool is_integer(DType d) { return d == DType::I32 || d == DType::I64; }

// The common dtype of two operands: the larger along bool < i32 < i64 < f32 < f64
// (so any integer with f32 gives f32); i8 (never an operand of these) ranks below i32.
constexpr int promote_rank(DType d) { return d == DType::I8 ? 1 : d == DType::Bool ? 0 : static_cast<int>(d) + 1; }
constexpr DType promote(DType a, DType b) { return promote_rank(a) < promote_rank(b) ? b : a; }

// The C++ element type of each dtype. Bool is stored as C++ `bool` (one byte, 0 or 1;
// file readers normalise bytes to 0/1).
template <DType D> struct CType;
template <> struct CType<DType::Bool> { using type = bool; };
template <> struct CType<DType::I32> { using type = int32_t; };
template <> struct CType<DType::I64> { using type = int64_t; };
template <> struct CType<DType::F32> { using type = float; };
template <> struct CType<DType::F64> { using type = double; };
template <> struct CType<DType::I8> { using type = int8_t; };
template <DType D> using ctype_t = typename CType<D>::type;

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<bool>() { return DType::Bool; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<int8_t>() { return DType::I8; }

// What a kernel of the general dtypes says when given an i8 tensor (see above).
[[noreturn]] void i8_unsupported();

// Calls f(T{}) with T the C++ type of d:  dispatch(d, [&](auto tag) { using T = decltype(tag); ... });
template <class F>
decltype(auto) dispatch(DType d, F&& f) {
  switch (d) {
    case DType::Bool: return f(bool{});
    case DType::I32: return f(int32_t{});
    case DType::I64: return f(int64_t{});
    case DType::F32: return f(float{});
    case DType::F64: break;
    case DType::I8: i8_unsupported();
  }
  return f(double{});
}

}  // namespace tdl::rt
