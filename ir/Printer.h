// The text form of the IR (read back by Parser.h; print → parse → print is the identity).
//
//   func @layer<B>(%0: f32[B, 4], %1: f32[4, 3]) -> (f32[B, 3]) {
//     %2 = matmul(%0, %1) : f32[B, 3] loc(3:12)
//     %3 = reduce(%2) {axes = [1], keepdims = false, kind = "sum"} : f32[B] loc(4:10)
//     %4, %5 = while(%a, %b) : i64[], f32[] {
//     ^cond(%6: i64[], %7: f32[]):
//       ...
//       yield(%c)
//     } {
//     ^body(%8: i64[], %9: f32[]):
//       ...
//       yield(%x2, %y2)
//     }
//     return(%3) loc(5:3)
//   }
//
// `<B>` declares the function's symbolic dims. Values are renumbered in program order.
// Attributes: 3, 1.5 (floats always show a '.', an exponent, nan or inf), "text", true,
// [1, 2], f32, and dense tensors: dense<[1, 2, 3, 4] : i64[2, 2]> (elements flat, C
// order) up to kMaxInlineElements, dense<splat 0.0 : f32[1000]> when all are equal, else
// dense<hex "0000803f..." : f32[1000]> (the little-endian bytes), or, where the printer is
// given a weight namer (`tdl export`, docs/formats/tdlm.md), dense<weight "w0" : f32[784, 128]>:
// the tensor is stored elsewhere under that name, and the parser is given its lookup.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <string_view>

#include "ir/IR.h"

namespace tdl::ir {

// Dense constants with more elements than this print as hex bytes.
inline constexpr int64_t kMaxInlineElements = 16;

void print(std::ostream& os, const Module& m);
void print(std::ostream& os, const Function& f);
std::string to_string(const Module& m);
std::string to_string(const Function& f);
std::string attr_to_string(const Attribute& a);
// Whether a dense constant prints in the text itself (a short list or a splat), not as hex
// bytes: what `tdl export` keeps in the IR instead of storing it as a weight.
bool prints_inline(const rt::Tensor& t);
// The name under which a dense constant is stored outside the text, or "" to print it inline.
using WeightNamer = std::function<std::string(const rt::Tensor&)>;
std::string to_string(const Function& f, const WeightNamer& weights);

// 64-bit FNV-1a of `text`, continuing from `h` (the offset basis by default): how the trace
// cache, native executables and the compile cache name an optimized function by its text.
inline uint64_t fnv1a(std::string_view text, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace tdl::ir
