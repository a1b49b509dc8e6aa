// The VM as the driver uses it: compile a checked Compilation to bytecode and
// run it, print its bytecode, or keep an interactive session (the REPL).
#pragma once
#include <memory>
#include <string>

#include "frontend/Frontend.h"
#include "vm/Interpreter.h"

namespace tdl::vm {

// Compiles and runs the program (module 0 after its imports). Script errors
// are reported through c.diags. Returns the exit status: 0, 1 for a script
// error, or the code given to exit().
int runProgram(Compilation& c, const VmOptions& opts);

// `tdl builtins`: every builtin with its parameters as its binder declares them, one per
// line (`sum(x, axis=…, keepdims=…)`), or as JSON ([{"name", "params", "required"}];
// params null for the builtins that bind their arguments themselves, such as print).
std::string builtinSignatures(bool json);
// Builtin `name`'s parameters for Sema's static keyword check (tdl::setBuiltinSignatures);
// null for a builtin that binds its own arguments.
const BuiltinSignature* staticBuiltinSignature(const std::string& name);

// The bytecode of every module and function, with source lines.
std::string bytecodeText(Compilation& c);

// An interactive session: each input is appended to the session's source,
// checked as a whole, and only its new statements are compiled and run.
class ReplSession {
 public:
  explicit ReplSession(VmOptions opts);
  ~ReplSession();
  // Whether `text` still has open brackets/braces/parentheses (or an
  // unterminated string), so that the REPL should read another line.
  static bool needsMore(const std::string& text) { return openBrackets(text) > 0; }
  // Brackets/braces/parentheses left open at the end of `text` (negative: more closed
  // than opened), not counting those in strings and comments.
  static int openBrackets(const std::string& text);
  // Runs one input; diagnostics go to stderr. Returns false when the input
  // asked to exit (`exit(code)`), with the code in exitCode().
  bool eval(const std::string& input);
  // :type EXPR: runs the input and gives the type of its value ("" when it has none);
  // false as eval's.
  bool evalType(const std::string& input, std::string& type);
  int exitCode() const { return exitCode_; }

  // For a notebook kernel (issue 23). Quiet: diagnostics are collected, not printed; after
  // each eval, lastErrors()/lastWarnings() hold them as `tdl check` prints them (caret
  // snippet, call chain), and lastMessage() the first error's message alone.
  void setQuiet(bool on) { quiet_ = on; }
  // The value of each top-level expression statement goes to the sink (instead of being
  // printed); kept across evals.
  void setValueSink(std::function<void(const Value&)> sink) { valueSink_ = std::move(sink); }
  bool lastFailed() const { return !lastErrors_.empty(); }
  const std::vector<std::string>& lastErrors() const { return lastErrors_; }
  const std::vector<std::string>& lastWarnings() const { return lastWarnings_; }
  const std::string& lastMessage() const { return lastMessage_; }
  // Lines of the session's source before the next input (its first line is this + 1).
  size_t linesSoFar() const;
  // The value of the session's top-level name `name`; false when it has none (yet).
  bool lookup(const std::string& name, Value& out) const;
  // Every accepted input so far, as one source (what completion analyses).
  const std::string& source() const { return source_; }

 private:
  void collect(Compilation& c);
  bool quiet_ = false;
  std::function<void(const Value&)> valueSink_;
  std::vector<std::string> lastErrors_, lastWarnings_;
  std::string lastMessage_;
  VmOptions opts_;
  std::string source_;      // every accepted input so far
  size_t statements_ = 0;   // top-level statements already run
  std::vector<std::unique_ptr<Compilation>> comps_;  // kept alive: closures refer to their code
  std::vector<std::unique_ptr<Program>> programs_;
  std::unique_ptr<Interpreter> vm_;
  std::function<void(const Value&)> sink_;  // evalType's
  int exitCode_ = 0;
};

}  // namespace tdl::vm
