// `tdl emit --stage ast`: a readable, indented dump of the AST with each
// node's line:col.
#pragma once
#include <string>

#include "frontend/Ast.h"

namespace tdl {
std::string printAst(const Module& m);
}
