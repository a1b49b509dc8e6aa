// TDL grammar (SPEC §1–§4, §6–§7). The parse tree never leaves frontend/:
// frontend/AstBuilder turns it into the AST.
//
// Newlines end statements, except inside ( ) and [ ] and the braces of record
// and dict literals (implicit line joining, as in Python). Inside a block's
// { } they count again. The lexer keeps a stack of open brackets for this.
grammar TDL;

@lexer::members {
  // A statement that ends with `}` needs no separator before the next one on
  // the same line (`fn f() { if x { return 1 } return 2 }`): the lexer puts a
  // virtual NEWLINE between `}` and a token that can only start a statement. Not after the
  // `}` of a record or dict literal (`let r = {a: 1} if c else {a: 2}`): a `{` opens a block
  // after what ends an expression (`if c {`, `fn f() {`, `-> T {`) or `else`, else a literal.
  std::unique_ptr<antlr4::Token> pendingToken;
  size_t lastTokenType = 0;
  bool closedLiteral = false;
  static bool endsExpression(size_t t) {
    return t == NAME || t == VAR || t == RPAREN || t == RBRACK || t == RBRACE || t == INT || t == FLOAT ||
           t == STRING || t == FSTRING || t == TRUE || t == FALSE || t == NONE;
  }
  static bool startsStatement(size_t t) {
    return t == NAME || t == LET || t == VAR || t == IF || t == WHILE || t == FOR || t == RETURN ||
           t == BREAK || t == CONTINUE || t == WITH || t == GRAPH || t == IMPORT || t == FN || t == TYPE;
  }
  std::unique_ptr<antlr4::Token> withVirtualNewlines() {
    if (pendingToken) {
      lastTokenType = pendingToken->getType();
      return std::move(pendingToken);
    }
    std::unique_ptr<antlr4::Token> t = antlr4::Lexer::nextToken();
    if (lastTokenType == RBRACE && !closedLiteral && !joiningLines() && startsStatement(t->getType())) {
      auto nl = _factory->create({this, _input}, NEWLINE, "\n", antlr4::Token::DEFAULT_CHANNEL,
                                 t->getStartIndex(), t->getStartIndex() - 1, t->getLine(),
                                 t->getCharPositionInLine());
      pendingToken = std::move(t);
      lastTokenType = NEWLINE;
      return nl;
    }
    lastTokenType = t->getType();
    return t;
  }
  // A run of separators (newlines, `;`, and so blank and comment lines between them) is one
  // token: the first `;` of the run if it has one, else its first newline. The grammar then
  // needs one token of lookahead at every separator, so parsing stays linear in the input
  // (runs of separators made ANTLR's prediction look across the whole run at each of them).
  std::unique_ptr<antlr4::Token> afterSeparators;
  std::unique_ptr<antlr4::Token> nextToken() override {
    std::unique_ptr<antlr4::Token> t = afterSeparators ? std::move(afterSeparators) : withVirtualNewlines();
    if (t->getType() != NEWLINE && t->getType() != SEMI) return t;
    for (;;) {
      std::unique_ptr<antlr4::Token> n = withVirtualNewlines();
      if (n->getType() == SEMI && t->getType() == NEWLINE) t = std::move(n);
      else if (n->getType() != NEWLINE && n->getType() != SEMI) {
        afterSeparators = std::move(n);
        return t;
      }
    }
  }
  // The rest of an f-string after its `f"`, matched here in one pass as Python 3.12's tokenizer
  // does (a recursive lexer rule took time exponential in the nesting): text, escapes, and
  // fields `{...}` whose strings and f-strings nest (`{{` is a brace of the text); the token
  // ends at the quote that closes it outside every field. Where a newline or the end of the
  // input comes first, the f-string ends at its first quote after all, as before nesting (a
  // field left open is then the f-string's own error, with a hint), or, without one, is an
  // UNTERMINATED_STRING.
  void fstringRest() {
    auto* sim = getInterpreter<antlr4::atn::LexerATNSimulator>();
    const size_t start = _input->index(), line = sim->getLine();
    const size_t column = sim->getCharPositionInLine();
    std::vector<char> open{'f'};  // 'f': an f-string's text; '{': a field; '"': a string in a field
    size_t last = '"';
    auto word = [](size_t c) { return c == '_' || (c < 128 && std::isalnum(static_cast<int>(c))); };
    auto cut = [](size_t c) { return c == antlr4::IntStream::EOF || c == '\n' || c == '\r'; };
    for (;;) {
      size_t c = _input->LA(1);
      if (cut(c)) {
        _input->seek(start);
        sim->setLine(line);
        sim->setCharPositionInLine(column);
        for (size_t d = _input->LA(1); !cut(d); d = _input->LA(1)) {
          sim->consume(_input);
          if (d == '"') return;
          if (d == '\\' && !cut(_input->LA(1))) sim->consume(_input);
        }
        setType(UNTERMINATED_STRING);
        return;
      }
      const char top = open.back();
      sim->consume(_input);
      if (c == '\\' && top != '{') {  // an escape: its character too
        size_t d = _input->LA(1);
        if (d != antlr4::IntStream::EOF && d != '\n' && d != '\r') sim->consume(_input);
        last = c;
        continue;
      }
      if (top == 'f') {
        if (c == '"') open.pop_back();
        else if (c == '{' && _input->LA(1) == '{') sim->consume(_input);
        else if (c == '{') open.push_back('{');
        if (open.empty()) return;
      } else if (top == '"') {
        if (c == '"') open.pop_back();
      } else if (c == '"') {
        open.push_back('"');
      } else if (c == 'f' && _input->LA(1) == '"' && !word(last)) {
        sim->consume(_input);
        open.push_back('f');
      } else if (c == '{') {
        open.push_back('{');
      } else if (c == '}') {
        open.pop_back();
      }
      last = c;
    }
  }
  // `assert` starts Python's assert statement where a statement starts, unless what follows
  // makes it a name (`assert = f`, `assert.x`, `{assert: 1}`).
  bool assertFollows() {
    if (lastTokenType != 0 && lastTokenType != NEWLINE && lastTokenType != SEMI && lastTokenType != LBRACE &&
        lastTokenType != RBRACE)
      return false;
    size_t k = 1;
    while (_input->LA(k) == ' ' || _input->LA(k) == '\t') ++k;
    const size_t c = _input->LA(k), d = _input->LA(k + 1);
    if ((c == '=' && d != '=') || c == '.' || c == ':') return false;
    if ((c == '+' || c == '-' || c == '*' || c == '/' || c == '%') && d == '=') return false;
    if (c == '(') {  // `assert(c, m)` alone on its statement is the builtin's call (keywords and all)
      int depth = 0;
      for (;; ++k) {
        const size_t x = _input->LA(k);
        if (x == antlr4::IntStream::EOF) return true;
        if (x == '"') {  // a string: to its closing quote
          for (++k; _input->LA(k) != '"' && _input->LA(k) != antlr4::IntStream::EOF && _input->LA(k) != '\n'; ++k)
            if (_input->LA(k) == '\\') ++k;
        } else if (x == '(' || x == '[' || x == '{') {
          ++depth;
        } else if ((x == ')' || x == ']' || x == '}') && --depth == 0) {
          break;
        }
      }
      for (++k; _input->LA(k) == ' ' || _input->LA(k) == '\t'; ++k) {}
      const size_t after = _input->LA(k);
      return !(after == '\n' || after == '\r' || after == ';' || after == '}' || after == '#' ||
               after == antlr4::IntStream::EOF);
    }
    return true;
  }
  std::vector<char> bracketStack;
  std::vector<std::pair<size_t, size_t>> bracketAt;  // each open bracket's line and column (0-based)
  void openBracket(char c) {
    bracketStack.push_back(c);
    bracketAt.emplace_back(tokenStartLine, tokenStartCharPositionInLine);
  }
  // The first closing bracket that does not match the open one (`(1, [2}`): its position and
  // character, with the open one's; mismatchChar 0 while there is none.
  char mismatchChar = 0, mismatchOpen = 0;
  std::pair<size_t, size_t> mismatchAt, mismatchOpenAt;
  void closeBracket(char c) {
    if (bracketStack.empty()) return;
    const char open = bracketStack.back() == 'r' ? '{' : bracketStack.back();
    if (!mismatchChar && c != (open == '(' ? ')' : open == '[' ? ']' : '}')) {
      mismatchChar = c;
      mismatchOpen = open;
      mismatchAt = {tokenStartLine, tokenStartCharPositionInLine};
      mismatchOpenAt = bracketAt.back();
    }
    bracketStack.pop_back();
    bracketAt.pop_back();
  }
  void openBrace() { openBracket(endsExpression(lastTokenType) || lastTokenType == ELSE ? '{' : 'r'); }
  void closeBrace() {
    closedLiteral = !bracketStack.empty() && bracketStack.back() == 'r';
    closeBracket('}');
  }
  // newlines count inside a block's braces only ('{'), as in Python's dicts
  bool joiningLines() const {
    return !bracketStack.empty() && bracketStack.back() != '{';
  }
}

