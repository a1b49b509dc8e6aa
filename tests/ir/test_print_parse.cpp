// The text form: round trips, attributes and constants, and parse errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "Helpers.h"
#include "ir/Builder.h"
#include "runtime/Create.h"

using namespace tdl::ir;
using namespace tdl::ir::test;
using tdl::rt::DType;
namespace rt = tdl::rt;

namespace {
// print → parse → print is the identity.
void round_trip(const std::string& text) {
  auto m = parse_ok(text);
  std::string once = to_string(*m);
  std::string twice = to_string(*parse_ok(once));
  CHECK(once == twice);
}
}  // namespace

TEST_CASE("round trip of every kind of op", "[ir][text]") {
  round_trip(R"(
func @all<B, ?0>(%x: f32[B, 4], %w: f32[4, 3], %i: i64[], %p: bool[], %s: f32[?0]) -> (f32[B, 3]) {
  %a = matmul(%x, %w) : f32[B, 3] loc(3:12)
  %b = cast(%a) : f64[B, 3] loc(2:4:1)
  %c = select(%p, %a, %a) : f32[B, 3]
  %d = broadcast_to(%s) : f32[B, ?0]
  %e = reshape(%x) : f32[B, 2, 2]
  %f = transpose(%x) {perm = [1, 0]} : f32[4, B]
  %g = reduce(%x) {axes = [0, 1], keepdims = true, kind = "logsumexp"} : f32[1, 1]
  %h = argmin(%x) {axis = 1, keepdims = false} : i64[B]
  %j = concat(%x, %x) {axis = 1} : f32[B, 8]
  %k = slice(%x) {start = [0, 3], step = [1, -1], stop = [9223372036854775807, -9223372036854775808]} : f32[B, 4]
  %l = index(%x, %i) : f32[4]
  %m = update(%x, %l, %i) : f32[B, 4]
  %n = dim(%x) {axis = 0} : i64[]
  %o = iota() {axis = 0} : i32[5, 2]
  %q = random() {dist = "normal"} : f64[B]
  %r = random(%i, %n) {dist = "int"} : i64[3]
  print(%n, %i) {format = "n={} i={:>4}\n\"q\" {{}}"}
  assert(%p) {message = "tab\there"}
  %t = call_runtime(%x) {callee = "load_npy", path = "a\\b.npy", scale = 0.5, k = 3, dt = f64, flag = false} : f32[2]
  return(%a)
}
)");
}

TEST_CASE("round trip of dense constants, small, splat and hex", "[ir][text]") {
  Module m;
  Function& f = m.add_function("k");
  Builder b(f);
  b.constant(rt::Tensor::from_vector<float>({0.1f, -0.0f, NAN, INFINITY, -INFINITY, 1e-7f, 3.0f, 16777216.0f}, {2, 4}));
  b.constant(rt::Tensor::from_vector<double>({0.1, 1e300}, {2}));
  b.constant(rt::Tensor::from_vector<int32_t>({INT32_MIN, INT32_MAX}, {2}));
  b.constant(rt::Tensor::from_vector<int64_t>({INT64_MIN}, {}));
  b.constant(rt::Tensor::from_vector<bool>({true, false}, {2}));
  b.constant(rt::zeros({2, 50}, DType::F32));         // splat
  b.constant(rt::arange(0.0, 40.0, 1.0, DType::F64));  // hex
  b.constant(rt::zeros({0, 3}, DType::I64));          // empty
  b.ret({});
  std::string text = to_string(m);
  CHECK_THAT(text, Catch::Contains("dense<[0.1, -0.0, nan, inf, -inf, 1e-07, 3.0, 16777216.0] : f32[2, 4]>"));
  CHECK_THAT(text, Catch::Contains("dense<splat 0.0 : f32[2, 50]>"));
  CHECK_THAT(text, Catch::Contains("dense<hex \"0000000000000000000000000000f03f"));
  CHECK_THAT(text, Catch::Contains("dense<[] : i64[0, 3]>"));
  auto back = parse_ok(text);
  CHECK(to_string(*back) == text);
  // the values are bit-exact
  const Block& e1 = m.functions[0]->entry();
  const Block& e2 = back->functions[0]->entry();
  for (size_t i = 0; i + 1 < e1.size(); ++i) CHECK(tensor_equal(e1.op(i).tensor_attr("value"), e2.op(i).tensor_attr("value")));
}

