// Internal: element formats found in files (.npy descr, safetensors dtype) and their
// conversion to TDL dtypes. Narrow integers widen to i32 (u32 to i64), f16/bf16 to f32.
#pragma once

#include <cstdint>
#include <optional>

#include "Tensor.h"

namespace tdl::rt::detail {

enum class RawKind : uint8_t { Bool, Int, UInt, Float, BFloat };

struct RawFormat {
  RawKind kind;
  int size;  // bytes per element
  bool big_endian = false;
};

// The TDL dtype a raw format loads as; nullopt when unsupported (u64, f128, ...).
std::optional<DType> load_dtype(RawFormat f);
// Converts n elements at src (packed, in format f) into dst (of load_dtype(f), n elems).
// Bool bytes are normalised to 0/1.
void convert_raw(const unsigned char* src, RawFormat f, int64_t n, Tensor& dst);
// Whether the raw bytes can be copied straight into a tensor of load_dtype(f).
bool is_native(RawFormat f);

}  // namespace tdl::rt::detail
