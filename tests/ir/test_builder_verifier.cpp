// The builder API and the verifier's messages.
#include <catch2/catch.hpp>

#include "Helpers.h"
#include "ir/Builder.h"
#include "runtime/Elementwise.h"

using namespace tdl::ir;
using namespace tdl::ir::test;
using tdl::rt::DType;
namespace rt = tdl::rt;

TEST_CASE("builder makes a verifying function with symbolic dims", "[ir][builder]") {
  Module m;
  Function& f = m.add_function("layer");
  f.syms = {"B"};
  Value* x = f.add_param(ty(DType::F32, {S("B"), K(4)}));
  Value* w = f.add_param(ty(DType::F32, {K(4), K(3)}));
  Builder b(f);
  b.set_loc(tdl::Loc::point(0, 3, 12));
  Value* y = b.matmul(x, w);
  Value* r = b.unary(rt::UnaryOp::Relu, y);
  Value* s = b.reduce(rt::ReduceOp::Sum, r, {1});
  Value* sl = b.slice(x, {1, 0}, {kSliceEnd, 4}, {1, 1});  // x[1:, :] has a new dim ?0
  Value* n = b.dim(sl, 0);
  b.print({s, n}, "s={} n={}");
  f.result_types = {y->type, s->type};
  b.ret({y, s});

  CHECK(y->type.str() == "f32[B, 3]");
  CHECK(s->type.str() == "f32[B]");
  CHECK(sl->type.str() == "f32[?0, 4]");
  CHECK(f.syms == std::vector<std::string>{"B", "?0"});
  CHECK(y->def()->loc.line == 3);
  CHECK(x->uses().size() == 2);
  CHECK(verify(m).empty());
  // and it round-trips through text
  std::string text = to_string(m);
  CHECK(to_string(*parse_ok(text)) == text);
}

TEST_CASE("builder control flow", "[ir][builder]") {
  Module m;
  Function& f = m.add_function("loop");
  Value* n = f.add_param(TensorType::scalar(DType::I64));
  Builder b(f);
  Value* zero = b.constant(rt::Tensor::scalar(int64_t{0}));
  Op& w = b.while_loop({zero});
  Builder c(f);
  c.set_insertion_end(w.region(0).block());
  c.yield({c.binary(rt::BinaryOp::Lt, w.region(0).block().arg(0), n)});
  c.set_insertion_end(w.region(1).block());
  Value* one = c.constant(rt::Tensor::scalar(int64_t{1}));
  c.yield({c.binary(rt::BinaryOp::Add, w.region(1).block().arg(0), one)});
  Value* p = b.binary(rt::BinaryOp::Gt, w.result(0), zero);
  Op& cond = b.cond(p, {TensorType::scalar(DType::I64)});
  c.set_insertion_end(cond.region(0).block());
  c.yield({w.result(0)});
  c.set_insertion_end(cond.region(1).block());
  c.yield({n});
  f.result_types = {TensorType::scalar(DType::I64)};
  b.ret({cond.result(0)});
  auto errors = verify(m);
  CHECK(errors.empty());
}

TEST_CASE("builder rejects bad operands", "[ir][builder]") {
  Module m;
  Function& f = m.add_function("f");
  Value* a = f.add_param(ty(DType::F32, {K(2), K(3)}));
  Value* c = f.add_param(ty(DType::F32, {K(4)}));
  Builder b(f);
  CHECK_THROWS_WITH(b.binary(rt::BinaryOp::Add, a, c), "cannot broadcast shapes [2, 3] and [4]");
  CHECK_THROWS_WITH(b.matmul(a, c), Catch::Contains("cannot multiply shapes [2, 3] and [4]"));
  CHECK_THROWS_WITH(b.reshape(a, {K(5)}), "cannot reshape [2, 3] into [5]");
  CHECK_THROWS_WITH(b.select(a, a, a), Catch::Contains("must be bool"));
}

namespace {
const char* kHeader = "func @f<N>(%x: f32[N, 3], %i: i64[], %p: bool[]) -> (f32[N, 3]) {\n";
std::string fn(const std::string& body) { return std::string(kHeader) + body + "}\n"; }
}  // namespace

