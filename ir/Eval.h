// Evaluates one op on tensor operands by calling the runtime kernels, so constant folding
// (and any later reference interpreter) has exactly the runtime's semantics.
#pragma once

#include <optional>
#include <vector>

#include "ir/IR.h"
#include "runtime/Index.h"

namespace tdl::ir {

// The results of `op` applied to `operands`, or nullopt for ops that cannot be evaluated
// here (effects, regions, symbolic result shapes). Throws rt::Error when the runtime
// does (e.g. integer division by zero, an index out of range).
std::optional<std::vector<rt::Tensor>> evaluate(const Op& op, const std::vector<rt::Tensor>& operands);

// The index spec an `update` (x[i0, ...] = v) or `dyn_slice_update` (x[slices] = v) writes,
// from its operands (x, v, then the indices or bounds).
rt::IndexSpec update_spec(const Op& op, const std::vector<rt::Tensor>& operands);

}  // namespace tdl::ir
