// The compiler and interpreter end to end on small programs, through the
// frontend (text in, stdout/diagnostics out).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "vm/Disassembler.h"
#include "vm/Vm.h"

using namespace tdl;

namespace {

struct Run {
  int status;
  std::string out;
};

// Runs `src` as a script, capturing stdout in a temporary file.
Run run(const std::string& src) {
  Compilation c;
  c.diags.setPrint(false);
  REQUIRE(c.load("test.tdl", SemaOptions{true}, &src));
  std::fflush(stdout);
  char path[] = "/tmp/tdl_vm_test_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  int saved = dup(1);
  dup2(fd, 1);
  int status = vm::runProgram(c, vm::VmOptions{true, false, {}});
  std::fflush(stdout);
  dup2(saved, 1);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(path);
  if (status != 0 && !c.diags.all().empty()) return {status, c.diags.all().back().message};
  return {status, ss.str()};
}

}  // namespace

TEST_CASE("a scalar loop runs", "[vm]") {
  auto r = run("var a = 1.0\nfor i in range(1000) { a = a * 0.5 + 0.5 }\nprint(a)\n");
  CHECK(r.status == 0);
  CHECK(r.out == "1.0\n");
}

TEST_CASE("value semantics of element updates", "[vm]") {
  auto r = run("var a = [1.0, 2.0]\nlet b = a\na[0] = 5.0\nprint(a, b)\n");
  CHECK(r.out == "[5.0, 2.0] [1.0, 2.0]\n");
}

TEST_CASE("run-time errors carry the message", "[vm]") {
  auto r = run("let x = 1.5\nif x { print(1) }\n");
  CHECK(r.status == 1);
  CHECK(r.out == "condition must be a bool scalar, got f32[]");
}

TEST_CASE("the disassembler names every opcode", "[vm]") {
  for (int i = 0; i <= static_cast<int>(vm::Op::Print); ++i) {
    CHECK(std::string(vm::opName(static_cast<vm::Op>(i))).size() > 1);
    CHECK(std::string(vm::opSemantics(static_cast<vm::Op>(i))).size() > 5);
  }
}

TEST_CASE("the REPL wants more input while brackets are open", "[repl]") {
  CHECK(vm::ReplSession::needsMore("fn f() {"));
  CHECK(vm::ReplSession::needsMore("print([1,\n 2"));
  CHECK_FALSE(vm::ReplSession::needsMore("print(\"{\")"));
  CHECK_FALSE(vm::ReplSession::needsMore("x = 1 # {"));
  // A line that ends inside a string is complete (its error shows now), brackets or not.
  CHECK_FALSE(vm::ReplSession::needsMore("print(\"a"));
  CHECK_FALSE(vm::ReplSession::needsMore("print(\"a\n1 + 1"));
  CHECK(vm::ReplSession::needsMore("print(\"a\",\n"));
}