TEST_CASE("verifier messages name the op, its location and the problem", "[ir][verifier]") {
  CHECK(verify_error(fn("  %y = add(%x, %x) : f32[N, 4] loc(12:5)\n  return(%x)\n")) ==
        "@f: 'add' at 12:5: result type f32[N, 4] does not match the inferred f32[N, 3]");
  CHECK(verify_error(fn("  %y = add(%x) : f32[N, 3]\n  return(%x)\n")) == "@f: 'add': expected 2 operands, got 1");
  CHECK(verify_error(fn("  %y = neg(%x) : f32[N, 3]\n")) == "@f: a block of the function body does not end in a terminator");
  CHECK(verify_error(fn("  return(%x)\n  %y = neg(%x) : f32[N, 3]\n  return(%y)\n")) ==
        "@f: 'return': a terminator must be the last op of its block");
  CHECK(verify_error(fn("  return(%i)\n")) == "@f: 'return': returns i64[] as value 0, expected f32[N, 3]");
  CHECK(verify_error(fn("  %y = reduce(%x) {axes = [1], keepdims = false} : f32[N]\n  return(%x)\n")) ==
        "@f: 'reduce': missing attribute 'kind' (a string)");
  CHECK(verify_error(fn("  %y = reduce(%x) {axes = [1], keepdims = 1, kind = \"sum\"} : f32[N]\n  return(%x)\n")) ==
        "@f: 'reduce': attribute 'keepdims' must be a bool");
  CHECK(verify_error(fn("  %y = index(%x, %p) : f32[3]\n  return(%x)\n")) ==
        "@f: 'index': an index must be an integer scalar, got bool[]");
  CHECK(verify_error(fn("  assert(%i) {message = \"m\"}\n  return(%x)\n")) ==
        "@f: 'assert': condition must be a bool scalar, got i64[]");
  CHECK(verify_error(fn("  yield(%x)\n")) == "@f: 'yield': yield is only allowed in a region of cond or while");
}

TEST_CASE("verifier checks SSA scoping", "[ir][verifier]") {
  // %inner is defined in the then region and used after the cond
  std::string text = fn(
      "  %r = cond(%p) : f32[N, 3] {\n  ^then:\n    %inner = neg(%x) : f32[N, 3]\n    yield(%inner)\n"
      "  } {\n  ^else:\n    yield(%x)\n  }\n  %z = add(%inner, %r) : f32[N, 3]\n  return(%z)\n");
  CHECK(verify_error(text) == "@f: 'add': operand 0 is used outside the scope of its definition");
}

TEST_CASE("verifier checks cond and while signatures", "[ir][verifier]") {
  CHECK(verify_error(fn("  %r = cond(%i) : f32[N, 3] {\n  ^then:\n    yield(%x)\n  } {\n  ^else:\n    yield(%x)\n  }\n"
                        "  return(%r)\n")) == "@f: 'cond': condition must be a bool scalar, got i64[]");
  CHECK(verify_error(fn("  %r = cond(%p) : f32[N, 3] {\n  ^then:\n    yield(%x)\n  } {\n  ^else:\n    yield(%i)\n  }\n"
                        "  return(%r)\n")) == "@f: 'cond': the else region yields i64[] as value 0, expected f32[N, 3]");
  CHECK(verify_error(fn("  %r = while(%i) : i64[] {\n  ^cond(%a: i64[]):\n    yield(%a)\n  } {\n  ^body(%b: i64[]):\n"
                        "    yield(%b)\n  }\n  return(%x)\n")) ==
        "@f: 'while': the cond region yields i64[] as value 0, expected bool[]");
  CHECK(verify_error(fn("  %r = while(%i) : i64[] {\n  ^cond(%a: f32[]):\n    yield(%p)\n  } {\n  ^body(%b: i64[]):\n"
                        "    yield(%b)\n  }\n  return(%x)\n")) == "@f: 'while': the cond region must take the carried types");
  // a more specific initial value fits a symbolic carried dim
  auto m = parse_ok(
      "func @g<?0>(%x: f32[3], %p: bool[]) -> (f32[?0]) {\n  %r = while(%x) : f32[?0] {\n  ^cond(%a: f32[?0]):\n"
      "    yield(%p)\n  } {\n  ^body(%b: f32[?0]):\n    yield(%b)\n  }\n  return(%r)\n}\n");
  CHECK(m->functions.size() == 1);
}

TEST_CASE("verifier checks symbolic dims are declared", "[ir][verifier]") {
  Module m;
  Function& f = m.add_function("f");
  f.add_param(ty(DType::F32, {S("Q")}));
  Builder(f).ret({});
  CHECK(verify(m).at(0) == "@f: parameter f32[Q] uses the undeclared symbolic dim 'Q'");
}
