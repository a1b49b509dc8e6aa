#include "frontend/AstPrinter.h"

#include <fmt/format.h>

#include <stdexcept>

namespace tdl {

const char* unOpText(UnOp op) {
  switch (op) {
    case UnOp::Neg: return "-";
    case UnOp::BitNot: return "~";
    case UnOp::Not: return "not";
  }
  return "?";
}

const char* binOpText(BinOp op) {
  static const char* names[] = {"+", "-", "*", "/", "//", "%", "@", "**", "==", "!=",
                                "<", "<=", ">", ">=", "&", "|", "and", "or", "in", "not in"};
  return names[static_cast<int>(op)];
}

std::string typeToString(const TypeExpr& t) {
  switch (t.kind) {
    case TypeExpr::Alias: return t.qualifier.empty() ? t.dtype : t.qualifier + "." + t.dtype;
    case TypeExpr::Tensor: {
      if (t.anyShape) return t.dtype;
      std::string s = t.dtype + "[";
      for (size_t i = 0; i < t.dims.size(); ++i) {
        if (i) s += ", ";
        const Dim& d = t.dims[i];
        s += d.kind == Dim::Fixed ? std::to_string(d.size) : d.kind == Dim::Named ? d.name : "?";
      }
      return s + "]";
    }
    case TypeExpr::Record: {
      std::string s = "{";
      for (size_t i = 0; i < t.names.size(); ++i) {
        if (i) s += ", ";
        s += t.names[i] + ": " + typeToString(*t.elems[i]);
      }
      return s + "}";
    }
    case TypeExpr::Tuple: {
      std::string s = "(";
      for (size_t i = 0; i < t.elems.size(); ++i) {
        if (i) s += ", ";
        s += typeToString(*t.elems[i]);
      }
      if (t.elems.size() == 1) s += ",";
      return s + ")";
    }
  }
  return "?";
}

std::string tooManyArgumentsText(const std::string& what, size_t takes, size_t got) {
  return fmt::format("{} takes {} argument{}, got {}", what, takes, takes == 1 ? "" : "s", got);
}

BinOp compoundBinOp(char op) {
  switch (op) {
    case '+': return BinOp::Add;
    case '-': return BinOp::Sub;
    case '*': return BinOp::Mul;
    case '/': return BinOp::Div;
    case 'F': return BinOp::FloorDiv;
    case '%': return BinOp::Mod;
    case 'P': return BinOp::Pow;
  }
  throw std::logic_error(fmt::format("unknown compound assignment '{}'", op));
}

const char* comprehensionWords(const std::string& name) {
  if (name.rfind(kListComprehension, 0) == 0) return "list comprehension";
  if (name.rfind(kDictComprehension, 0) == 0) return "dict comprehension";
  if (name.rfind(kGeneratorExpression, 0) == 0) return "generator expression";
  return nullptr;
}

std::string boolOperandSubject(const Expr& e) {
  if (e.str == kChainedComparison)
    return "each comparison of a chain like a < b < c (for tensors write (a < b) & (b < c))";
  return e.binop == BinOp::Or ? "operand of 'or'" : "operand of 'and'";
}

std::string fnSignature(const FnDecl& f) {
  std::string s = f.isLambda ? "fn(" : (f.isGraph ? "graph fn " : "fn ") + f.name + "(";
  for (size_t i = 0; i < f.params.size(); ++i) {
    if (i) s += ", ";
    s += f.params[i].name;
    if (f.params[i].type) s += ": " + typeToString(*f.params[i].type);
  }
  s += ")";
  if (f.ret) s += " -> " + typeToString(*f.ret);
  return s;
}

std::string TypeExpr::str() const { return typeToString(*this); }

namespace {

const char* refName(RefKind k) {
  switch (k) {
    case RefKind::Unresolved: return "?";
    case RefKind::Local: return "local";
    case RefKind::Capture: return "capture";
    case RefKind::Self: return "self";
    case RefKind::Global: return "global";
    case RefKind::Builtin: return "builtin";
    case RefKind::Module: return "module";
  }
  return "?";
}

std::string patternStr(const Pattern& p) {
  if (p.kind == Pattern::Name) return p.name;
  std::string s = p.kind == Pattern::Tuple ? "(" : "[";
  for (size_t i = 0; i < p.elems.size(); ++i) s += (i ? ", " : "") + patternStr(p.elems[i]);
  return s + (p.kind == Pattern::Tuple ? ")" : "]");
}

class Printer {
 public:
  std::string out;

