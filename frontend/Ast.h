// The TDL abstract syntax tree. Built by AstBuilder from the ANTLR parse tree
// (which goes no further); annotated in place by Sema (name resolution);
// consumed by the VM compiler, the tracer and the printers.
//
// Nodes are "fat" structs with a kind tag: each kind uses the fields its
// comment names. Every node has a Loc. Depth is bounded by kMaxNesting, so
// recursive walks (and destructors) cannot overflow the stack.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "frontend/Source.h"

namespace tdl {

// Brackets, parentheses, braces and operators nest at most this deep (SPEC §4).
constexpr int kMaxNesting = 1000;

struct Expr;
struct Stmt;
struct FnDecl;
struct TypeExpr;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using TypePtr = std::unique_ptr<TypeExpr>;

enum class UnOp : uint8_t { Neg, BitNot, Not };
enum class BinOp : uint8_t {
  Add, Sub, Mul, Div, FloorDiv, Mod, MatMul, Pow,
  Eq, Ne, Lt, Le, Gt, Ge, BitAnd, BitOr, And, Or, In, NotIn
};
const char* unOpText(UnOp op);
const char* binOpText(BinOp op);

// ------------------------------------------------------------------ names
// What a name refers to, decided by Sema.
enum class RefKind : uint8_t {
  Unresolved,
  Local,    // slot `index` of the current function's frame
  Capture,  // captured value `index` of the current closure (captured by value)
  Self,     // the function being defined (recursion of a nested fn)
  Global,   // top-level slot `index` of module `module`
  Builtin,  // builtin function or dtype `name`
  Module,   // an imported module (index = module id); only valid as `m.member`
};
struct Ref {
  RefKind kind = RefKind::Unresolved;
  int index = -1;
  int module = 0;  // for Global: which module's top level
};

// ------------------------------------------------------------------ types
// Annotations: f32, f32[], f32[3, ?], f32[N, 784]; {w: T, b: T}; (T, T).
struct Dim {
  enum Kind : uint8_t { Fixed, Named, Any } kind = Any;
  int64_t size = 0;
  std::string name;
};
struct TypeExpr {
  // Alias: a name of `type NAME = ...` (dtype holds it; qualifier the module, for m.NAME),
  // replaced by a copy of its type by Sema before anything else reads the annotation.
  enum Kind : uint8_t { Tensor, Record, Tuple, Alias } kind = Tensor;
  std::string qualifier;
  Loc loc;
  std::string dtype;        // Tensor: bool i32 i64 f32 f64
  bool anyShape = true;     // Tensor without [..]
  std::vector<Dim> dims;    // Tensor with [..]
  std::vector<std::string> names;  // Record field names
  std::vector<TypePtr> elems;      // Record field types / Tuple element types
  std::string str() const;  // as written, normalized
};

// --------------------------------------------------------------- patterns
struct Pattern {
  enum Kind : uint8_t { Name, Tuple, List } kind = Name;
  Loc loc;
  std::string name;                 // Name
  std::vector<Pattern> elems;       // Tuple / List
  int slot = -1;                    // Name: Local or Global slot, set by Sema
  bool global = false;              // Name: binds a top-level slot
};

// ------------------------------------------------------------ expressions
enum class ExprKind : uint8_t {
  Int,      // ival (text = lexeme)
  Float,    // fval (text = lexeme)
  Str,      // str
  FStr,     // parts
  Bool,     // bval
  None,
  Name,     // str, ref
  Tuple,    // kids
  List,     // kids (a tensor literal when Sema sets isTensorLit)
  Record,   // names[i]: kids[i]
  Lambda,   // fn
  Unary,    // unop, kids[0]
  Binary,   // binop, kids[0], kids[1] (And/Or short-circuit)
  Call,     // kids[0] = callee, kids[1..] = args, names[i-1] = keyword or ""
  Index,    // kids[0] = base, subs
  Field,    // kids[0] = base, str = field name
  Dict,     // names[i] (a string key): kids[i] (SPEC §12); no kids: {}
};

struct Subscript {
  bool isSlice = false;
  // NumPy's `...`: as many whole axes as the other subscripts leave (isSlice is set too, with
  // no bounds: where it is not expanded it reads as one `:`).
  bool isEllipsis = false;
  ExprPtr index;             // !isSlice
  ExprPtr lo, hi, step;      // isSlice, each optional
  Loc loc;
};

struct FStrPart {
  std::string literal;  // text before the expression (escapes and {{ }} decoded)
  ExprPtr expr;         // null for a trailing literal
  std::string spec;     // after ':' (fmt/Python format spec)
};

// The list methods that change the list a variable holds (SPEC §12): `xs.append(v)` on a
// place (a variable, or an element or field of one) is an update of that place.
inline bool isListMutator(const std::string& name) {
  return name == "append" || name == "extend" || name == "pop" || name == "insert";
}

struct Expr {
  ExprKind kind;
  Loc loc;
  int64_t ival = 0;
  double fval = 0;
  bool bval = false;
  UnOp unop = UnOp::Neg;
  BinOp binop = BinOp::Add;
  std::string str;                 // Name / Str / Field
  std::string text;                // literal lexeme
  std::vector<ExprPtr> kids;
  std::vector<std::string> names;  // Record field names; Call keyword names
  std::vector<Subscript> subs;     // Index
  std::vector<FStrPart> parts;     // FStr
  std::shared_ptr<FnDecl> fn;      // Lambda
  Ref ref;                         // Name, set by Sema
  Loc declLoc;                     // Name / module member: where it is declared (Sema)
  std::string declDesc;            // ... and what it is ("let x", "fn f(a, b)"), for tools
  bool isTensorLit = false;        // List: rectangular numeric literal (Sema)
  bool builtinOnly = false;        // Name: the builtin of that name, whatever the program binds (AstBuilder's desugarings)
  int depth = 1;                   // nesting depth of this subtree (AstBuilder)
  explicit Expr(ExprKind k, Loc l) : kind(k), loc(l) {}
};

// ------------------------------------------------------------- statements
enum class StmtKind : uint8_t {
  Let,       // pattern, type (optional), exprs[0] = init; isVar
  Assign,    // exprs[0] = target (Name / Index / Field chain), exprs[1] = value, assignOp
  ExprStmt,  // exprs[0]
  If,        // exprs[0] = cond, body = then, orelse = else branch (a Block or an If), may be null
  While,     // exprs[0] = cond, body
  For,       // pattern, exprs[0] = iterable, body
  Return,    // exprs (0 or 1)
  Break,
  Continue,
  With,      // exprs[0] = context (tape()), str = bound name, body; slot
  Fn,        // fn
  Import,    // str = module name or path, alias, isFileImport; module id
  TypeAlias, // str = name, type (top level; Sema puts the type in where the name is used)
  Block,     // stmts
};

struct Stmt {
  StmtKind kind;
  Loc loc;
  bool isVar = false;
  char assignOp = '=';             // '=', or a compound's: '+', '-', '*', '/', 'F' (//=), '%', 'P' (**=)
  Pattern pattern;
  TypePtr type;
  std::vector<ExprPtr> exprs;
  std::vector<StmtPtr> stmts;      // Block
  StmtPtr body;                    // If/While/For/With: a Block
  StmtPtr orelse;                  // If
  std::shared_ptr<FnDecl> fn;      // Fn
  std::string str;                 // With name; Import module or path
  std::string alias;               // Import
  Loc pathLoc;                     // Import: position of the name/path
  bool isFileImport = false;
  int module = -1;                 // Import: the loaded module id (ModuleLoader)
  int slot = -1;                   // With: slot of the tape variable
  bool global = false;             // With: the tape variable is a top-level slot
  explicit Stmt(StmtKind k, Loc l) : kind(k), loc(l) {}
};

struct Param {
  std::string name;
  Loc loc;
  TypePtr type;    // optional
  ExprPtr deflt;   // optional
};

struct FnDecl {
  std::string name;  // "" for a lambda
  Loc loc;           // the name (or `fn` of a lambda)
  bool isGraph = false;
  bool isLambda = false;
  std::vector<Param> params;
  TypePtr ret;
  StmtPtr body;      // a Block; for a lambda a Block holding one Return
  // Set by Sema:
  int numLocals = 0;                 // frame slots (params are slots 0..n-1)
  std::vector<Ref> captures;         // what each Capture index copies from the enclosing frame
  std::vector<std::string> captureNames;
  int globalSlot = -1;               // top-level fns: their global slot
  int module = 0;                    // the module that declares it
};

// One parsed file.
struct Module {
  int id = 0;
  std::string name;        // "nn", or the path as imported
  std::string path;        // file path on disk
  uint32_t file = 0;       // SourceManager id
  std::vector<StmtPtr> stmts;
  // Top-level names, filled by Sema: name -> global slot (the last binding wins).
  std::vector<std::string> globalNames;  // slot -> name
  std::vector<bool> globalIsVar;         // slot -> declared with var
  std::vector<int> importedModules;      // module ids this module imports
  int numTopLocals = 0;                  // block-scoped locals of the top-level code
};

std::string typeToString(const TypeExpr& t);
// "fn name(a, b: f32[2]) -> f32" / "graph fn ..." / "fn(a)" for a lambda.
std::string fnSignature(const FnDecl& fn);
// The error of a call with too many positional arguments, in every engine's words:
// "fn 'f' takes 1 argument, got 2" (`what` names the callee).
std::string tooManyArgumentsText(const std::string& what, size_t takes, size_t got);
// A compound assignment's operator (Stmt::assignOp, not '='): + - * / // % **.
BinOp compoundBinOp(char assignOp);
// A list comprehension's list and its lambda (frontend/AstBuilder.cpp listComp): a name no
// program can write.
inline constexpr const char* kListComprehension = "<list comprehension>";
inline constexpr const char* kDictComprehension = "<dict comprehension>";
inline constexpr const char* kGeneratorExpression = "<generator expression>";
// A dict literal with computed keys (frontend/AstBuilder.cpp dictLit).
inline constexpr const char* kDictLiteral = "<dict literal>";
// "list comprehension" / "dict comprehension" / "generator expression" for a name that starts
// with one's (a variable or lambda of it), else null.
const char* comprehensionWords(const std::string& name);
// A conditional expression's lambda (frontend/AstBuilder.cpp conditional).
inline constexpr const char* kConditionalExpression = "<conditional expression>";
// The str of the `and` that joins a chained comparison's parts (a < b < c).
inline constexpr const char* kChainedComparison = "chained comparison";
// What must be a bool scalar in `and`/`or` e (its operand, or a chained comparison's part),
// in every engine's words: "<subject> must be a bool scalar, got i64[]".
std::string boolOperandSubject(const Expr& e);

}  // namespace tdl
