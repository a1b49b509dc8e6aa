// `tdl build FILE -o OUT` (SPEC §10): a native executable that runs without tdl, LLVM or
// ANTLR. It holds:
//   - the program image: every module's checked AST and source text
//     (frontend/AstSerialize), run by the VM of the runner (tools/runner/Main.cpp);
//   - for every graph fn whose parameters are all annotated with shapes, the code for the
//     version a call with those types traces to, compiled ahead of time through LLVM
//     (codegen::compileAot), with its op table; the runner traces a graph fn at its first
//     call as `tdl run` does and uses that code when the optimized IR is the same (by
//     hash of its text form) — any other version runs in the VM as an ordinary fn;
//   - the runner and the archives of the VM, IR, runtime ABI and runtime, linked by the
//     system's C++ compiler driver (static fmt and zlib; dynamic libstdc++, libm, libc and
//     OpenBLAS).
// Graph fns are traced at build time against the top-level fns of the program (hoisted)
// and the standard library modules (whose top level is run: they only define fns), never
// by running the program: a graph fn that reads another top-level value, or whose
// parameters lack shapes, runs in the VM, and the build warns about it by name.
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "tools/BuildConfig.h"
#include "codegen/Codegen.h"
#include "frontend/AstSerialize.h"
#include "ir/Printer.h"
#include "tools/Commands.h"
#include "vm/Compiler.h"
#include "vm/GraphCache.h"
#include "vm/Interpreter.h"

