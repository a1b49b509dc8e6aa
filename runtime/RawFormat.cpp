#include "RawFormat.h"

#include <cstring>

namespace tdl::rt::detail {

std::optional<DType> load_dtype(RawFormat f) {
  switch (f.kind) {
    case RawKind::Bool: return f.size == 1 ? std::optional(DType::Bool) : std::nullopt;
    case RawKind::Int:
      if (f.size == 1 || f.size == 2 || f.size == 4) return DType::I32;
      if (f.size == 8) return DType::I64;
      return std::nullopt;
    case RawKind::UInt:
      if (f.size == 1 || f.size == 2) return DType::I32;
      if (f.size == 4) return DType::I64;
      return std::nullopt;
    case RawKind::Float:
      if (f.size == 2 || f.size == 4) return DType::F32;
      if (f.size == 8) return DType::F64;
      return std::nullopt;
    case RawKind::BFloat: return f.size == 2 ? std::optional(DType::F32) : std::nullopt;
  }
  return std::nullopt;
}

bool is_native(RawFormat f) {
  if (f.big_endian && f.size > 1) return false;
  switch (f.kind) {
    case RawKind::Int: return f.size == 4 || f.size == 8;
    case RawKind::Float: return f.size == 4 || f.size == 8;
    default: return false;  // bool needs normalising
  }
}

namespace {

uint64_t load_uint(const unsigned char* p, int size, bool big) {
  uint64_t v = 0;
  for (int i = 0; i < size; ++i) {
    int k = big ? i : size - 1 - i;
    v = v << 8 | p[k];
  }
  return v;
}

float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while ((man & 0x400) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | man << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

void convert_raw(const unsigned char* src, RawFormat f, int64_t n, Tensor& dst) {
  if (is_native(f)) {
    std::memcpy(dst.mutable_raw(), src, static_cast<size_t>(n) * f.size);
    return;
  }
  void* out = dst.mutable_raw();
  for (int64_t i = 0; i < n; ++i) {
    uint64_t u = load_uint(src + i * f.size, f.size, f.big_endian);
    switch (f.kind) {
      case RawKind::Bool: static_cast<bool*>(out)[i] = u != 0; break;
      case RawKind::Int: {
        int shift = 64 - 8 * f.size;
        int64_t v = static_cast<int64_t>(u << shift) >> shift;  // sign-extend
        if (dst.dtype() == DType::I32) static_cast<int32_t*>(out)[i] = static_cast<int32_t>(v);
        else static_cast<int64_t*>(out)[i] = v;
        break;
      }
      case RawKind::UInt:
        if (dst.dtype() == DType::I32) static_cast<int32_t*>(out)[i] = static_cast<int32_t>(u);
        else static_cast<int64_t*>(out)[i] = static_cast<int64_t>(u);
        break;
      case RawKind::Float:
        if (f.size == 2) {
          static_cast<float*>(out)[i] = half_to_float(static_cast<uint16_t>(u));
        } else if (f.size == 4) {
          uint32_t b = static_cast<uint32_t>(u);
          std::memcpy(static_cast<float*>(out) + i, &b, 4);
        } else {
          std::memcpy(static_cast<double*>(out) + i, &u, 8);
        }
        break;
      case RawKind::BFloat: {
        uint32_t b = static_cast<uint32_t>(u) << 16;
        std::memcpy(static_cast<float*>(out) + i, &b, 4);
        break;
      }
    }
  }
}

}  // namespace tdl::rt::detail