// ---------------------------------------------------------------- program
program     : sep? (statement (sep statement)*)? sep? EOF ;
exprOnly    : expr EOF ;   // f-string pieces are parsed with this
sep         : NEWLINE | ';' ;
block       : '{' sep? (statement (sep statement)*)? sep? '}' ;

// ------------------------------------------------------------- statements
statement
    : fnDecl                                              # fnStmt
    | 'import' STRING 'as' NAME                           # importFileStmt
    | 'import' module=NAME ('as' alias=NAME)?             # importModuleStmt
    | kind=('let' | 'var') patterns (':' type)? '=' exprs  # bindStmt
    | ifStmt                                              # ifStatement
    | 'while' expr block                                  # whileStmt
    | 'for' patterns 'in' expr block                      # forStmt
    | 'return' exprs?                                     # returnStmt
    | 'break'                                             # breakStmt
    | 'continue'                                          # continueStmt
    | 'with' expr 'as' NAME block                         # withStmt
    | 'type' NAME '=' type                                # typeAliasStmt
    | ASSERT expr (',' expr)?                             # assertStmt
    | exprs (assignOp exprs)?                             # exprStmt
    ;

fnDecl      : isGraph='graph'? 'fn' NAME '(' params? ')' ('->' type)? block ;
params      : param (',' param)* ','? ;
param       : NAME (':' type)? ('=' expr)? ;
ifStmt      : 'if' expr block (NEWLINE? 'else' (ifStmt | block))? ;
assignOp    : '=' | '+=' | '-=' | '*=' | '/=' | '//=' | '%=' | '**=' ;