namespace tdl {

namespace fs = std::filesystem;
using vm::Tag;
using vm::Value;

namespace {

bool writeFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(f);
}

// Runs argv in `dir`; its output goes to ours. Returns the exit status (127: not started).
int runIn(const std::string& dir, const std::vector<std::string>& argv) {
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return 127;
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(127);
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execvp(a[0], a.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return 127;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string joinCmd(const std::vector<std::string>& argv) {
  std::string s;
  for (auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/tdl-build-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data())) path = buf.data();
  }
  ~TempDir() {
    if (!path.empty() && !std::getenv("TDL_KEEP_BUILD_DIR")) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
  std::string path;
};

// ---- top-level lets that can be evaluated at build time
// A graph fn captures the top-level lets it reads (SPEC §6). The build does not run the
// program, but a `let` bound once whose value is a pure expression — literals, operators,
// pure builtins, earlier such lets — has the same value at build time as when the program
// runs, so it is evaluated here and graph fns that read it can be compiled ahead of time.

bool pureBuiltin(const std::string& n) {
  static const std::set<std::string> impure = {
      "seed",  "rand",      "randn", "randint",  "permutation", "print", "load_npy", "save_npy",
      "load_csv", "save",   "load",  "time",     "args",        "exit",  "progress", "plot",
      "tape",  "grad",      "value_and_grad",     "tree_map"};
  return !impure.count(n);
}

bool pureExpr(const Expr* e, const std::set<int>& pure, int module) {
  if (!e) return true;
  switch (e->kind) {
    case ExprKind::Int: case ExprKind::Float: case ExprKind::Str: case ExprKind::Bool: case ExprKind::None:
      return true;
    case ExprKind::FStr:
      for (auto& p : e->parts)
        if (!pureExpr(p.expr.get(), pure, module)) return false;
      return true;
    case ExprKind::Name:
      if (e->ref.kind == RefKind::Builtin) return pureBuiltin(e->str);
      return e->ref.kind == RefKind::Global && e->ref.module == module && pure.count(e->ref.index) > 0;
    case ExprKind::Lambda: return false;
    case ExprKind::Call: {
      const Expr& callee = *e->kids[0];
      if (callee.kind != ExprKind::Name || callee.ref.kind != RefKind::Builtin || !pureBuiltin(callee.str)) return false;
      for (size_t i = 1; i < e->kids.size(); ++i)
        if (!pureExpr(e->kids[i].get(), pure, module)) return false;
      return true;
    }
    default:
      for (auto& k : e->kids)
        if (!pureExpr(k.get(), pure, module)) return false;
      for (auto& s : e->subs)
        if (!pureExpr(s.index.get(), pure, module) || !pureExpr(s.lo.get(), pure, module) ||
            !pureExpr(s.hi.get(), pure, module) || !pureExpr(s.step.get(), pure, module))
          return false;
      return true;
  }
}

// How many statements bind each top-level slot (lets, fors, withs, fns; an assignment counts
// twice: the slot is a var).
void countBindings(const Stmt* s, std::map<int, int>& n) {
  if (!s) return;
  std::function<void(const Pattern&)> pat = [&](const Pattern& p) {
    if (p.kind == Pattern::Name) {
      if (p.global) ++n[p.slot];
    } else {
      for (auto& q : p.elems) pat(q);
    }
  };
  if (s->kind == StmtKind::Let || s->kind == StmtKind::For) pat(s->pattern);
  if (s->kind == StmtKind::With && s->global) ++n[s->slot];
  if (s->kind == StmtKind::Fn && s->fn && s->fn->globalSlot >= 0) ++n[s->fn->globalSlot];
  if (s->kind == StmtKind::Assign && !s->exprs.empty() && s->exprs[0]->kind == ExprKind::Name &&
      s->exprs[0]->ref.kind == RefKind::Global)
    n[s->exprs[0]->ref.index] += 2;
  for (auto& x : s->stmts) countBindings(x.get(), n);
  countBindings(s->body.get(), n);
  countBindings(s->orelse.get(), n);
}

// Evaluates the pure top-level lets of module `m` (in order) into the VM's globals.
void evaluatePureLets(Module& m, vm::Program& prog, std::vector<std::unique_ptr<Module>>& modules, vm::Interpreter& interp) {
  std::map<int, int> bindings;
  for (auto& s : m.stmts) countBindings(s.get(), bindings);
  std::set<int> pure;
  for (size_t i = 0; i < m.stmts.size(); ++i) {
    Stmt* s = m.stmts[i].get();
    if (!s || s->kind != StmtKind::Let || s->isVar || s->pattern.kind != Pattern::Name || !s->pattern.global ||
        bindings[s->pattern.slot] != 1 || s->exprs.empty() || !pureExpr(s->exprs[0].get(), pure, m.id))
      continue;
    Module tmp;
    tmp.id = m.id;
    tmp.name = m.name;
    tmp.path = m.path;
    tmp.file = m.file;
    tmp.globalNames = m.globalNames;
    tmp.globalIsVar = m.globalIsVar;
    tmp.numTopLocals = m.numTopLocals;
    tmp.stmts.push_back(std::move(m.stmts[i]));
    try {
      vm::Compiler compiler(prog, modules);
      const vm::FnProto* code = compiler.compileModule(tmp, 0);
      interp.runCode(code);
      if (!interp.globalValue(m.id, s->pattern.slot).isUndef()) pure.insert(s->pattern.slot);
    } catch (...) {
      // An error here is the program's to report when it runs.
      interp.setGlobal(m.id, s->pattern.slot, Value::undef());
    }
    m.stmts[i] = std::move(tmp.stmts[0]);
  }
}

struct AotFn {
  std::string name, signature, entry, table;
  uint64_t hash = 0;
  std::string object, llvm;
};

// One C function of `tdl build --lib`: a graph fn with a full signature, its tensors
// flattened (records and tuples in order) into pointer parameters.
struct CFunction {
  std::string name;                   // the graph fn
  std::string signature;              // as declared (fnSignature)
  int32_t module = 0, slot = 0;
  std::string structure;              // for tdl_lib_call: "t", "(...)", "{name:...}"
  std::vector<std::string> params;    // C parameter names, one per tensor
  std::vector<std::string> types;     // and their annotated types
  int32_t outputs = 0;                // tensors returned
};

void flattenParam(const TypeExpr& t, const std::string& name, CFunction& f) {
  switch (t.kind) {
    case TypeExpr::Tensor:
      f.structure += "t";
      f.params.push_back(name);
      f.types.push_back(t.str());
      return;
    case TypeExpr::Tuple:
      f.structure += "(";
      for (size_t i = 0; i < t.elems.size(); ++i) flattenParam(*t.elems[i], fmt::format("{}_{}", name, i), f);
      f.structure += ")";
      return;
    case TypeExpr::Record:
      f.structure += "{";
      for (size_t i = 0; i < t.elems.size(); ++i) {
        f.structure += t.names[i] + ":";
        flattenParam(*t.elems[i], name + "_" + t.names[i], f);
      }
      f.structure += "}";
      return;
  }
}

int32_t countOutputs(const vm::ResultTemplate& r) {
  switch (r.kind) {
    case vm::ResultTemplate::Leaf: return 1;
    case vm::ResultTemplate::Static: {
      std::vector<rt::Tensor> xs;
      std::vector<bool> weak;
      std::string key;
      vm::flattenArgs({r.value}, xs, weak, key);
      return static_cast<int32_t>(xs.size());
    }
    default: {
      int32_t n = 0;
      for (auto& i : r.items) n += countOutputs(i);
      return n;
    }
  }
}

int32_t typeLeaves(const TypeExpr& t) {
  if (t.kind == TypeExpr::Tensor) return 1;
  int32_t n = 0;
  for (auto& e : t.elems) n += typeLeaves(*e);
  return n;
}

std::string cIdent(const std::string& s) {
  std::string o;
  for (char c : s) o += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (o.empty() || std::isdigit(static_cast<unsigned char>(o[0]))) o = "_" + o;
  return o;
}

// The C function of graph fn `d` (every parameter annotated) returning `outputs` tensors.
CFunction cFunction(const FnDecl& d, int32_t outputs) {
  CFunction cf;
  cf.name = d.name;
  cf.signature = fnSignature(d);
  cf.module = d.module;
  cf.slot = d.globalSlot;
  for (const Param& prm : d.params) flattenParam(*prm.type, cIdent(prm.name), cf);
  cf.outputs = outputs;
  return cf;
}

const char* kTensorStruct =
    "struct tdl_tensor {\n"
    "  void* data;      /* elements in C order */\n"
    "  int32_t dtype;   /* TDL_BOOL (1-byte), TDL_I32, TDL_I64, TDL_F32, TDL_F64 */\n"
    "  int32_t rank;\n"
    "  int64_t* shape;  /* rank sizes */\n"
    "};\n";

std::string libWrappers(const std::string& prefix, const std::vector<CFunction>& fns) {
  std::string s = kTensorStruct;
  s += "extern int tdl_lib_init(int, char**);\nextern const char* tdl_lib_last_error(void);\n"
       "extern void tdl_lib_free(struct tdl_tensor*);\n"
       "extern int tdl_lib_call(int32_t, int32_t, const char*, const struct tdl_tensor* const*, int32_t, "
       "struct tdl_tensor*, int32_t);\n";
  s += fmt::format("int {0}_init(int argc, char** argv) {{ return tdl_lib_init(argc, argv); }}\n", prefix);
  s += fmt::format("const char* {0}_last_error(void) {{ return tdl_lib_last_error(); }}\n", prefix);
  s += fmt::format("void {0}_free(struct tdl_tensor* t) {{ tdl_lib_free(t); }}\n", prefix);
  for (auto& f : fns) {
    std::string params, list;
    for (auto& p : f.params) {
      params += fmt::format("const struct tdl_tensor* {}, ", p);
      list += (list.empty() ? "" : ", ") + p;
    }
    s += fmt::format("int {}_{}({}struct tdl_tensor* out) {{\n", prefix, cIdent(f.name), params);
    s += fmt::format("  const struct tdl_tensor* args[] = {{{}}};\n", list.empty() ? "0" : list);
    s += fmt::format("  return tdl_lib_call({}, {}, \"{}\", args, {}, out, {});\n}}\n", f.module, f.slot, f.structure,
                     f.params.size(), f.outputs);
  }
  return s;
}

std::string libHeader(const std::string& prefix, const std::string& script, const std::vector<CFunction>& fns) {
  std::string guard = "TDL_" + cIdent(prefix) + "_H";
  for (auto& c : guard) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string s = fmt::format(
      "/* The C interface of {0}, generated by `tdl build --lib`.\n"
      " *\n"
      " * Each function runs one graph fn of the script (compiled ahead of time). Tensors are\n"
      " * passed as struct tdl_tensor: the caller keeps its arguments' memory; the results are\n"
      " * written to out[0..n) with memory that {1}_free releases. Records and tuples are\n"
      " * flattened into one tensor per leaf, in declaration order. Functions return 0, or\n"
      " * 1 with a message from {1}_last_error(). The script's top level runs once, at\n"
      " * {1}_init or before the first call; calls are serialized by a lock. */\n"
      "#ifndef {2}\n#define {2}\n#include <stdint.h>\n#ifdef __cplusplus\nextern \"C\" {{\n#endif\n\n"
      "enum {{ TDL_BOOL = 0, TDL_I32 = 1, TDL_I64 = 2, TDL_F32 = 3, TDL_F64 = 4 }};\n",
      script, prefix, guard);
  s += kTensorStruct;
  s += "typedef struct tdl_tensor tdl_tensor;\n\n";
  s += fmt::format("/* Runs the script's top level with these arguments (for args()); 0 when it ran. */\n"
                   "int {0}_init(int argc, char** argv);\nconst char* {0}_last_error(void);\n"
                   "void {0}_free(tdl_tensor* t);\n\n",
                   prefix);
  for (auto& f : fns) {
    std::string params;
    s += fmt::format("/* {}\n", f.signature);
    for (size_t i = 0; i < f.params.size(); ++i) {
      s += fmt::format(" *   {}: {}\n", f.params[i], f.types[i]);
      params += fmt::format("const tdl_tensor* {}, ", f.params[i]);
    }
    s += fmt::format(" *   out: {} tensor{} */\n", f.outputs, f.outputs == 1 ? "" : "s");
    s += fmt::format("int {}_{}({}tdl_tensor* out);\n\n", prefix, cIdent(f.name), params);
  }
  s += "#ifdef __cplusplus\n}\n#endif\n#endif\n";
  return s;
}

std::string cString(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += static_cast<char>(c);
    else if (c == '\n') o += "\\n\"\n  \"";
    else if (c < 32 || c >= 127) o += fmt::format("\\{:03o}", c);
    else o += static_cast<char>(c);
  }
  return o + "\"";
}

// The C file that defines the symbols of tools/runner/Image.h.
std::string tableSource(const std::vector<AotFn>& fns) {
  std::string s = "/* Generated by tdl build. */\n#include <stdint.h>\n";
  s += "struct TdlAotEntry { uint64_t irHash; int (*entry)(void*); const char* table; };\n";
  for (auto& f : fns) s += fmt::format("extern int {}(void*);\n", f.entry);
  s += fmt::format("const int32_t tdl_aot_count = {};\n", fns.size());
  s += "const struct TdlAotEntry tdl_aot_entries[] = {\n";
  for (auto& f : fns) s += fmt::format("  /* graph fn {}({}) */\n  {{{}ull, {}, {}}},\n", f.name, f.signature, f.hash, f.entry, cString(f.table));
  if (fns.empty()) s += "  {0, 0, 0}\n";
  s += "};\n";
  return s;
}

std::string imageAsm(size_t size) {
  return fmt::format(
      "/* Generated by tdl build: the program image. */\n"
      "  .section .rodata\n  .globl tdl_program_image\n  .type tdl_program_image, @object\n  .p2align 4\n"
      "tdl_program_image:\n  .incbin \"image.bin\"\n  .byte 0\n"
      "  .globl tdl_program_image_size\n  .type tdl_program_image_size, @object\n  .p2align 3\n"
      "tdl_program_image_size:\n  .quad {}\n"
      "  .section .note.GNU-stack,\"\",@progbits\n",
      size);
}

std::vector<std::string> splitArchives() {
  std::vector<std::string> out;
  std::string all = TDL_BUILD_ARCHIVES;
  size_t start = 0;
  while (start <= all.size()) {
    size_t sp = all.find(' ', start);
    std::string a = all.substr(start, sp == std::string::npos ? std::string::npos : sp - start);
    if (!a.empty()) out.push_back(a);
    if (sp == std::string::npos) break;
    start = sp + 1;
  }
  return out;
}

}  // namespace

