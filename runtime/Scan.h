// Sorting and running reductions along one axis (SPEC §12: argsort, sort, topk, cumsum,
// cumprod). Both engines call these: eager builtins directly, graph fns through the IR ops
// argsort and scan (ir/Eval.cpp).
#pragma once

#include "Tensor.h"

namespace tdl::rt {

// The permutation that sorts x along `axis`, stable (equal elements keep their order), as
// i64 indices; `descending`: largest first. NaN counts as the largest value (last when
// ascending, first when descending, as NumPy and PyTorch place it).
Tensor argsort(const Tensor& x, int64_t axis = -1, bool descending = false);

// The running sum (prod = false) or product of x along `axis`; `reverse`: from the end
// (element i combines i..n-1). Result dtype as sum's and prod's: bool and integers give i64,
// floats keep theirs.
Tensor scan(const Tensor& x, int64_t axis, bool prod, bool reverse = false);

}  // namespace tdl::rt
