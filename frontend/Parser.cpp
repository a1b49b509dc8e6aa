#include "frontend/Parser.h"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>
#include <exception>
#include <functional>
#include <set>

#include "TDLLexer.h"
#include "TDLParser.h"
#include "frontend/AstBuilder.h"

namespace tdl {

namespace {

using tdlgen::TDLLexer;

std::string describeToken(antlr4::Token* t) {
  switch (t->getType()) {
    case antlr4::Token::EOF: return "end of file";
    case TDLLexer::NEWLINE: return "end of line";
    case TDLLexer::UNTERMINATED_STRING: return "unterminated string";
    case TDLLexer::ERRCHAR: return fmt::format("character '{}'", t->getText());
    default: return fmt::format("'{}'", t->getText());
  }
}

// Turns ANTLR's syntax errors into SPEC §9 diagnostics, at most kMaxSyntaxErrors,
// one per position.
class SyntaxErrorListener : public antlr4::BaseErrorListener {
 public:
  SyntaxErrorListener(uint32_t file, DiagEngine& diags) : file_(file), diags_(diags) {}

  // Where an error at the end of the file stands: just after its last token that is not a
  // newline (ANTLR puts it on the line after the last, past comments and blank lines).
  static void endOfTokens(antlr4::Recognizer* rec, antlr4::Token* eof, size_t& line, size_t& col) {
    auto* parser = dynamic_cast<antlr4::Parser*>(rec);
    if (!parser) return;
    antlr4::TokenStream* ts = parser->getTokenStream();
    for (size_t k = eof->getTokenIndex(); k-- > 0;) {
      antlr4::Token* t = ts->get(k);
      if (t->getChannel() != antlr4::Token::DEFAULT_CHANNEL || t->getType() == TDLLexer::NEWLINE) continue;
      size_t n = 0;
      for (unsigned char ch : t->getText()) n += (ch & 0xC0) != 0x80;  // code points, as ANTLR counts
      line = t->getLine();
      col = t->getCharPositionInLine() + n;
      return;
    }
  }

  // Python's spellings, seen as the token before the one in error: what TDL writes instead.
  static std::string pythonHint(antlr4::Recognizer* rec, antlr4::Token* tok) {
    auto* parser = dynamic_cast<antlr4::Parser*>(rec);
    if (!parser || !tok || tok->getTokenIndex() == 0) return "";
    antlr4::TokenStream* ts = parser->getTokenStream();
    size_t i = tok->getTokenIndex();
    antlr4::Token* prev = nullptr;
    while (i-- > 0) {
      prev = ts->get(i);
      if (prev->getChannel() == antlr4::Token::DEFAULT_CHANNEL) break;
    }
    if (!prev) return "";
    std::string p = prev->getText();
    if (p == "elif") return " (TDL writes `else if`)";
    if (p == "@" && tok->getText() == "=") return " (TDL has no `@=`: write `x = x @ w`)";
    if (p == "def") return " (TDL declares functions as `fn name(params) { ... }`)";
    if (p == "lambda") return " (TDL writes lambdas as `fn(x) => expr`)";
    if (prev->getType() == TDLLexer::FSTRING) {
      // f"{d["k"]"}: a field not closed, so the quote after its string ends the f-string
      // (f"{d["k"]}" is whole: a field's strings nest, as Python 3.12's).
      std::string f = prev->getText();
      size_t open = f.rfind('{'), close = f.rfind('}');
      if (open != std::string::npos && (close == std::string::npos || close < open))
        return " (a `{` field of the f-string before it is not closed: end the field with `}` before the "
               "f-string's closing quote)";
    }
    // The first token of the line the error is on.
    auto firstOnLine = [&] {
      antlr4::Token* first = tok;
      for (size_t k = tok->getTokenIndex(); k-- > 0;) {
        antlr4::Token* t2 = ts->get(k);
        if (t2->getLine() != tok->getLine() || t2->getType() == TDLLexer::NEWLINE) break;
        if (t2->getChannel() == antlr4::Token::DEFAULT_CHANNEL) first = t2;
      }
      return first;
    };
    if (tok->getType() == TDLLexer::COLON) {
      // `if x:`, `for i in r:`, `else:`: the line starts with a block statement.
      std::string f = firstOnLine()->getText();
      if (f == "if" || f == "else" || f == "while" || f == "for" || f == "with")
        return " (blocks are in braces: `" + f + " ... { ... }`)";
    }
    return "";
  }

  // The unknown escapes of the file's string literals (line, 0-based column), in order: the
  // AST, which reports them, is not built when there are syntax errors, so they are reported
  // here among those (SPEC §9: every syntax error of a file).
  void setEscapes(std::vector<std::pair<size_t, size_t>> at) { escapes_ = std::move(at); }

  // Reports the escapes before (line, col), or all of them.
  void flushEscapes(size_t line = SIZE_MAX, size_t col = SIZE_MAX) {
    for (; nextEscape_ < escapes_.size() && escapes_[nextEscape_] < std::make_pair(line, col); ++nextEscape_) {
      if (reported_ >= kMaxSyntaxErrors) continue;
      ++reported_;
      uint32_t l = static_cast<uint32_t>(escapes_[nextEscape_].first), c = static_cast<uint32_t>(escapes_[nextEscape_].second) + 1;
      diags_.error(Loc{file_, l, c, l, c, l, c + 2}, kUnknownEscape);
    }
  }

