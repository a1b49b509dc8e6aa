// Parsing one file: ANTLR lexer → nesting pre-check → ANTLR parser (all syntax
// errors, at most kMaxSyntaxErrors) → AstBuilder → Module.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include "frontend/Ast.h"
#include "frontend/Diagnostics.h"

namespace tdl {

constexpr int kMaxSyntaxErrors = 20;
// The most tokens a source file may have (about 150 000 lines of ordinary code): parse trees
// take about 1.5 KiB a token, and larger data belongs in data files.
constexpr size_t kMaxTokens = 500000;

// Parses file `fileId` of `sm`. Returns null when there were syntax errors
// (all of them reported through `diags`).
std::unique_ptr<Module> parseModule(const SourceManager& sm, uint32_t fileId, DiagEngine& diags);

// Runs `fn` on a thread with a large stack (deep but legal input must not
// overflow the 8 MiB default of the main thread). Exceptions propagate.
void runWithLargeStack(const std::function<void()>& fn);

}  // namespace tdl
