// Sema: scopes, resolution, and the static rules of SPEC §3 and §6.
#include <catch2/catch.hpp>

#include "TestUtil.h"

using tdl::test::check;
using tdl::test::has;


TEST_CASE("top-level fns are hoisted; top-level lets are visible from where they stand") {
  CHECK(check("print(later(2))\nfn later(v) { return v * 2 }\n").ok);
  auto r = check("print(y)\nlet y = 1\n");
  CHECK(has(r.messages, "1:7 undefined name 'y'"));
  // Inside a function body every top-level name resolves.
  CHECK(check("fn f() { return y }\nlet y = 1\n").ok);
}

TEST_CASE("block scopes, shadowing, with does not open a scope") {
  CHECK(check("let x = 1\nif true { let x = 2; print(x) }\nlet x = x + 10\n").ok);
  CHECK(has(check("if true { let z = 2 }\nprint(z)\n").messages, "undefined name 'z'"));
  CHECK(check("with tape() as t { let y = 2.0 }\nprint(y, t)\n").ok);
  CHECK(has(check("for i in range(2) { let t = i }\nprint(i)\n").messages, "undefined name 'i'"));
}

TEST_CASE("assignment needs a var; parameters are assignable; captures are not") {
  CHECK(has(check("let x = 1\nx = 2\n").messages, "2:1 cannot assign to 'x'"));
  CHECK(check("fn f(a) { a = a + 1; return a }\n").ok);
  CHECK(check("var r = {w: 1.0}\nr.w = 2.0\nvar xs = zeros([3])\nxs[0] += 1.0\n").ok);
  CHECK(has(check("let r = {w: 1.0}\nr.w = 2.0\n").messages, "cannot assign to 'r'"));
  CHECK(has(check("fn f() { var s = 1\n let g = fn() => s\n return g }\nfn h(v) { let k = fn() => v; return k }\n").messages, "") );
  CHECK(has(check("fn f() { var s = 1\nfn g() { s = 2 }\nreturn g }\n").messages, "captured"));
  CHECK(has(check("fn f() {}\nf = 1\n").messages, "cannot assign to 'f'"));
}

TEST_CASE("closures record what they capture") {
  auto r = check("fn make(start) { let k = 2\n return fn(step) => start + step * k }\n");
  REQUIRE(r.ok);
  CHECK(has(r.ast, "Lambda(step) captures[start, k]"));
}

TEST_CASE("graph fn rules: no top-level var, no recursion (except --eager), top-level let is fine") {
  CHECK(check("let scale = 3.0\ngraph fn f(x) { return x * scale }\n").ok);
  CHECK(has(check("var c = 0\ngraph fn f(x) { return x + c }\n").messages, "2:28 graph fn 'f' cannot use the top-level var 'c'"));
  auto rec = "graph fn r(n) {\n  if n > 0 { return r(n - 1) }\n  return 0\n}\n";
  CHECK(has(check(rec).messages, "2:21 recursion is not supported in graph fn 'r'"));
  CHECK(check(rec, /*eager=*/true).ok);
  CHECK(check("fn fact(n) { if n <= 1 { return 1 }\n return n * fact(n - 1) }\n").ok);
  // The var rule holds in --eager too.
  CHECK_FALSE(check("var c = 0\ngraph fn f(x) { return x + c }\n", true).ok);
  // Through a lambda a top-level let binds, and what it calls (before or after the graph fn).
  CHECK(has(check("var v = 1.0\nlet get = fn() => v\ngraph fn k(x) { return x + get() }\n").messages,
            "2:19 a lambda uses the top-level var 'v' and is called from graph fn 'k'"));
  CHECK(has(check("graph fn k(x) { return lam(x) }\nvar n = 0\nfn bump(x) { n = n + 1; return x }\n"
                  "let lam = fn(x) => bump(x)\n", true).messages,
            "3:14 'bump' uses the top-level var 'n' and is called from graph fn 'k'"));
  // A lambda that reads no var, one a graph fn does not call, and a var bound to a lambda
  // (which a graph fn cannot name anyway) are fine.
  CHECK(check("var n = 0\nlet ok = fn(x) => x * 2.0\nlet uses = fn(x) => x + n\n"
              "graph fn k(x) { return ok(x) }\nfn plain(x) { return uses(x) }\n").ok);
}

TEST_CASE("tensor literals: rectangular numeric literals are tensors, ragged ones are errors") {
  auto r = check("let a = [[1, 2], [3, 4]]\nlet b = [-1, 2.5]\nlet c = [a, a]\nlet d = []\n");
  REQUIRE(r.ok);
  CHECK(has(r.ast, "Let a @1:1\n    TensorLiteral"));
  CHECK(has(r.ast, "Let b @2:1\n    TensorLiteral"));
  CHECK(has(r.ast, "Let c @3:1\n    List"));
  CHECK(has(r.ast, "Let d @4:1\n    List"));
  CHECK(has(check("let x = [[1, 2], [3]]\n").messages, "1:9 ragged tensor literal"));
}

TEST_CASE("break/continue/return placement") {
  CHECK(has(check("break\n").messages, "'break' outside a loop"));
  CHECK(has(check("return 1\n").messages, "'return' outside a function"));
  CHECK(has(check("while true { fn g() { continue } }\n").messages, "'continue' outside a loop"));
  CHECK(check("fn f() { for i in range(3) { if i == 1 { break } } return 0 }\n").ok);
}

TEST_CASE("imports: missing files and modules, unknown members") {
  CHECK(has(check("import \"nope.tdl\" as m\nprint(m.x)\n").messages, "1:8 cannot find imported file 'nope.tdl'"));
  auto r = check("import nn\nprint(nn.softmax([1.0]), nn.nothing)\n");
  CHECK(has(r.messages, "module 'nn' has no member 'nothing'"));
}