  void syntaxError(antlr4::Recognizer* rec, antlr4::Token* tok, size_t line, size_t col,
                   const std::string& msg, std::exception_ptr) override {
    ++count_;
    if (tok && tok->getType() == antlr4::Token::EOF) endOfTokens(rec, tok, line, col);
    if (!seen_.insert({line, col}).second) return;
    flushEscapes(line, col);
    if (reported_ >= kMaxSyntaxErrors) {
      if (!stopped_) {  // said once, where the first error not shown is
        stopped_ = true;
        uint32_t l = static_cast<uint32_t>(line), c = static_cast<uint32_t>(col) + 1;
        diags_.report({Severity::Note, Loc{file_, l, c, l, c, l, c + 1},
                       fmt::format("too many syntax errors: stopped after {}; fix these and check again", kMaxSyntaxErrors),
                       {}});
      }
      return;
    }
    ++reported_;
    uint32_t len = 1;
    std::string what = "unexpected input";
    if (tok) {
      what = tok->getType() == TDLLexer::UNTERMINATED_STRING
                 ? "unterminated string literal"
                 : "unexpected " + describeToken(tok);
      if (tok->getType() != antlr4::Token::EOF && tok->getType() != TDLLexer::NEWLINE)
        len = std::max<uint32_t>(1, static_cast<uint32_t>(tok->getStopIndex() - tok->getStartIndex() + 1));
    }
    // ANTLR says "... expecting {a, b, c}": keep short expectations.
    auto pos = msg.find("expecting ");
    if (pos != std::string::npos && tok && tok->getType() != TDLLexer::UNTERMINATED_STRING) {
      std::string exp = msg.substr(pos + 10);
      size_t commas = std::count(exp.begin(), exp.end(), ',');
      if (commas < 4) {
        if (!exp.empty() && exp.front() == '{') exp = exp.substr(1, exp.size() - 2);
        for (auto [from, to] : {std::pair<std::string, std::string>{"<EOF>", "end of file"}, {"NEWLINE", "end of line"},
                                {"NAME", "a name"}, {"STRING", "a string"}}) {
          for (size_t at = exp.find(from); at != std::string::npos; at = exp.find(from, at + to.size()))
            exp.replace(at, from.size(), to);
        }
        what += ", expected " + exp;
      }
    }
    what += pythonHint(rec, tok);
    uint32_t l = static_cast<uint32_t>(line), c = static_cast<uint32_t>(col) + 1;
    diags_.error(Loc{file_, l, c, l, c, l, c + len}, "syntax error: " + what);
  }

  int count() const { return count_; }