TEST_CASE("dense constants stored elsewhere print and parse as weight references", "[ir][text]") {
  Module m;
  Function& f = m.add_function("k");
  Builder b(f);
  rt::Tensor w = rt::arange(0.0, 40.0, 1.0, DType::F32);
  b.constant(w);
  b.constant(rt::Tensor::from_vector<float>({1.0f, 2.0f}, {2}));
  b.ret({});
  std::string text = to_string(*m.functions[0], [&](const rt::Tensor& t) { return t.raw() == w.raw() ? "w0" : ""; });
  CHECK_THAT(text, Catch::Contains("dense<weight \"w0\" : f32[40]>"));
  CHECK_THAT(text, Catch::Contains("dense<[1.0, 2.0] : f32[2]>"));
  // Resolved by the lookup: the same function, bit for bit.
  auto back = parse_module(text, [&](const std::string& name) -> rt::Tensor {
    if (name != "w0") throw rt::Error("no weight " + name);
    return w;
  });
  CHECK(to_string(*back) == to_string(m));
  // An unknown name, or a tensor of another type, is a parse error at the name.
  auto fails = [&](const WeightLookup& lookup, const char* words) {
    try {
      parse_module(text, lookup);
      FAIL("no error");
    } catch (const ParseError& e) {
      CHECK_THAT(std::string(e.what()), Catch::Contains(words));
    }
  };
  fails([](const std::string& n) -> rt::Tensor { throw rt::Error("no weight named '" + n + "'"); }, "no weight named 'w0'");
  fails([](const std::string&) { return rt::zeros({41}, DType::F32); }, "the weight 'w0' is f32[41], the constant is declared f32[40]");
  // Without a lookup, `weight` is not a dense form.
  CHECK_THROWS_AS(parse_module(text), ParseError);
}

