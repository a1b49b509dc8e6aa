// A pass rewrites one function and says whether it changed anything (DESIGN habit 6).
// Passes live one per file in ir/passes/; the only list of them is ir/Pipeline.cpp.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "ir/IR.h"

namespace tdl::ir {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string_view name() const = 0;
  // Rewrites f; returns whether it changed it. Precondition: f verifies.
  virtual bool run(Function& f) = 0;
};

std::unique_ptr<Pass> create_constant_fold_pass();
std::unique_ptr<Pass> create_simplify_pass();
std::unique_ptr<Pass> create_cse_pass();
std::unique_ptr<Pass> create_dce_pass();
// Replaces symbolic dims by known sizes (sym name → size), and then every symbol whose
// size follows from those.
std::unique_ptr<Pass> create_specialize_pass(std::map<std::string, int64_t> sizes);

}  // namespace tdl::ir