// `a, b` (Python's unparenthesized tuple) binds as `(a, b)` in let, var and for
patterns    : pattern (',' pattern)* trailing=','? ;
// `a, b` (Python's unparenthesized tuple) is `(a, b)` as a statement's expression and target
exprs       : expr (',' expr)* trailing=','? ;
pattern
    : NAME                                                # namePattern
    | '(' pattern (',' pattern)* ','? ')'                 # tuplePattern
    | '[' pattern (',' pattern)* ','? ']'                 # listPattern
    ;

// ------------------------------------------------------------------ types
type
    : (qual=NAME '.')? name=NAME ('[' (dim (',' dim)*)? ']')?   # tensorType
    | '{' NAME ':' type (',' NAME ':' type)* ','? '}'     # recordType
    | '(' (type (',' type)* ','?)? ')'                    # tupleType
    ;
dim         : INT | NAME | '?' ;

// ------------------------------------------------------------ expressions
// Precedence, lowest first: or · and · not · comparisons · | · & · + - ·
// * / // % @ · unary - ~ · ** · postfix.
// `a if c else b`: Python's conditional expression (frontend/AstBuilder.cpp conditional)
expr        : lambda | orExpr ('if' orExpr 'else' expr)? ;
lambda      : 'fn' '(' params? ')' '=>' expr ;
orExpr      : andExpr (op='or' andExpr)* ;
andExpr     : notExpr (op='and' notExpr)* ;
notExpr     : op='not' notExpr | comparison ;
comparison  : bitOr (compOp bitOr)* ;
compOp      : '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not' 'in' ;
bitOr       : bitAnd (op='|' bitAnd)* ;
bitAnd      : additive (op='&' additive)* ;
additive    : multiplicative (addOp multiplicative)* ;
addOp       : '+' | '-' ;
multiplicative : unary (mulOp unary)* ;
mulOp       : '*' | '/' | '//' | '%' | '@' ;
unary       : op=('-' | '~') unary | power ;
power       : postfix (op='**' powRhs)? ;
powRhs      : op=('-' | '~') powRhs | power ;
postfix     : primary postfixOp* ;
postfixOp
    // args, or Python's generator expression as the only argument (`sum(x * x for x in xs)`,
    // frontend/AstBuilder.cpp): one rule, so the parser decides at the token after the first
    // argument (alternatives that both start with an expression made nested brackets slow)
    : '(' (arg (compFor compClause* | (',' arg)* ','?))? ')'   # callOp
    | '[' subscript (',' subscript)* ','? ']'             # indexOp
    | '.' NAME                                            # fieldOp
    ;
arg         : (NAME '=')? expr ;
subscript
    : lo=expr? ':' hi=expr? (':' step=expr?)?             # sliceSub
    | ELLIPSIS                                            # ellipsisSub
    | expr                                                # indexSub
    ;

