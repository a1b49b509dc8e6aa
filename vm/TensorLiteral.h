// Tensor literals: a rectangular bracket literal of numeric/bool leaves
// (Sema marks it isTensorLit) becomes one tensor constant at compile time.
#pragma once
#include "frontend/Ast.h"
#include "vm/Value.h"

namespace tdl::vm {

// dtype (SPEC §2): all bool → bool; any float → f32; else i64 (bools count as 0/1).
Value tensorLiteral(const Expr& e);

}  // namespace tdl::vm
