// AstBuilder: ANTLR parse tree → AST. The only code that sees parse-tree types.
#pragma once
#include "TDLParser.h"
#include "frontend/Ast.h"
#include "frontend/Diagnostics.h"

namespace tdl {

// Decodes the escapes of a string literal's body (\n \t \" \\); false at an unknown one,
// whose offset goes to badAt.
bool decodeEscapes(std::string_view body, std::string& out, size_t& badAt);
// The message of an unknown escape in a string literal.
inline constexpr const char* kUnknownEscape = "unknown escape sequence in string literal (allowed: \\n \\t \\\" \\\\)";

class AstBuilder {
 public:
  // `lineOffset`/`colOffset` shift positions (used for f-string pieces that are
  // parsed on their own).
  AstBuilder(uint32_t file, DiagEngine& diags, uint32_t lineOffset = 0, uint32_t colOffset = 0)
      : file_(file), diags_(diags), lineOff_(lineOffset), colOff_(colOffset) {}

  void buildProgram(tdlgen::TDLParser::ProgramContext* ctx, Module& m);
  ExprPtr buildExprOnly(tdlgen::TDLParser::ExprOnlyContext* ctx);
  bool failed() const { return failed_; }

 private:
  using P = tdlgen::TDLParser;
  StmtPtr stmt(P::StatementContext* ctx);
  StmtPtr block(P::BlockContext* ctx);
  StmtPtr ifStmt(P::IfStmtContext* ctx);
  std::shared_ptr<FnDecl> fnDecl(P::FnDeclContext* ctx);
  void params(P::ParamsContext* ctx, FnDecl& fn);
  Pattern pattern(P::PatternContext* ctx);
  TypePtr type(P::TypeContext* ctx);

  ExprPtr expr(P::ExprContext* ctx);
  ExprPtr lambda(P::LambdaContext* ctx);
  ExprPtr listComp(const std::string& name, const Loc& l, P::ExprContext* item, P::CompForContext* first,
                   const std::vector<P::CompClauseContext*>& rest);
  ExprPtr dictComp(P::BracesLitContext* ctx);
  ExprPtr braces(P::BracesLitContext* ctx);
  Pattern patterns(P::PatternsContext* ctx);
  ExprPtr exprs(P::ExprsContext* ctx);
  StmtPtr tupleAssign(ExprPtr target, ExprPtr value, const Loc& l);
  StmtPtr assertStmt(P::AssertStmtContext* c, const Loc& l);
  void checkTarget(const Expr& target);
  static ExprPtr hiddenName(const char* name, const Loc& at);
  StmtPtr keyAssign(const char* dict, ExprPtr key, ExprPtr value);
  ExprPtr comprehension(const std::string& name, ExprPtr init, StmtPtr inner, P::CompForContext* first,
                        const std::vector<P::CompClauseContext*>& rest, const Loc& l, int depth);
  ExprPtr conditional(P::ExprContext* ctx);
  ExprPtr hiddenCall(const std::string& name, ExprPtr init, StmtPtr body, const Loc& l, int depth);
  ExprPtr orExpr(P::OrExprContext* ctx);
  ExprPtr andExpr(P::AndExprContext* ctx);
  ExprPtr notExpr(P::NotExprContext* ctx);
  ExprPtr comparison(P::ComparisonContext* ctx);
  ExprPtr bitOr(P::BitOrContext* ctx);
  ExprPtr bitAnd(P::BitAndContext* ctx);
  ExprPtr additive(P::AdditiveContext* ctx);
  ExprPtr multiplicative(P::MultiplicativeContext* ctx);
  ExprPtr unary(P::UnaryContext* ctx);
  ExprPtr power(P::PowerContext* ctx);
  ExprPtr powRhs(P::PowRhsContext* ctx);
  ExprPtr postfix(P::PostfixContext* ctx);
  ExprPtr primary(P::PrimaryContext* ctx);
  ExprPtr fstring(antlr4::Token* tok);
  ExprPtr fstringBody(std::string_view body, const Loc& l, uint32_t bodyCol, bool inSpec);
  ExprPtr strFormat(ExprPtr method, P::CallOpContext* call, const Loc& opLoc);

  ExprPtr binary(BinOp op, antlr4::Token* opTok, ExprPtr l, ExprPtr r);
  ExprPtr unaryNode(UnOp op, antlr4::Token* opTok, ExprPtr e);
  ExprPtr finish(ExprPtr e);  // computes depth, enforces kMaxNesting

  Loc loc(antlr4::Token* t) const;
  Loc loc(antlr4::ParserRuleContext* ctx) const;
  void error(const Loc& l, std::string msg);

  uint32_t file_;
  DiagEngine& diags_;
  uint32_t lineOff_, colOff_;
  bool failed_ = false;
};

}  // namespace tdl