  void line(int ind, const Loc& l, const std::string& text) {
    out += fmt::format("{:{}}{} @{}:{}\n", "", ind * 2, text, l.line, l.col);
  }

  void fn(int ind, const FnDecl& f) {
    std::string head = f.isLambda ? "Lambda" : (f.isGraph ? "GraphFn " : "Fn ") + f.name;
    head += "(";
    for (size_t i = 0; i < f.params.size(); ++i) {
      const Param& p = f.params[i];
      head += (i ? ", " : "") + p.name;
      if (p.type) head += ": " + typeToString(*p.type);
      if (p.deflt) head += " = ...";
    }
    head += ")";
    if (f.ret) head += " -> " + typeToString(*f.ret);
    if (!f.captureNames.empty()) {
      head += " captures[";
      for (size_t i = 0; i < f.captureNames.size(); ++i) head += (i ? ", " : "") + f.captureNames[i];
      head += "]";
    }
    line(ind, f.loc, head);
    for (auto& p : f.params)
      if (p.deflt) {
        line(ind + 1, p.loc, "Default " + p.name);
        expr(ind + 2, *p.deflt);
      }
    stmt(ind + 1, *f.body);
  }

  void expr(int ind, const Expr& e) {
    switch (e.kind) {
      case ExprKind::Int: line(ind, e.loc, "Int " + e.text); return;
      case ExprKind::Float: line(ind, e.loc, "Float " + e.text); return;
      case ExprKind::Str: line(ind, e.loc, fmt::format("Str {:?}", e.str)); return;
      case ExprKind::Bool: line(ind, e.loc, e.bval ? "Bool true" : "Bool false"); return;
      case ExprKind::None: line(ind, e.loc, "None"); return;
      case ExprKind::Name:
        line(ind, e.loc, fmt::format("Name {} [{}{}]", e.str, refName(e.ref.kind),
                                     e.ref.index >= 0 ? " " + std::to_string(e.ref.index) : ""));
        return;
      case ExprKind::FStr:
        line(ind, e.loc, "FString");
        for (auto& p : e.parts) {
          if (!p.literal.empty()) line(ind + 1, e.loc, fmt::format("Text {:?}", p.literal));
          if (p.expr) {
            if (!p.spec.empty()) line(ind + 1, p.expr->loc, "Spec " + p.spec);
            expr(ind + 1, *p.expr);
          }
        }
        return;
      case ExprKind::Tuple: line(ind, e.loc, "Tuple"); break;
      case ExprKind::List: line(ind, e.loc, e.isTensorLit ? "TensorLiteral" : "List"); break;
      case ExprKind::Record:
        line(ind, e.loc, "Record");
        for (size_t i = 0; i < e.kids.size(); ++i) {
          line(ind + 1, e.kids[i]->loc, "Field " + e.names[i]);
          expr(ind + 2, *e.kids[i]);
        }
        return;
      case ExprKind::Lambda: fn(ind, *e.fn); return;
      case ExprKind::Unary: line(ind, e.loc, fmt::format("Unary {}", unOpText(e.unop))); break;
      case ExprKind::Binary: line(ind, e.loc, fmt::format("Binary {}", binOpText(e.binop))); break;
      case ExprKind::Call:
        line(ind, e.loc, "Call");
        expr(ind + 1, *e.kids[0]);
        for (size_t i = 1; i < e.kids.size(); ++i) {
          if (!e.names[i - 1].empty()) line(ind + 1, e.kids[i]->loc, "Keyword " + e.names[i - 1]);
          expr(ind + (e.names[i - 1].empty() ? 1 : 2), *e.kids[i]);
        }
        return;
      case ExprKind::Index:
        line(ind, e.loc, "Index");
        expr(ind + 1, *e.kids[0]);
        for (auto& s : e.subs) {
          if (!s.isSlice) {
            expr(ind + 1, *s.index);
            continue;
          }
          line(ind + 1, s.loc, s.isEllipsis ? "Ellipsis" : "Slice");
          for (auto [name, p] : {std::pair{"lo", &s.lo}, {"hi", &s.hi}, {"step", &s.step}}) {
            if (!*p) continue;
            line(ind + 2, (*p)->loc, name);
            expr(ind + 3, **p);
          }
        }
        return;
      case ExprKind::Field:
        line(ind, e.loc, "Field ." + e.str + (e.ref.kind == RefKind::Global ? " [module member]" : ""));
        break;
      case ExprKind::Dict: {
        std::string keys;
        for (auto& n : e.names) keys += (keys.empty() ? "" : ", ") + ("\"" + n + "\"");
        line(ind, e.loc, "Dict {" + keys + "}");
        break;
      }
    }
    for (auto& k : e.kids) expr(ind + 1, *k);
  }

