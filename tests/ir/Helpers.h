// Shared helpers of the IR unit tests.
#pragma once

#include <string>

#include "ir/IR.h"
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

namespace tdl::ir::test {

inline TensorType ty(DType d, std::vector<Dim> dims) { return TensorType(d, std::move(dims)); }
inline Dim K(int64_t n) { return Dim::known(n); }
inline Dim S(const char* s) { return Dim::symbolic(s); }

// Parses, verifies and re-prints; fails the test on any error.
inline std::unique_ptr<Module> parse_ok(const std::string& text) {
  auto m = parse_module(text);
  auto errors = verify(*m);
  INFO(text);
  for (auto& e : errors) UNSCOPED_INFO(e);
  REQUIRE(errors.empty());
  return m;
}

// The single verifier message of `text` (which must parse).
inline std::string verify_error(const std::string& text) {
  auto m = parse_module(text);
  auto errors = verify(*m);
  INFO(text);
  REQUIRE(errors.size() >= 1);
  return errors[0];
}

}  // namespace tdl::ir::test
