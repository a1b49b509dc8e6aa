// Reads the text form written by Printer.h back into a Module. `//` starts a comment
// that runs to the end of the line (lit's RUN/CHECK lines live in them).
//
// Bad input never crashes: every problem is a ParseError whose what() is
// `LINE:COL: error: MESSAGE` (1-based). Nesting of regions is limited to
// kMaxRegionDepth and dense constants to kMaxParsedElements elements, so hostile input
// cannot exhaust the stack or memory. The parser checks syntax and names only; types
// and scoping are the verifier's.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ir/IR.h"

namespace tdl::ir {

inline constexpr int kMaxRegionDepth = 128;
inline constexpr int64_t kMaxParsedElements = int64_t{1} << 26;

struct ParseError : std::runtime_error {
  ParseError(uint32_t line, uint32_t col, const std::string& message);
  uint32_t line, col;
  std::string message;
};

std::unique_ptr<Module> parse_module(std::string_view text);
// With `dense<weight "NAME" : T>` constants (Printer.h) resolved by `weights`, which returns
// the tensor stored under NAME or throws rt::Error; a tensor whose dtype or shape is not T's
// is a ParseError.
using WeightLookup = std::function<rt::Tensor(const std::string& name)>;
std::unique_ptr<Module> parse_module(std::string_view text, const WeightLookup& weights);

}  // namespace tdl::ir