TEST_CASE("round trip and verification of fused ops", "[ir][text][fusion]") {
  round_trip(R"(
func @f<N>(%x: f32[N], %y: f32[N], %s: f32[], %p: bool[N]) -> (f32[N]) {
  %r = fused(%x, %y, %s, %p) : f32[N] loc(2:3) {
  ^body(%a: f32[], %b: f32[], %c: f32[], %q: bool[]):
    %m = mul(%a, %c) : f32[]
    %e = exp(%b) : f32[]
    %t = select(%q, %m, %e) : f32[]
    yield(%t)
  }
  return(%r)
}
)");
  // an operand of another shape, a body argument of the wrong type, a non-fusable op
  CHECK_THAT(verify_error(R"(
func @f(%x: f32[4], %y: f32[3]) -> (f32[4]) {
  %r = fused(%x, %y) : f32[4] {
  ^body(%a: f32[], %b: f32[]):
    %m = mul(%a, %b) : f32[]
    yield(%m)
  }
  return(%r)
}
)"), Catch::Matchers::Contains("operand 1 is f32[3]: it does not broadcast to the result's shape f32[4]"));
  // Strided operands, and no operand of the result's shape: each of its dims is one's.
  round_trip(R"(
func @f<N, K>(%x: f32[N, 1, 2], %c: f32[K, 2]) -> (f32[N, K, 2], f32[N, K]) {
  %r = fused(%x, %c) : f32[N, K, 2] {
  ^body(%a: f32[], %b: f32[]):
    %m = sub(%a, %b) : f32[]
    yield(%m)
  }
  %s = fused_reduce(%x, %c) {axes = [2], keepdims = false, kind = "sum"} : f32[N, K] {
  ^body(%d: f32[], %e: f32[]):
    %n = sub(%d, %e) : f32[]
    yield(%n)
  }
  return(%r, %s)
}
)");
  CHECK_THAT(verify_error(R"(
func @f<N, K>(%x: f32[N, 1], %c: f32[1, 1]) -> (f32[N, K]) {
  %r = fused(%x, %c) : f32[N, K] {
  ^body(%a: f32[], %b: f32[]):
    %m = sub(%a, %b) : f32[]
    yield(%m)
  }
  return(%r)
}
)"), Catch::Matchers::Contains("the operands' shapes must give the result's shape f32[N, K]"));
  CHECK_THAT(verify_error(R"(
func @f<N, K>(%x: f32[N, 1], %c: f32[1, K]) -> (f32[N]) {
  %s = fused_reduce(%x, %c) {axes = [1], keepdims = false, kind = "sum"} : f32[N, K] {
  ^body(%d: f32[], %e: f32[]):
    %n = sub(%d, %e) : f32[]
    yield(%n)
  }
  return(%s)
}
)"), Catch::Matchers::Contains("the result must be f32[N]"));
  CHECK_THAT(verify_error(R"(
func @f(%x: f32[4]) -> (f32[4]) {
  %r = fused(%x) : f32[4] {
  ^body(%a: f64[]):
    %m = cast(%a) : f32[]
    yield(%m)
  }
  return(%r)
}
)"), Catch::Matchers::Contains("body argument 0 must be f32[]"));
  CHECK_THAT(verify_error(R"(
func @f(%x: f32[4]) -> (f32[4]) {
  %r = fused(%x) : f32[4] {
  ^body(%a: f32[]):
    %m = pow(%a, %a) : f32[]
    yield(%m)
  }
  return(%r)
}
)"), Catch::Matchers::Contains("this op cannot be fused"));
}

TEST_CASE("round trip of nested regions", "[ir][text]") {
  round_trip(R"(
func @nest(%n: i64[], %p: bool[]) -> (i64[]) {
  %z = constant() {value = dense<[0] : i64[]>} : i64[]
  %r = while(%z) : i64[] {
  ^cond(%a: i64[]):
    %c = lt(%a, %n) : bool[]
    yield(%c)
  } {
  ^body(%b: i64[]):
    %one = constant() {value = dense<[1] : i64[]>} : i64[]
    %b2 = cond(%p) : i64[] {
    ^then:
      %s = add(%b, %one) : i64[]
      yield(%s)
    } {
    ^else:
      yield(%b)
    }
    yield(%b2)
  }
  return(%r)
}
)");
}

namespace {
std::string parse_error(const std::string& text) {
  try {
    parse_module(text);
  } catch (const ParseError& e) {
    return e.what();
  }
  FAIL("expected a parse error for: " << text);
  return "";
}
}  // namespace

TEST_CASE("parse errors are line:col messages", "[ir][text][errors]") {
  CHECK(parse_error("func @f() -> () {\n  return(%x)\n}\n") == "2:10: error: use of undefined value '%x'");
  CHECK(parse_error("func @f() -> () {\n  %a = frob() : f32[]\n}") == "2:8: error: unknown op 'frob'");
  CHECK(parse_error("func @f(%a: f33[]) -> () {}") == "1:13: error: unknown dtype 'f33'");
  CHECK(parse_error("func @f(%a: f32[N]) -> () {}") == "1:17: error: undeclared symbolic dim 'N'");
  CHECK(parse_error("func @f(%a: f32[-1]) -> () {}") == "1:17: error: a dim cannot be negative");
  CHECK(parse_error("func @f(%a: f32[], %a: f32[]) -> () {}") == "1:20: error: value '%a' is defined twice");
  CHECK(parse_error("func @f() -> () {\n  %a = constant() {value = dense<[1, 2] : i64[3]>} : i64[3]\n") ==
        "2:28: error: 2 elements given for i64[3]");
  CHECK(parse_error("func @f() -> () {\n  %a = constant() {value = dense<[3000000000] : i32[]>} : i32[]\n") ==
        "2:35: error: '3000000000' does not fit in i32");
  CHECK(parse_error("func @f() -> () {\n  %a = constant() {value = dense<splat 1 : f32[99999999999]>} : f32[1]\n") ==
        "2:28: error: the constant is too large");
  CHECK(parse_error("func @f() -> () {\n  %a, %b = neg(%a) : f32[]\n") == "2:16: error: use of undefined value '%a'");
  CHECK(parse_error("func @f() -> () {\n  %a = iota() : f32[2] loc(1)\n") ==
        "2:24: error: expected loc(LINE:COL) or loc(FILE:LINE:COL)");
  CHECK(parse_error("func @f() -> () {") == "1:18: error: expected '}' before the end of the input");
  CHECK(parse_error("func @f() -> () { print() {format = \"abc") == "1:37: error: unterminated string");
  CHECK(parse_error("func @f() -> () { # }") == "1:19: error: unexpected character '#'");
  CHECK(parse_error("func @f() -> () {}\nfunc @f() -> () {}") == "2:6: error: function '@f' is defined twice");
  CHECK(parse_error("func @f(%a: f32[99999999999999999999]) -> () {}") ==
        "1:17: error: integer '99999999999999999999' does not fit in 64 bits");
}

TEST_CASE("the parser survives hostile input", "[ir][text][errors]") {
  // deep region nesting is an error, not a stack overflow
  std::string deep = "func @f(%p: bool[]) -> () {\n";
  for (int i = 0; i < 1000; ++i) deep += "cond(%p) {\n^then:\n";
  CHECK_THAT(parse_error(deep), Catch::Contains("regions nest too deeply"));
  // rank limit
  std::string wide = "func @f(%a: f32[";
  for (int i = 0; i < 40; ++i) wide += "1, ";
  CHECK_THAT(parse_error(wide + "1]) -> () {}"), Catch::Contains("rank exceeds"));
  // every prefix of a valid module fails cleanly or parses
  std::string good =
      "func @f<N>(%x: f32[N]) -> (f32[N]) {\n  %c = constant() {value = dense<[1.5] : f32[]>} : f32[]\n"
      "  %y = mul(%x, %c) : f32[N] loc(1:2)\n  return(%y)\n}\n";
  for (size_t n = 0; n <= good.size(); ++n) {
    try {
      parse_module(good.substr(0, n));
    } catch (const ParseError&) {
    }
  }
  SUCCEED();
}
