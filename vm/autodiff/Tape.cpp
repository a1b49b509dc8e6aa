#include "vm/autodiff/Tape.h"

#include <fmt/format.h>

#include <deque>
#include <functional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "runtime/Create.h"
#include "runtime/Error.h"
#include "vm/Interpreter.h"
#include "vm/autodiff/GradRules.h"
#include "vm/autodiff/Ops.h"

namespace tdl::vm::ad {

int g_recording = 0;

namespace {

// The node arena: node `id` is g_nodes[id - g_base]; ids never repeat.
std::deque<Node> g_nodes;
uint32_t g_base = 1;
uint32_t g_next = 1;
std::vector<Tape*> g_active;   // innermost last
std::set<Tape*> g_live;        // every Tape object alive

uint32_t push(Node n) {
  g_nodes.push_back(std::move(n));
  return g_next++;
}

// Gives untagged float values a leaf id, through containers and closure
// captures; copies of one tensor object (one value) get one id.
class Tagger {
 public:
  void visit(Value& v) {
    switch (v.tag()) {
      case Tag::Scalar:
        if (v.isFloatScalar() && v.node() == 0) makeLeaf(v);
        return;
      case Tag::Tensor: {
        if (!isFloat(v)) return;
        auto [it, fresh] = tensors_.emplace(v.obj(), v.node());
        if (v.node() != 0) {
          if (it->second == 0) it->second = v.node();
          return;
        }
        if (it->second == 0) {
          makeLeaf(v);
          it->second = v.node();
        } else {
          v.setNode(it->second);
        }
        return;
      }
      case Tag::Tuple:
      case Tag::List:
        if (seen_.insert(v.obj()).second)
          for (auto& x : v.as<SeqObj>()->items) visit(x);
        return;
      case Tag::Record:
        if (seen_.insert(v.obj()).second)
          for (auto& x : v.as<RecordObj>()->vals) visit(x);
        return;
      case Tag::Dict:
        if (seen_.insert(v.obj()).second)
          for (auto& x : v.as<DictObj>()->vals) visit(x);
        return;
      case Tag::Closure:
        if (seen_.insert(v.obj()).second) {
          for (auto& x : v.as<ClosureObj>()->captures) visit(x);
          for (auto& x : v.as<ClosureObj>()->defaults) visit(x);
        }
        return;
      default: return;
    }
  }

