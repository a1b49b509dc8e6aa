// A checked program (every module's AST after Sema, and the source text of every file)
// as bytes and back. `tdl build` embeds these bytes in a native executable, whose VM runs
// the program without the parser (so without ANTLR): the AST is the program, and the
// source text is there for diagnostics' carets.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "frontend/Ast.h"

namespace tdl {

std::string serializeProgram(const SourceManager& sources, const std::vector<std::unique_ptr<Module>>& modules);

// Fills `sources` and `modules` (both empty); false with `why` when the bytes are not
// a program written by serializeProgram of this version.
bool deserializeProgram(const std::string& bytes, SourceManager& sources, std::vector<std::unique_ptr<Module>>& modules,
                        std::string& why);

}  // namespace tdl
