// One diagnostic engine for the whole tool (SPEC §9): `PATH:LINE:COL: error: MSG`,
// then the source line and a caret under the span; or one JSON object per line
// (rustc's shape) with --diagnostics=json.
#pragma once
#include <cstdio>
#include <stdexcept>
#include <set>
#include <string>
#include <vector>

#include "frontend/Source.h"

namespace tdl {

// A note follows errors it says something about (where too many syntax errors stopped).
enum class Severity { Error, Warning, Note };

const char* severityName(Severity s);  // "error", "warning", "note"

struct Diagnostic {
  Severity severity = Severity::Error;
  Loc loc;
  std::string message;
  std::vector<std::string> trace;  // "in fn f at a.tdl:7:5", innermost first
};

class DiagEngine {
 public:
  explicit DiagEngine(const SourceManager& sm, FILE* out = stderr);
  void setJson(bool on) { json_ = on; }
  void setColor(bool on) { color_ = on; }
  // When off, diagnostics are only collected (tests, the language server).
  void setPrint(bool on) { print_ = on; }

  void report(Diagnostic d);
  void error(const Loc& loc, std::string msg) { report({Severity::Error, loc, std::move(msg), {}}); }
  void warning(const Loc& loc, std::string msg) {
    report({Severity::Warning, loc, std::move(msg), {}});
  }

  int errorCount() const { return errors_; }
  const std::vector<Diagnostic>& all() const { return all_; }
  // Text of one diagnostic as printed (without colour).
  std::string render(const Diagnostic& d, bool color = false) const;
  std::string renderJson(const Diagnostic& d) const;
  std::string locString(const Loc& loc) const;  // "path:line:col"

 private:
  const SourceManager& sm_;
  FILE* out_;
  bool json_ = false, color_ = false, print_ = true;
  int errors_ = 0;
  std::vector<Diagnostic> all_;
  std::set<std::string> seen_;  // each diagnostic once (a chained comparison's middle operand is checked twice)
};

// A user-facing error thrown by the checker, the VM or the runtime, caught at
// the driver and reported through DiagEngine (exit status 1).
struct ScriptError : std::runtime_error {
  Loc loc;
  std::vector<std::string> trace;
  ScriptError(const Loc& l, const std::string& msg) : std::runtime_error(msg), loc(l) {}
};

// A bug in TDL itself (exit status 3, "internal error: ...").
struct InternalError : std::logic_error {
  using std::logic_error::logic_error;
};

// " (did you mean 'x'?)" for the candidate closest to `name` by edit distance (within a
// third of its length; names of 3 or more characters), or "". Shared by Sema, the VM and
// the tracer for names, fields, modules and keyword arguments.
std::string didYouMean(const std::string& name, const std::vector<std::string>& candidates);
size_t editDistance(const std::string& a, const std::string& b);

}  // namespace tdl