  void stmt(int ind, const Stmt& s) {
    switch (s.kind) {
      case StmtKind::Let:
        line(ind, s.loc, fmt::format("{} {}{}", s.isVar ? "Var" : "Let", patternStr(s.pattern),
                                     s.type ? ": " + typeToString(*s.type) : ""));
        expr(ind + 1, *s.exprs[0]);
        return;
      case StmtKind::Assign:
        line(ind, s.loc, s.assignOp == '=' ? "Assign" : fmt::format("Assign {}=", binOpText(compoundBinOp(s.assignOp))));
        break;
      case StmtKind::ExprStmt: line(ind, s.loc, "ExprStmt"); break;
      case StmtKind::If:
        line(ind, s.loc, "If");
        expr(ind + 1, *s.exprs[0]);
        stmt(ind + 1, *s.body);
        if (s.orelse) {
          line(ind, s.orelse->loc, "Else");
          stmt(ind + 1, *s.orelse);
        }
        return;
      case StmtKind::While: line(ind, s.loc, "While"); break;
      case StmtKind::For:
        line(ind, s.loc, "For " + patternStr(s.pattern));
        break;
      case StmtKind::Return: line(ind, s.loc, "Return"); break;
      case StmtKind::Break: line(ind, s.loc, "Break"); return;
      case StmtKind::Continue: line(ind, s.loc, "Continue"); return;
      case StmtKind::With: line(ind, s.loc, "With as " + s.str); break;
      case StmtKind::Fn: fn(ind, *s.fn); return;
      case StmtKind::TypeAlias: line(ind, s.loc, "TypeAlias " + s.str + " = " + typeToString(*s.type)); return;
      case StmtKind::Import:
        line(ind, s.loc, s.isFileImport ? fmt::format("Import {:?} as {}", s.str, s.alias)
                            : s.alias == s.str ? "Import " + s.str : fmt::format("Import {} as {}", s.str, s.alias));
        return;
      case StmtKind::Block:
        line(ind, s.loc, "Block");
        for (auto& c : s.stmts) stmt(ind + 1, *c);
        return;
    }
    for (auto& e : s.exprs) expr(ind + 1, *e);
    if (s.body) stmt(ind + 1, *s.body);
  }
};

}  // namespace

std::string printAst(const Module& m) {
  Printer p;
  p.out = fmt::format("Module {}\n", m.path);
  for (auto& s : m.stmts) p.stmt(1, *s);
  return p.out;
}

}  // namespace tdl
