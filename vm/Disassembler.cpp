#include "vm/Disassembler.h"

#include <fmt/format.h>

#include "vm/Builtins.h"
#include "vm/Format.h"

namespace tdl::vm {

namespace {

struct OpInfo {
  const char* name;
  OpFormat format;
  const char* semantics;
};

const OpInfo kOps[] = {
#define OPCODE(name, format, semantics) {#name, OpFormat::format, semantics},
#include "vm/opcodes.def"
};

std::string shortRepr(const Value& v) {
  std::string s = repr(v);
  for (auto& c : s)
    if (c == '\n') c = ' ';
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

std::string namesText(const Names& n) {
  std::string s;
  for (size_t i = 0; i < n->size(); ++i) s += (i ? ", " : "") + (*n)[i];
  return s;
}

std::string flagsText(const std::vector<uint8_t>& flags) {
  std::string s;
  for (size_t i = 0; i < flags.size(); ++i) {
    uint8_t f = flags[i];
    if (i) s += ", ";
    if (!(f & kSubSlice)) {
      s += "i";
      continue;
    }
    if (f & kSubEllipsis) {
      s += "...";
      continue;
    }
    s += (f & kSubLo) ? "lo" : "";
    s += ":";
    s += (f & kSubHi) ? "hi" : "";
    if (f & kSubStep) s += ":step";
  }
  return s;
}

}  // namespace

const char* opName(Op op) { return kOps[static_cast<int>(op)].name; }
OpFormat opFormat(Op op) { return kOps[static_cast<int>(op)].format; }
const char* opSemantics(Op op) { return kOps[static_cast<int>(op)].semantics; }

std::string disassembleInstr(const FnProto& p, size_t at) {
  const Instr& in = p.chunk.code[at];
  const Chunk& k = p.chunk;
  std::string ops;
  std::string note;
  switch (opFormat(in.op)) {
    case OpFormat::ABC: {
      std::string b = (in.flags & kConstB) ? fmt::format("k{}", in.b) : std::to_string(in.b);
      std::string c = (in.flags & kConstC) ? fmt::format("k{}", in.c) : std::to_string(in.c);
      ops = fmt::format("{} {} {}", in.a, b, c);
      if (in.flags & kConstB) note = shortRepr(k.values[in.b]);
      if (in.flags & kConstC) note += (note.empty() ? "" : ", ") + shortRepr(k.values[in.c]);
      break;
    }
    case OpFormat::AJ: ops = fmt::format("{} -> {:04}", in.a, static_cast<long>(at) + 1 + in.jump()); break;
    case OpFormat::AK: ops = fmt::format("{} k{}", in.a, in.b); note = shortRepr(k.values[in.b]); break;
    case OpFormat::AF: ops = fmt::format("{} f{}", in.a, in.b); note = fmt::format("fn {}", k.fns[in.b]->name); break;
    case OpFormat::AT: ops = fmt::format("{} t{}", in.a, in.b); note = k.types[in.b]->str(); break;
    case OpFormat::AP: {
      ops = fmt::format("{} p{} {}", in.a, in.b, in.c);
      const PathDesc& path = k.paths[in.b];
      note = (path.global ? "global " : "") + path.varName;
      for (auto& s : path.steps) note += s.isField ? "." + s.name : fmt::format("[{} @r{}]", flagsText(s.subs), s.firstReg);
      break;
    }
    case OpFormat::AS:
      ops = fmt::format("{} {} s{}", in.a, in.b, in.c);
      if (in.c != 0xFFFF) note = fmt::format("\"{}\"", k.strings[in.c]);
      break;
    case OpFormat::AN:
      ops = fmt::format("{} {} n{}", in.a, in.b, in.c);
      if (in.c) note = namesText(k.names[in.c - 1u]);
      break;
    case OpFormat::AI: ops = fmt::format("{} {} i{}", in.a, in.b, in.c); note = fmt::format("[{}]", flagsText(k.indexes[in.c])); break;
    case OpFormat::AM: {
      ops = fmt::format("{} {} m{}", in.a, in.b, in.c);
      const MethodSite& s = k.sites[in.c];
      note = fmt::format(".{}{}", s.name, s.kwNames ? fmt::format(" kw: {}", namesText(s.kwNames)) : "");
      break;
    }
  }
  if (in.op == Op::LoadBuiltin) note = builtinName(in.b);
  std::string text = fmt::format("{:04}  {:<12} {:<16}", at, opName(in.op), ops);
  if (!note.empty()) text += fmt::format("; {}", note);
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

std::string disassemble(const FnProto& p, const SourceManager& sm) {
  std::string out = fmt::format("== {}{} (params {}, registers {}) ==\n", p.isGraph ? "graph fn " : "", p.name,
                                p.numParams, p.numRegs);
  uint32_t lastLine = 0, lastFile = UINT32_MAX;
  for (size_t i = 0; i < p.chunk.code.size(); ++i) {
    const Loc& loc = p.chunk.locs[i];
    if (loc.valid() && (loc.line != lastLine || loc.file != lastFile) && loc.file < sm.size()) {
      const SourceFile& f = sm.file(loc.file);
      out += fmt::format("  -- {}:{}: {}\n", f.path, loc.line, std::string(f.lineText(loc.line)));
      lastLine = loc.line;
      lastFile = loc.file;
    }
    out += "  " + disassembleInstr(p, i) + "\n";
  }
  for (const FnProto* f : p.chunk.fns) {
    out += '\n';
    out += disassemble(*f, sm);
  }
  return out;
}

std::string disassemble(const Program& prog, const SourceManager& sm) {
  std::string out;
  for (size_t m = 0; m < prog.moduleCode.size(); ++m) {
    if (!prog.moduleCode[m]) continue;
    if (!out.empty()) out += "\n";
    out += disassemble(*prog.moduleCode[m], sm);
  }
  return out;
}

}  // namespace tdl::vm