 private:
  std::unordered_set<const Obj*> seen_;
  std::unordered_map<const Obj*, uint32_t> tensors_;
};

Value onesLike(const Value& v) {
  if (v.isScalar()) return Value::floatLike(v.dtype(), 1.0, v.weak());
  const rt::Tensor& t = v.as<TensorObj>()->t;
  return fromTensor(rt::ones(t.shape(), t.dtype()));
}

// The sources' leaves, checked (SPEC §7: each must be a float tensor).
void collectSources(const Value& v, std::vector<const Value*>& out) {
  switch (v.tag()) {
    case Tag::Tuple:
    case Tag::List:
      for (auto& x : v.as<SeqObj>()->items) collectSources(x, out);
      return;
    case Tag::Record:
      for (auto& x : v.as<RecordObj>()->vals) collectSources(x, out);
      return;
    case Tag::Dict:
      for (auto& x : v.as<DictObj>()->vals) collectSources(x, out);
      return;
    default:
      if (!isFloat(v)) throw rt::Error(fmt::format("gradient source must be a float tensor, got {}", typeText(v)));
      out.push_back(&v);
  }
}

// The sources' structure rebuilt with their gradients (in collection order).
Value rebuild(const Value& v, const std::vector<Value>& grads, size_t& k) {
  switch (v.tag()) {
    case Tag::Tuple:
    case Tag::List: {
      std::vector<Value> items;
      for (auto& x : v.as<SeqObj>()->items) items.push_back(rebuild(x, grads, k));
      return Value::object(v.tag(), new SeqObj(std::move(items)));
    }
    case Tag::Record: {
      std::vector<Value> vals;
      for (auto& x : v.as<RecordObj>()->vals) vals.push_back(rebuild(x, grads, k));
      return makeRecord(v.as<RecordObj>()->names, std::move(vals));
    }
    case Tag::Dict: {
      std::vector<Value> vals;
      for (auto& x : v.as<DictObj>()->vals) vals.push_back(rebuild(x, grads, k));
      return makeDict(v.as<DictObj>()->keys, std::move(vals));
    }
    default: return grads[k++];
  }
}

// Ids of the input leaves of `v` (a value or a list of values).
template <class F>
void forEachInputLeaf(const Value& v, F&& f) {
  if (v.isSeq()) {
    for (auto& x : v.as<SeqObj>()->items) forEachInputLeaf(x, f);
  } else if (v.node() != 0) {
    f(v.node());
  }
}

}  // namespace

bool isFloat(const Value& v) {
  if (v.isScalar()) return v.isFloatScalar();
  return v.isTensor() && rt::is_float(v.as<TensorObj>()->t.dtype());
}

bool wants(const Value& result, std::initializer_list<const Value*> inputs) {
  if (!recording() || !isFloat(result)) return false;
  for (const Value* v : inputs) {
    if (v->node() != 0) return true;
    if (v->isSeq())
      for (auto& x : v->as<SeqObj>()->items)
        if (x.node() != 0) return true;
  }
  return false;
}

void record(Value& result, Node n) {
  uint32_t id = g_next;
  result.setNode(id);
  n.out = result;
  push(std::move(n));
}

void makeLeaf(Value& v) { v.setNode(push(Node{})); }

const Node& nodeAt(uint32_t id) { return g_nodes[id - g_base]; }

size_t activeTapes() { return g_active.size(); }

void unwindTapes(size_t depth) {
  while (g_active.size() > depth) g_active.back()->stop();
}

// Drops the nodes below every live tape's range (their ids stay valid as leaves).
void trimArena() {
  uint32_t keep = g_next;
  for (Tape* t : g_live)
    if (t->started()) keep = std::min(keep, t->begin_);
  while (g_base < keep && !g_nodes.empty()) {
    g_nodes.pop_front();
    ++g_base;
  }
}

// ------------------------------------------------------------------ Tape

Tape::Tape() { g_live.insert(this); }

Tape::~Tape() {
  if (active_) {
    // Stopped out of order only when an error unwinds past it.
    std::erase(g_active, this);
    g_recording = static_cast<int>(g_active.size());
  }
  g_live.erase(this);
  trimArena();
}

void Tape::start(Interpreter* vm) {
  if (started()) throw rt::Error("a tape records once; make a new one with tape()");
  if (vm) {
    Tagger tagger;
    vm->forEachRoot([&](Value& v) { tagger.visit(v); });
  }
  begin_ = g_next;
  active_ = true;
  g_active.push_back(this);
  g_recording = static_cast<int>(g_active.size());
}

void Tape::stop() {
  if (!active_) return;
  end_ = g_next;
  active_ = false;
  std::erase(g_active, this);
  g_recording = static_cast<int>(g_active.size());
}

Value Tape::gradient(const Value& target, const Value& sources) {
  std::vector<const Value*> srcs;
  collectSources(sources, srcs);
  if (!isFloat(target))
    throw rt::Error(fmt::format("gradient target must be a float tensor, got {}", typeText(target)));
  if (!started()) throw rt::Error("this tape has not recorded anything yet: use it in a `with` block first");
  uint32_t end = active_ ? g_next : end_;
  uint32_t t = target.node();
  // Gradients: of nodes in [begin, t] by position, of leaves below begin by id.
  bool inRange = t >= begin_ && t < end;
  size_t n = inRange ? t - begin_ + 1 : 0;
  std::vector<Value> grads(n);
  std::unordered_map<uint32_t, Value> leafGrads;
  std::unordered_set<uint32_t> sourceIds;
  for (auto* s : srcs)
    if (s->node() != 0) sourceIds.insert(s->node());
  auto accumulate = [&](uint32_t id, Value g) {
    Value& slot = id >= begin_ ? grads[id - begin_] : leafGrads[id];
    slot = slot.isNone() ? std::move(g) : add(slot, g);
  };
  if (t != 0 && (inRange || t < begin_)) accumulate(t, onesLike(target));
  if (inRange) {
    // Which nodes lead to a source: only their gradients are computed.
    std::vector<char> needed(n, 0);
    auto neededId = [&](uint32_t id) {
      return id >= begin_ ? (id <= t && needed[id - begin_]) : sourceIds.count(id) > 0;
    };
    for (uint32_t id = begin_; id <= t; ++id) {
      bool need = sourceIds.count(id) > 0;
      if (!need)
        for (auto& x : nodeAt(id).in) forEachInputLeaf(x, [&](uint32_t i) { need = need || neededId(i); });
      needed[id - begin_] = need;
    }
    std::vector<char> wantIn;
    std::vector<Value> gin;
    for (uint32_t id = t + 1; id-- > begin_;) {
      Value g = grads[id - begin_];
      if (g.isNone() || !needed[id - begin_]) continue;
      if (!sourceIds.count(id)) grads[id - begin_] = Value();  // not asked for: free it
      const Node& node = nodeAt(id);
      if (node.op == GradOp::Leaf) continue;
      wantIn.assign(node.in.size(), 0);
      for (size_t k = 0; k < node.in.size(); ++k)
        forEachInputLeaf(node.in[k], [&](uint32_t i) { wantIn[k] = wantIn[k] || neededId(i); });
      gin.assign(node.in.size(), Value());
      backward(node, g, wantIn, gin);
      for (size_t k = 0; k < node.in.size(); ++k) {
        if (!wantIn[k] || gin[k].isNone()) continue;
        const Value& x = node.in[k];
        if (x.isSeq()) {
          const auto& xs = x.as<SeqObj>()->items;
          const auto& gs = gin[k].as<SeqObj>()->items;
          for (size_t j = 0; j < xs.size(); ++j)
            if (xs[j].node() != 0 && neededId(xs[j].node()) && !gs[j].isNone()) accumulate(xs[j].node(), gs[j]);
        } else if (neededId(x.node())) {
          accumulate(x.node(), gin[k]);
        }
      }
    }
  }
  std::vector<Value> out;
  for (const Value* s : srcs) {
    uint32_t id = s->node();
    Value g;
    if (id != 0 && id >= begin_ && id <= t && inRange) g = grads[id - begin_];
    else if (id != 0 && id < begin_) {
      auto it = leafGrads.find(id);
      if (it != leafGrads.end()) g = it->second;
    }
    out.push_back(g.isNone() ? zerosLike(*s) : fitTo(g, *s));
  }
  size_t k = 0;
  return rebuild(sources, out, k);
}

void checkSources(const Value& sources) {
  std::vector<const Value*> leaves;
  collectSources(sources, leaves);
}

}  // namespace tdl::vm::ad
