// Bytecode: instructions, the per-function chunk (code, line table, constant
// tables) and FnProto, the compiled form of one function or module top level.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "frontend/Ast.h"
#include "vm/Value.h"

namespace tdl::vm {

enum class Op : uint8_t {
#define OPCODE(name, format, semantics) name,
#include "vm/opcodes.def"
};

// How the disassembler shows an instruction's operands.
enum class OpFormat : uint8_t { ABC, AK, AJ, AF, AS, AN, AI, AP, AT, AM };

const char* opName(Op op);
OpFormat opFormat(Op op);
const char* opSemantics(Op op);

// Instr::flags of binary operators: an operand is a constant (K[B] / K[C])
// instead of a register, so literals need no LoadK.
// kTempB/kTempC: the operand register is a temporary that dies with this
// instruction, so its tensor buffer may be reused for the result.
enum InstrFlag : uint8_t { kConstB = 1, kConstC = 2, kTempB = 4, kTempC = 8 };

struct Instr {
  Op op;
  uint8_t flags = 0;
  uint16_t a = 0, b = 0, c = 0;
  int jump() const { return static_cast<int16_t>(b); }  // AJ: signed offset in B
};

// Subscript flags of an Index / SetPath step: what registers each subscript uses.
// kSubEllipsis: NumPy's `...` (with kSubSlice, no bounds: no registers).
enum SubFlag : uint8_t { kSubSlice = 1, kSubLo = 2, kSubHi = 4, kSubStep = 8, kSubEllipsis = 16 };
// Registers one subscript occupies.
inline int subRegs(uint8_t f) {
  if (!(f & kSubSlice)) return 1;
  return ((f & kSubLo) != 0) + ((f & kSubHi) != 0) + ((f & kSubStep) != 0);
}

// One step of an assignment target `r.layers[0].w`.
struct PathStep {
  bool isField = false;
  std::string name;           // field name
  std::vector<uint8_t> subs;  // subscript flags
  int firstReg = 0;           // registers of the subscripts
  Loc loc;                    // for errors at this step
};
struct PathDesc {
  bool global = false;        // the target is G[A] (else R[A])
  std::string varName;
  std::vector<PathStep> steps;
};

// A method-call site `x.name(...)`.
struct MethodSite {
  std::string name;
  Names kwNames;  // null without keywords
  // ListMethod: the number of arguments, and whether the list is global B of `module`.
  int argc = 0;
  bool global = false;
  int module = 0;
};

struct Chunk {
  std::vector<Instr> code;
  std::vector<Loc> locs;  // the line table: the source position of each instruction
  // Constant tables; an instruction's format says which one its operand indexes.
  std::vector<Value> values;             // AK
  std::vector<const struct FnProto*> fns;  // AF
  std::vector<std::string> strings;      // AS
  std::vector<Names> names;              // AN
  std::vector<std::vector<uint8_t>> indexes;  // AI
  std::vector<PathDesc> paths;           // AP
  std::vector<const TypeExpr*> types;    // AT
  std::vector<MethodSite> sites;         // AM
};

struct FnProto {
  std::string name;              // "<lambda>", "<module nn>" for top-level code
  const FnDecl* decl = nullptr;  // null for a module's top-level code
  int module = 0;
  bool isTopLevel = false;
  bool isGraph = false;
  int numParams = 0;
  std::vector<std::string> paramNames;
  std::vector<const TypeExpr*> paramTypes;  // null where unannotated
  std::vector<bool> hasDefault;
  const TypeExpr* retType = nullptr;
  bool retNamesDims = false;  // retType names a dim: checked against the parameters' bindings
  std::vector<Ref> captures;  // where each capture comes from in the creating frame
  int numRegs = 0;
  Chunk chunk;
};

// Everything compiled from one Compilation.
struct Program {
  std::vector<std::unique_ptr<FnProto>> protos;  // owns every proto
  std::vector<const FnProto*> moduleCode;        // per module id: its top-level code
};

}  // namespace tdl::vm
