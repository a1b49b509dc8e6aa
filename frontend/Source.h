// Source files and positions. Every AST node carries a Loc; diagnostics and
// (later) bytecode line tables and IR ops carry the same Loc.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tdl {

// A position in a source file. `line`/`col` (1-based; col counts bytes) is
// the caret; [bline:bcol, eline:ecol) is the whole span underlined with `~`.
struct Loc {
  uint32_t file = 0;
  uint32_t line = 0, col = 0;
  uint32_t bline = 0, bcol = 0, eline = 0, ecol = 0;
  // Which inlined call of a fn an op of a graph fn's trace stands for (0: none), so that
  // the ops of one fn inlined at two call sites each name their own call chain.
  uint32_t inst = 0;
  bool valid() const { return line != 0; }
  static Loc point(uint32_t file, uint32_t line, uint32_t col) {
    return Loc{file, line, col, line, col, line, col + 1};
  }
  // The same span with the caret moved to `caret`.
  Loc withCaret(const Loc& caret) const {
    Loc l = *this;
    l.line = caret.line;
    l.col = caret.col;
    return l;
  }
  // The span from the start of `a` to the end of `b`, caret at a's caret.
  static Loc span(const Loc& a, const Loc& b) {
    Loc l = a;
    l.eline = b.eline;
    l.ecol = b.ecol;
    return l;
  }
};

struct SourceFile {
  std::string path;     // as given (relative paths stay relative in messages)
  std::string text;
  std::vector<size_t> lineStarts;
  Loc importedAt;  // an imported file: the import that loaded it (the name's position in the importer)
  SourceFile(std::string p, std::string t);
  std::string_view lineText(uint32_t line) const;  // without the newline
  uint32_t lineCount() const { return static_cast<uint32_t>(lineStarts.size()); }
};

// Owns every file read during one compilation; a Loc's `file` indexes it.
class SourceManager {
 public:
  uint32_t add(std::string path, std::string text);
  const SourceFile& file(uint32_t id) const { return *files_.at(id); }
  SourceFile& fileMut(uint32_t id) { return *files_.at(id); }
  size_t size() const { return files_.size(); }

 private:
  std::vector<std::unique_ptr<SourceFile>> files_;
};

// Runs fn on a thread with a 512 MiB stack (deep legal input recurses deeply), rethrowing
// what it throws.
void runWithLargeStack(const std::function<void()>& fn);
// A program's main (the tdl tool, a native executable): `body` on the large stack; any
// exception that escapes it is an internal error (message on stderr, exit status 3).
// Flushes stdout; returns the exit status.
int runMainGuarded(const std::function<int()>& body);

// Byte offset of the first invalid UTF-8 sequence in `s`, or std::string::npos.
size_t findInvalidUtf8(const std::string& s);
// The code points of UTF-8 text `s` (valid, or with bytes already replaced: a broken
// sequence decodes to something, never reads past the end).
std::u32string decodeUtf8(const std::string& s);

}  // namespace tdl