int buildExecutable(const BuildOptions& o) {
  if (!codegen::validTargetCpu(o.targetCpu)) {
    fmt::print(stderr, "tdl: error: unknown --target-cpu '{}' (use host, generic, or a CPU name LLVM knows, "
                       "such as x86-64-v3 or znver4)\n", o.targetCpu);
    return 1;
  }
  Compilation c;
  c.diags.setJson(o.jsonDiagnostics);
  c.diags.setColor(!o.jsonDiagnostics && isatty(2) && std::getenv("NO_COLOR") == nullptr);
  if (!c.load(o.file, SemaOptions{false})) return 1;
  auto& modules = c.modules();

  // The VM the graph fns are traced in: stdlib modules run, other top-level fns hoisted.
  vm::Program prog;
  vm::Compiler compiler(prog, modules);
  compiler.compileAll();
  vm::VmOptions vo;
  vo.eager = true;
  vm::Interpreter interp(c.sources, modules, prog, vo);
  std::set<int> stdlibModules;
  std::function<void(const std::vector<StmtPtr>&)> findImports = [&](const std::vector<StmtPtr>& stmts) {
    for (auto& s : stmts) {
      if (!s) continue;
      if (s->kind == StmtKind::Import && !s->isFileImport && s->module >= 0) stdlibModules.insert(s->module);
      if (s->kind == StmtKind::Block) findImports(s->stmts);
    }
  };
  for (auto& m : modules) findImports(m->stmts);
  for (int id : stdlibModules) {
    try {
      interp.runModule(id);
    } catch (...) {
      // A standard module that cannot run here leaves its fns undefined: graph fns
      // using them run in the VM (warned below).
    }
  }
  for (auto& m : modules)
    if (!stdlibModules.count(m->id)) evaluatePureLets(*m, prog, modules, interp);
  // Top-level fns (hoisted: also those in top-level `with` blocks); a nested fn's
  // globalSlot is a local slot.
  std::set<const FnDecl*> topLevel;
  std::function<void(const std::vector<StmtPtr>&)> findTop = [&](const std::vector<StmtPtr>& stmts) {
    for (auto& s : stmts) {
      if (!s) continue;
      if (s->kind == StmtKind::Fn && s->fn) topLevel.insert(s->fn.get());
      if (s->kind == StmtKind::With && s->body) findTop(s->body->stmts);
    }
  };
  for (auto& m : modules) findTop(m->stmts);
  std::vector<const vm::FnProto*> graphFns;
  for (auto& p : prog.protos) {
    const FnDecl* d = p->decl;
    if (!d || d->globalSlot < 0 || d->isLambda || !topLevel.count(d)) continue;
    if (stdlibModules.count(d->module)) continue;
    if (interp.globalValue(d->module, d->globalSlot).isUndef())
      interp.setGlobal(d->module, d->globalSlot, Value::object(Tag::Closure, [&] {
                         auto* cl = new vm::ClosureObj(p.get());
                         cl->defaults.resize(static_cast<size_t>(p->numParams));
                         for (int i = 0; i < p->numParams; ++i)
                           if (p->hasDefault[static_cast<size_t>(i)]) cl->defaults[static_cast<size_t>(i)] = Value::undef();
                         return cl;
                       }()));
    if (d->isGraph) graphFns.push_back(p.get());
  }

  // Trace, optimize and compile each graph fn with a full signature.
  std::vector<AotFn> aot;
  std::vector<CFunction> cfns;
  std::set<uint64_t> seen;
  for (const vm::FnProto* p : graphFns) {
    const FnDecl& d = *p->decl;
    std::string why;
    for (const Param& prm : d.params)
      if (why.empty()) why = vm::unshapedParam(prm.type.get(), prm.name);
    if (why.empty()) {
      // One version per way the rank-0 parameters may arrive (strong or weak literal):
      // all combinations of up to 3 such leaves, else all strong and all weak.
      int nWeak = 0;
      for (const Param& prm : d.params) nWeak += vm::weakableLeaves(*prm.type);
      std::vector<unsigned> masks;
      if (nWeak <= 3) {
        for (unsigned m = 0; m < (1u << nWeak); ++m) masks.push_back(m);
      } else {
        masks = {0u, ~0u};
      }
      size_t compiled = 0;
      for (unsigned mask : masks) {
        try {
          std::vector<Value> args;
          int k = 0;
          for (const Param& prm : d.params) args.push_back(vm::placeholderArg(*prm.type, mask, k));
          std::vector<rt::Tensor> xs;
          std::vector<bool> weak;
          std::string key;
          vm::flattenArgs(args, xs, weak, key);
          std::vector<std::string> syms;
          std::vector<vm::ParamLeaf> leaves = vm::signatureLeaves(*p, args, xs, weak, syms);
          const Value& fv = interp.globalValue(d.module, d.globalSlot);
          vm::Trace tr = vm::traceOptimized(interp, *fv.as<vm::ClosureObj>(), args, leaves, syms, nullptr, nullptr);
          AotFn f;
          f.name = d.name;
          for (size_t i = 0; i < leaves.size(); ++i)
            f.signature += (i ? ", " : "") + leaves[i].type.str() + (leaves[i].weak ? " (weak)" : "");
          if (mask == 0) cfns.push_back(cFunction(d, countOutputs(tr.result)));
          f.hash = vm::irHash(ir::to_string(*tr.fn));
          if (!seen.insert(f.hash).second) {
            ++compiled;
            continue;
          }
          f.entry = fmt::format("tdl_aot_{}", aot.size());
          codegen::AotOptions ao;
          ao.entry = f.entry;
          ao.cpu = o.targetCpu;
          ao.optLevel = o.optLevel;
          codegen::AotResult r = codegen::compileAot(*tr.fn, ao);
          f.object = std::move(r.object);
          f.llvm = std::move(r.llvm);
          f.table = std::move(r.table);
          aot.push_back(std::move(f));
          ++compiled;
        } catch (const ScriptError& e) {
          if (why.empty()) {
            why = e.what();
            size_t at = why.find("' is used before its definition");
            if (at != std::string::npos && why[0] == '\'')
              why = fmt::format("it reads the top-level value {}', which exists only when the program runs "
                                "(pass it as an argument to compile the fn ahead of time)",
                                why.substr(0, at));
          }
        } catch (const std::runtime_error& e) {
          fmt::print(stderr, "tdl: error: compiling graph fn '{}': {}\n", d.name, e.what());
          return 1;
        }
      }
      if (o.lib && compiled == 0 && !why.empty()) {
        // Not traceable at build time (it reads a top-level value): the C function calls
        // it in the VM, when the return type says how many tensors come back.
        if (d.ret) {
          cfns.push_back(cFunction(d, typeLeaves(*d.ret)));
        } else {
          why += "; it has no C function either: annotate its return type";
        }
      }
      if (compiled > 0 || why.empty()) continue;  // versions that failed to trace run in the VM
    }
    c.diags.report(Diagnostic{Severity::Warning, d.loc,
                              fmt::format("graph fn '{}' is not compiled ahead of time and runs in the executable's VM: {}",
                                          d.name, why),
                              {}});
  }

  if (o.emitLlvm) {
    std::string text;
    for (auto& f : aot) text += fmt::format("; graph fn {}({}) as {}\n", f.name, f.signature, f.entry) + f.llvm + "\n";
    if (!writeFile(o.out, text)) {
      fmt::print(stderr, "tdl: error: cannot write '{}'\n", o.out);
      return 1;
    }
    return 0;
  }

  TempDir tmp;
  if (tmp.path.empty()) {
    fmt::print(stderr, "tdl: error: cannot create a temporary directory\n");
    return 1;
  }
  std::string prefix = cIdent(fs::path(o.file).stem().string());
  std::string image = serializeProgram(c.sources, modules);
  std::vector<std::string> objects = {"image.o", "aot_table.o"};
  bool ok = writeFile(tmp.path + "/image.bin", image) && writeFile(tmp.path + "/image.S", imageAsm(image.size())) &&
            writeFile(tmp.path + "/aot_table.c", tableSource(aot) + (o.lib ? libWrappers(prefix, cfns) : ""));
  for (size_t i = 0; i < aot.size(); ++i) {
    std::string name = fmt::format("aot_{}.o", i);
    ok = ok && writeFile(tmp.path + "/" + name, aot[i].object);
    objects.push_back(name);
  }
  if (!ok) {
    fmt::print(stderr, "tdl: error: cannot write the build's temporary files in {}\n", tmp.path);
    return 1;
  }
  auto step = [&](const std::vector<std::string>& argv) {
    int rc = runIn(tmp.path, argv);
    if (rc != 0)
      fmt::print(stderr, "tdl: error: {} (exit status {}): {}\n",
                 rc == 127 ? "cannot run the system compiler" : "the system compiler failed", rc, joinCmd(argv));
    return rc == 0;
  };
  if (!step({TDL_BUILD_CC, "-c", "-o", "image.o", "image.S"}) ||
      !step({TDL_BUILD_CC, "-c", "-O1", "-fPIC", "-o", "aot_table.o", "aot_table.c"}))
    return 1;
  std::error_code ec;
  fs::path out = fs::absolute(o.out, ec);
  if (o.emitObj) {
    std::vector<std::string> argv = {"ld", "-r", "-o", out.string()};
    argv.insert(argv.end(), objects.begin(), objects.end());
    if (!step(argv)) return 1;
    return 0;
  }
  std::vector<std::string> argv = {TDL_BUILD_CXX, "-o", out.string()};
  if (o.lib) argv.insert(argv.begin() + 1, {"-shared", "-Wl,--exclude-libs,ALL"});
  argv.insert(argv.end(), objects.begin(), objects.end());
  argv.push_back("-Wl,--start-group");
  argv.push_back(o.lib ? TDL_BUILD_LIBMAIN : TDL_BUILD_MAIN);
  for (auto& a : splitArchives()) argv.push_back(a);
  argv.push_back("-Wl,--end-group");
  for (const char* l : {TDL_BUILD_SYSLIBS}) argv.push_back(l);
  if (!step(argv)) return 1;
  if (o.lib) {
    fs::path header = out.parent_path() / (fs::path(o.file).stem().string() + ".h");
    if (!writeFile(header.string(), libHeader(prefix, fs::path(o.file).filename().string(), cfns))) {
      fmt::print(stderr, "tdl: error: cannot write '{}'\n", header.string());
      return 1;
    }
  }
  return 0;
}

}  // namespace tdl
