// The bytecode disassembler (`tdl emit FILE --stage bytecode`, and the
// instruction text of `--trace`): each function's instructions with their
// operands resolved, grouped under the source lines they come from.
#pragma once
#include <string>

#include "frontend/Source.h"
#include "vm/Chunk.h"

namespace tdl::vm {

// One instruction: "0007  Add          r3 r1 r2".
std::string disassembleInstr(const FnProto& p, size_t at);
// A function and, after it, the functions it creates.
std::string disassemble(const FnProto& p, const SourceManager& sm);
// Every module's top-level code, main module first.
std::string disassemble(const Program& prog, const SourceManager& sm);

}  // namespace tdl::vm
