// Reverse mode on the IR (ir/autodiff, issue 6): the backward IR verifies, a while is
// replayed from stacks, and only the forward values a rule reads are saved.
#include <catch2/catch.hpp>

#include "Helpers.h"
#include "ir/Builder.h"
#include "ir/autodiff/Grad.h"

using namespace tdl::ir;
using namespace tdl::ir::test;

namespace {

int count(Block& b, OpKind k) {
  int n = 0;
  walk(b, [&](Op& op) { n += op.kind() == k; });
  return n;
}

std::vector<Value*> gradOfLast(Function& f, const std::vector<Value*>& sources) {
  Block& e = f.entry();
  size_t ret = e.size() - 1;
  std::vector<Op*> tape;
  for (size_t i = 0; i < ret; ++i) tape.push_back(&e.op(i));
  Builder b(f);
  b.set_insertion(e, ret);
  Value* target = e.op(ret - 1).result();
  return autodiff::gradient(b, tape, target, sources);
}

}  // namespace

TEST_CASE("gradient through a while saves only what the backward reads", "[ir][autodiff]") {
  auto m = parse_ok(R"(
func @f(%x: f32[3], %n: i64[]) -> (f32[]) {
  %z = constant() {value = dense<[0] : i64[]>} : i64[]
  %i, %y = while(%z, %x) : i64[], f32[3] {
  ^cond(%a: i64[], %b: f32[3]):
    %lt = lt(%a, %n) : bool[]
    yield(%lt)
  } {
  ^body(%a2: i64[], %b2: f32[3]):
    %one = constant() {value = dense<[1] : i64[]>} : i64[]
    %a3 = add(%a2, %one) : i64[]
    %e = exp(%b2) : f32[3]
    %s = sin(%b2) : f32[3]
    %b3 = add(%e, %x) : f32[3]
    yield(%a3, %b3)
  }
  %r = reduce(%y) {axes = [0], keepdims = false, kind = "sum"} : f32[]
  return(%r)
}
)");
  Function& f = *m->functions[0];
  auto g = gradOfLast(f, {f.params()[0]});
  REQUIRE(g.size() == 1);
  CHECK(g[0]->type == ty(DType::F32, {K(3)}));
  auto errors = verify(*m);
  for (auto& e : errors) UNSCOPED_INFO(e);
  CHECK(errors.empty());
  // The trip count and exp's result; not sin's (dead), not %x (in scope).
  CHECK(count(f.entry(), OpKind::StackPush) == 2);
  CHECK(count(f.entry(), OpKind::StackPop) == 1);
  CHECK(count(f.entry(), OpKind::StackSize) == 1);
  CHECK(count(f.entry(), OpKind::While) == 2);
}

TEST_CASE("gradient through a cond is a cond on the same predicate", "[ir][autodiff]") {
  auto m = parse_ok(R"(
func @f(%x: f32[2, 3], %b: f32[3], %p: bool[]) -> (f32[]) {
  %c = cond(%p) : f32[2, 3] {
  ^then:
    %t = mul(%x, %b) : f32[2, 3]
    yield(%t)
  } {
  ^else:
    %u = tanh(%x) : f32[2, 3]
    yield(%u)
  }
  %r = reduce(%c) {axes = [0, 1], keepdims = false, kind = "max"} : f32[]
  return(%r)
}
)");
  Function& f = *m->functions[0];
  auto g = gradOfLast(f, {f.params()[0], f.params()[1]});
  REQUIRE(g.size() == 2);
  CHECK(g[1]->type == ty(DType::F32, {K(3)}));
  auto errors = verify(*m);
  for (auto& e : errors) UNSCOPED_INFO(e);
  CHECK(errors.empty());
  CHECK(count(f.entry(), OpKind::Cond) == 2);
  CHECK(count(f.entry(), OpKind::StackPush) == 1);  // tanh's result, in the else branch
  CHECK(autodiff::has_grad_rule(OpKind::MatMul));
  CHECK_FALSE(autodiff::has_grad_rule(OpKind::ArgMax));
}

TEST_CASE("second order: a pop through a popped handle finds its stack_new", "[ir][autodiff]") {
  // The shape of a first-order backward of nested loops: the inner loop's stack %h (one per
  // outer iteration) has its handle saved on %hh and popped back for the backward.
  auto m = parse_ok(R"(
func @f(%x: f32[3]) -> (f32[]) {
  %hh = stack_new() : i64[]
  %h = stack_new() : i64[]
  %e = exp(%x) : f32[3]
  stack_push(%h, %e)
  stack_push(%hh, %h)
  %hb = stack_pop(%hh) : i64[]
  %v = stack_pop(%hb) : f32[3]
  %r = reduce(%v) {axes = [0], keepdims = false, kind = "sum"} : f32[]
  return(%r)
}
)");
  Function& f = *m->functions[0];
  auto g = gradOfLast(f, {f.params()[0]});
  REQUIRE(g.size() == 1);
  auto errors = verify(*m);
  for (auto& e : errors) UNSCOPED_INFO(e);
  CHECK(errors.empty());
  // The adjoint of %v goes on one adjoint stack, popped again at stack_push(%h, %e).
  CHECK(count(f.entry(), OpKind::StackNew) == 3);
  CHECK(count(f.entry(), OpKind::StackPush) == 3);
  CHECK(count(f.entry(), OpKind::StackPop) == 3);
}

TEST_CASE("second order: a stack handle chosen by a cond is a clear error", "[ir][autodiff]") {
  auto m = parse_ok(R"(
func @f(%x: f32[3], %p: bool[]) -> (f32[]) {
  %h1 = stack_new() : i64[]
  %h2 = stack_new() : i64[]
  stack_push(%h1, %x)
  stack_push(%h2, %x)
  %h = cond(%p) : i64[] {
  ^then:
    yield(%h1)
  } {
  ^else:
    yield(%h2)
  }
  %v = stack_pop(%h) : f32[3]
  %r = reduce(%v) {axes = [0], keepdims = false, kind = "sum"} : f32[]
  return(%r)
}
)");
  Function& f = *m->functions[0];
  CHECK_THROWS_WITH(gradOfLast(f, {f.params()[0]}), Catch::Contains("not supported"));
}
