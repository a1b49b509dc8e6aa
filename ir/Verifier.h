// The IR verifier: structural and type invariants every pass must keep.
//   - operand/result/region counts as ops.def lists them;
//   - every block ends in its terminator (return in a function body, yield in a region)
//     and has no other terminator;
//   - SSA scoping: a value is used only after its definition, in its block or in regions
//     nested inside it;
//   - dtypes and shapes per op (ShapeInference), every symbolic dim declared by the
//     function;
//   - cond/while region signatures: cond yields its result types from both regions; while's
//     regions take the carried types, cond yields one bool[], body yields the carried types;
//     return yields the function's result types.
// A yielded or initial value may be more specific than the cond/while result type it
// feeds (f32[3] into f32[?0]): a symbolic result dim accepts any size.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "ir/IR.h"

namespace tdl::ir {

// Each message names the function, the op, its source location and the problem:
//   `@f: 'add' at 12:5: result type f32[3] does not match the inferred f32[4]`.
std::vector<std::string> verify(const Function& f);
std::vector<std::string> verify(const Module& m);

// Whether `actual` fits where `general` is expected (same dtype and rank; each dim equal
// or symbolic in `general`).
bool type_instance_of(const TensorType& actual, const TensorType& general);

}  // namespace tdl::ir