primary
    : INT                                                 # intLit
    | FLOAT                                               # floatLit
    | STRING                                              # stringLit
    | FSTRING                                             # fstringLit
    | value=('true' | 'false')                            # boolLit
    | 'none'                                              # noneLit
    // `var` is also the builtin var(x) (SPEC §12) where an expression stands
    | (NAME | 'var')                                      # nameRef
    // `(e)` is a parenthesized expression, `()`, `(e,)`, `(a, b)` are tuples, `(e for ...)`
    // Python's generator expression; one rule each for ( [ {, so the parser never needs
    // lookahead to the closing bracket (nested brackets stay linear).
    | '(' (expr (compFor compClause* | (',' expr)* trailing=','?))? ')'   # parenOrTuple
    // a list, or Python's list comprehension (frontend/AstBuilder.cpp: a call of a lambda)
    | '[' (expr (compFor compClause* | (',' expr)* ','?))? ']'            # listLit
    // `{name: v}` a record, `{"k": v}` a dict (SPEC §12; `{}` is the empty dict), or Python's
    // dict comprehension `{k: v for ...}` (frontend/AstBuilder.cpp braces)
    | '{' (entry (compFor compClause* | (',' entry)* ','?))? '}'          # bracesLit
    ;
// (as Python's: the iterable and a condition are no conditional expressions)
compFor     : 'for' patterns 'in' orExpr ;
compClause  : compFor | 'if' orExpr ;
// a record's field (a name before the colon) or a dict's key (any other expression)
entry       : key=expr ':' value=expr ;

// ----------------------------------------------------------------- lexer
LPAREN      : '(' { openBracket('('); } ;
RPAREN      : ')' { closeBracket(')'); } ;
LBRACK      : '[' { openBracket('['); } ;
RBRACK      : ']' { closeBracket(']'); } ;
LBRACE      : '{' { openBrace(); } ;
RBRACE      : '}' { closeBrace(); } ;

FN: 'fn'; GRAPH: 'graph'; LET: 'let'; VAR: 'var'; IF: 'if'; ELSE: 'else';
WHILE: 'while'; FOR: 'for'; IN: 'in'; RETURN: 'return'; BREAK: 'break';
CONTINUE: 'continue'; IMPORT: 'import'; AS: 'as'; WITH: 'with'; AND: 'and'; TYPE: 'type';
OR: 'or'; NOT: 'not'; TRUE: 'true'; FALSE: 'false'; NONE: 'none';

// A field's expression may hold strings and f-strings of its own (Python 3.12's nesting:
// f"{d["key"]}"): fstringRest matches the rest; a lone brace is left for the f-string's own
// errors (frontend/AstBuilder.cpp).
FSTRING     : 'f"' { fstringRest(); } ;
STRING      : '"' (ESC | ~["\\\r\n])* '"' ;
// Python's `assert c, "message"` statement: the name assert where a statement starts
// (assertFollows; elsewhere, as in `f(assert)`, it stays the builtin's name).
NAME        : [A-Za-z_] [A-Za-z0-9_]* { if (getText() == "assert" && assertFollows()) setType(ASSERT); } ;
ASSERT      : 'assert' { false }? ;   // never matched: NAME's action gives the type
FLOAT
    : DIGITS '.' DIGITS? EXPONENT?
    | '.' DIGITS EXPONENT?
    | DIGITS EXPONENT
    ;
INT         : DIGITS ;

ARROW: '->'; FATARROW: '=>';
EQ: '=='; NE: '!='; LE: '<='; GE: '>='; LT: '<'; GT: '>';
PLUSEQ: '+='; MINUSEQ: '-='; STAREQ: '*='; SLASHEQ: '/='; FLOORDIVEQ: '//='; PERCENTEQ: '%='; POWEQ: '**=';
POW: '**'; FLOORDIV: '//';
PLUS: '+'; MINUS: '-'; STAR: '*'; SLASH: '/'; PERCENT: '%'; AT: '@';
AMP: '&'; PIPE: '|'; TILDE: '~'; ASSIGN: '='; COMMA: ','; COLON: ':';
SEMI: ';'; ELLIPSIS: '...'; DOT: '.'; QUESTION: '?';

NEWLINE     : ('\r'? '\n' | '\r') { if (joiningLines()) skip(); } ;
COMMENT     : '#' ~[\r\n]* -> skip ;
WS          : [ \t\f]+ -> skip ;
UNTERMINATED_STRING : '"' (ESC | ~["\\\r\n])* ;   // (an f-string's: fstringRest)
ERRCHAR     : . ;

fragment DIGITS   : [0-9] ('_'? [0-9])* ;
fragment EXPONENT : [eE] [+-]? DIGITS ;
fragment ESC      : '\\' . ;
