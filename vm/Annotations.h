// Checking values against type annotations (SPEC §3): `f32`, `f32[]`,
// `f32[3, ?]`, `f32[N, 784]` (named dims agree across one call's parameters),
// record types `{w: T, b: T}` and tuple types `(T, T)`.
#pragma once
#include <map>
#include <string>

#include "frontend/Ast.h"
#include "vm/Value.h"

namespace tdl::vm {

using DimBindings = std::map<std::string, int64_t>;

// Whether `v` matches `t`. A weak scalar matches a dtype of its kind or a
// wider one and is converted to it in place (so `s: f32[] = 2.0` holds an f32).
bool matchesAnnotation(Value& v, const TypeExpr& t, DimBindings& dims);

// Whether `t` names a dim (f32[N, 10]): a return annotation that does is checked against
// the sizes the call's parameters bound (SPEC §3: named dims agree across one call).
bool namesDims(const TypeExpr& t);

}  // namespace tdl::vm
