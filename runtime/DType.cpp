#include "DType.h"

#include "Error.h"

namespace tdl::rt {

static constexpr std::string_view kNames[kNumDTypes] = {"bool", "i32", "i64", "f32", "f64", "i8"};

std::string_view dtype_name(DType d) { return kNames[static_cast<int>(d)]; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (int i = 0; i < kNumDTypes; ++i)
    if (kNames[i] == name) return static_cast<DType>(i);
  return std::nullopt;
}

void i8_unsupported() {
  throw Error("internal: an i8 tensor (int8-quantized weights) reached an op other than dequantize or qgemm");
}

}  // namespace tdl::rt