 private:
  uint32_t file_;
  DiagEngine& diags_;
  std::vector<std::pair<size_t, size_t>> escapes_;
  size_t nextEscape_ = 0;
  int count_ = 0, reported_ = 0;
  bool stopped_ = false;
  std::set<std::pair<size_t, size_t>> seen_;
};

// ANTLR's input as UTF-32, decoded here into a buffer of exactly one code point per
// character (the runtime's own decoder reserves 20 bytes per input byte). The text is
// valid UTF-8 (checked before).
class Utf32InputStream : public antlr4::ANTLRInputStream {
 public:
  explicit Utf32InputStream(const std::string& text) { _data = decodeUtf8(text); }
};

// The token buffer, filled at most up to a bound (the lexer stops there).
class BoundedTokenStream : public antlr4::CommonTokenStream {
 public:
  using antlr4::CommonTokenStream::CommonTokenStream;
  // False when the source has more than `limit` tokens.
  bool fillAtMost(size_t limit) {
    lazyInit();
    while (!_fetchedEOF) {
      fetch(4096);
      if (_tokens.size() > limit) return false;
    }
    return true;
  }
};

// Checks bracket depth and chains of prefix operators / `**` / lambdas before
// the recursive-descent parser sees them (SPEC §4: at most kMaxNesting deep).
bool checkNesting(antlr4::CommonTokenStream& tokens, uint32_t file, DiagEngine& diags) {
  int depth = 0, chain = 0;
  for (auto* t : tokens.getTokens()) {
    size_t ty = t->getType();
    switch (ty) {
      case TDLLexer::LPAREN: case TDLLexer::LBRACK: case TDLLexer::LBRACE: ++depth; break;
      case TDLLexer::RPAREN: case TDLLexer::RBRACK: case TDLLexer::RBRACE: depth = std::max(0, depth - 1); break;
      case TDLLexer::NEWLINE: case TDLLexer::SEMI: chain = 0; break;
      case TDLLexer::MINUS: case TDLLexer::TILDE: case TDLLexer::NOT: case TDLLexer::POW:
      case TDLLexer::FATARROW: case TDLLexer::IF: case TDLLexer::WHILE: case TDLLexer::FOR:
        ++chain; break;
      default: break;
    }
    if (depth > kMaxNesting || chain > kMaxNesting) {
      uint32_t l = static_cast<uint32_t>(t->getLine()), c = static_cast<uint32_t>(t->getCharPositionInLine()) + 1;
      diags.error(Loc{file, l, c, l, c, l, c + 1},
                  fmt::format("nesting too deep (more than {} levels)", kMaxNesting));
      return false;
    }
  }
  return true;
}

}  // namespace

std::unique_ptr<Module> parseModule(const SourceManager& sm, uint32_t fileId, DiagEngine& diags) {
  const SourceFile& f = sm.file(fileId);
  size_t bad = findInvalidUtf8(f.text);
  if (bad != std::string::npos) {
    // Source is UTF-8 (SPEC §1); the ANTLR input stream would throw on anything else.
    auto it = std::upper_bound(f.lineStarts.begin(), f.lineStarts.end(), bad);
    uint32_t line = static_cast<uint32_t>(it - f.lineStarts.begin());
    uint32_t col = static_cast<uint32_t>(bad - f.lineStarts[line - 1]) + 1;
    diags.error(Loc{fileId, line, col, line, col, line, col + 1}, "the file is not valid UTF-8");
    return nullptr;
  }
  Utf32InputStream input(f.text);
  TDLLexer lexer(&input);
  lexer.removeErrorListeners();
  BoundedTokenStream tokens(&lexer);
  if (!tokens.fillAtMost(kMaxTokens)) {
    // Parse trees take about 1.5 KiB per token: the bound keeps a check well under a GiB.
    diags.error(Loc{fileId, 1, 1, 1, 1, 1, 2},
                fmt::format("the file is too large to parse: more than {} tokens (keep data in .npy, "
                            ".safetensors or CSV files and load it)",
                            kMaxTokens));
    return nullptr;
  }
  if (!checkNesting(tokens, fileId, diags)) return nullptr;

  // Two stages, as ANTLR advises: the fast SLL prediction with a bail-out error strategy
  // parses any valid program; only when it fails is the input parsed again with full LL
  // prediction and the default error recovery, for the diagnostics.
  tdlgen::TDLParser parser(&tokens);
  parser.removeErrorListeners();
  parser.getInterpreter<antlr4::atn::ParserATNSimulator>()->setPredictionMode(antlr4::atn::PredictionMode::SLL);
  parser.setErrorHandler(std::make_shared<antlr4::BailErrorStrategy>());
  tdlgen::TDLParser::ProgramContext* tree = nullptr;
  try {
    tree = parser.program();
  } catch (antlr4::ParseCancellationException&) {
    tree = nullptr;
  }
  SyntaxErrorListener listener(fileId, diags);
  if (!tree) {
    // What Python says first: a bracket the file never closes (a valid program closes them
    // all; the syntax errors follow, at a statement the bracket swallowed or at the end).
    if (lexer.mismatchChar) {  // Python's words
      auto [line, col] = lexer.mismatchAt;
      uint32_t l = static_cast<uint32_t>(line), c = static_cast<uint32_t>(col) + 1;
      diags.error(Loc{fileId, l, c, l, c, l, c + 1},
                  fmt::format("closing '{}' does not match the '{}' at {}:{}", lexer.mismatchChar, lexer.mismatchOpen,
                              lexer.mismatchOpenAt.first, lexer.mismatchOpenAt.second + 1));
    } else if (!lexer.bracketStack.empty()) {
      auto [line, col] = lexer.bracketAt.back();
      const char open = lexer.bracketStack.back() == 'r' ? '{' : lexer.bracketStack.back();
      uint32_t l = static_cast<uint32_t>(line), c = static_cast<uint32_t>(col) + 1;
      diags.error(Loc{fileId, l, c, l, c, l, c + 1}, fmt::format("'{}' was never closed", open));
    }
    parser.getTreeTracker().reset();
    tokens.seek(0);
    parser.reset();
    parser.addErrorListener(&listener);
    parser.getInterpreter<antlr4::atn::ParserATNSimulator>()->setPredictionMode(antlr4::atn::PredictionMode::LL);
    parser.setErrorHandler(std::make_shared<antlr4::DefaultErrorStrategy>());
    std::vector<std::pair<size_t, size_t>> escapes;
    for (antlr4::Token* t : tokens.getTokens()) {
      if (t->getType() != TDLLexer::STRING) continue;
      std::string raw = t->getText(), out;
      size_t bad = 0;
      if (raw.size() >= 2 && !decodeEscapes(std::string_view(raw).substr(1, raw.size() - 2), out, bad))
        escapes.emplace_back(t->getLine(), t->getCharPositionInLine() + 1 + bad);
    }
    listener.setEscapes(std::move(escapes));
    tree = parser.program();
    if (listener.count() > 0) listener.flushEscapes();
  }
  if (listener.count() > 0) return nullptr;

  auto m = std::make_unique<Module>();
  m->file = fileId;
  m->path = f.path;
  AstBuilder builder(fileId, diags);
  builder.buildProgram(tree, *m);
  if (builder.failed()) return nullptr;
  return m;
}

}  // namespace tdl
