// The runtime ABI of compiled graph fns (see Exec.h). Every entry point catches every
// C++ exception and turns it into a status: nothing unwinds through JIT-compiled frames.
#include "codegen/Exec.h"
#include "codegen/Kernels.h"
#include "runtime/Interrupt.h"

#include "runtime/Matmul.h"
#include "runtime/Profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <chrono>
#include <optional>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#include "ir/Eval.h"
#include "ir/Rewrite.h"
#include "ir/ShapeInference.h"
#include "runtime/Create.h"
#include "runtime/Elementwise.h"
#include "runtime/Index.h"
#include "runtime/Dist.h"
#include "runtime/Print.h"
#include "runtime/Random.h"
#include "runtime/ShapeOps.h"
#include "runtime/Storage.h"
#include "runtime/ThreadPool.h"

namespace tdl::codegen {

namespace {

ExecCtx& C(void* ctx) { return *static_cast<ExecCtx*>(ctx); }

int symIndex(const CompiledFn& fn, const std::string& s) {
  for (size_t i = 0; i < fn.syms.size(); ++i)
    if (fn.syms[i] == s) return static_cast<int>(i);
  return -1;
}

// A declared result type's shape with its symbols resolved.
rt::Shape resolve(ExecCtx& c, const ir::TensorType& t) {
  rt::Shape s;
  for (const ir::Dim& d : t.dims) {
    if (d.is_known()) s.push_back(d.size);
    else {
      int k = symIndex(*c.fn, d.sym);
      s.push_back(k >= 0 ? c.syms[k] : 0);
    }
  }
  return s;
}

}  // namespace

void registerExternFn(const std::string& key, ExternFn fn);

namespace {

using V = std::vector<rt::Tensor>;

// The host ops with kernels of their own (the host table, runtime/Kernels.h): each leaves
// its results in `out`.
void k_Print(const ir::Op& op, V& in, V&, HostOpEnv&) {
  if (!rt::dist::prints_here(op.attrs.count("all_ranks") > 0)) return;
  std::string s = rt::fill_format(op.str_attr("format"), in);
  rt::write_output(s, stdout);
}

std::mutex& externMutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, ExternFn>& externFns() {
  static std::map<std::string, ExternFn> fns;
  return fns;
}

void k_CallRuntime(const ir::Op& op, V& in, V& out, HostOpEnv& env) {  // the dist module's collectives (graph/BuiltinsDist.cpp)
  const std::string& callee = op.str_attr("callee");
  const std::string& where = op.str_attr("where");
  if (callee == "extern") {  // a loaded model's fn (registerExternFn)
    ExternFn fn;
    {
      std::lock_guard<std::mutex> lock(externMutex());
      auto it = externFns().find(op.str_attr("key"));
      if (it != externFns().end()) fn = it->second;
    }
    if (!fn)
      throw rt::Error(fmt::format("{}: the model this graph fn was traced with is not loaded in this process "
                                  "(load_model it again, from the same file)",
                                  op.str_attr("name")));
    out = fn(in);
    return;
  }
  if (callee == "dist_allreduce") {
    rt::dist::ReduceOp kind = rt::dist::ReduceOp::Sum;
    if (!rt::dist::parse_reduce_op(op.str_attr("op"), kind))
      throw rt::Error(fmt::format("internal: unknown reduction '{}'", op.str_attr("op")));
    rt::dist::allreduce(in, kind, where);
    out = std::move(in);
  } else if (callee == "dist_broadcast") {
    rt::dist::broadcast(in, static_cast<int>(op.int_attr("root")), where);
    out = std::move(in);
  } else if (callee == "dist_allgather") {
    out.push_back(rt::dist::allgather(in[0], where));
  } else if (callee == "scatter") {  // graph fns' x[idx] = v (graph/Indexing.cpp): eager's rt::scatter
    rt::Tensor x = std::move(in[0]);  // copied first when shared (copy on write)
    rt::scatter(x, in[1], in[2]);
    out.push_back(std::move(x));
  } else if (callee == "detach") {  // float(x) in graph fns: the value, no gradient (ir/autodiff/Grad.cpp)
    out = std::move(in);
  } else if (callee == "sum_to") {  // a broadcast's gradient where a symbolic dim may be 1 (ir/autodiff/Grad.cpp)
    rt::Shape to = env.resolve(op.result()->type);  // symbolic dims: the operands after g, where given
    for (size_t a = 0, k = 1; a < to.size() && k < in.size(); ++a)
      if (op.result()->type.dims[a].is_symbolic()) to[a] = in[k++].scalar_as_int64();
    out.push_back(rt::sum_to(in[0], to));
  } else if (callee == "seed") {  // graph fns' seed(n) and permutation(n) (graph/BuiltinsCore.cpp)
    rt::seed(static_cast<uint64_t>(in[0].scalar_as_int64()));
  } else if (callee == "permutation") {
    out.push_back(rt::permutation(in[0].scalar_as_int64()));
  } else if (callee == "random_shaped") {  // rand/randn/randint of sizes known at run time (graph/BuiltinsCore.cpp)
    const std::string& dist = op.str_attr("dist");
    rt::Shape s = in[0].shape();
    if (dist == "uniform") out.push_back(rt::rand(s, in[0].dtype()));
    else if (dist == "normal") out.push_back(rt::randn(s, in[0].dtype()));
    else out.push_back(rt::randint(in[1].scalar_as_int64(), in[2].scalar_as_int64(), s));
  } else if (callee == "dist_barrier") {
    rt::dist::barrier(where);
  } else if (callee == "dist_allreduce_grad") {  // operands: gradients, inputs, results
    size_t n = in.size() / 3;
    V gs(in.begin(), in.begin() + static_cast<long>(n));
    V xs(in.begin() + static_cast<long>(n), in.begin() + static_cast<long>(2 * n));
    V ys(in.begin() + static_cast<long>(2 * n), in.end());
    rt::dist::allreduce_extreme_grad(gs, xs, ys, where);
    out = std::move(gs);
  } else if (callee == "dist_broadcast_grad") {
    rt::dist::broadcast_grad(in, static_cast<int>(op.int_attr("root")), where);
    out = std::move(in);
  } else if (callee == "dist_allgather_grad") {  // operands: the gradient, the input (its rows)
    out.push_back(rt::dist::allgather_grad(in[0], in[1].rank() > 0 ? in[1].dim(0) : 0, where));
  } else {
    throw rt::Error(fmt::format("internal: unknown runtime function '{}'", callee));
  }
}

void k_Random(const ir::Op& op, V& in, V& out, HostOpEnv& env) {
  const ir::TensorType& t = op.result()->type;
  rt::Shape s = env.resolve(t);
  const std::string& dist = op.str_attr("dist");
  if (dist == "uniform") out.push_back(rt::rand(s, t.dtype));
  else if (dist == "normal") out.push_back(rt::randn(s, t.dtype));
  else out.push_back(rt::randint(in[0].scalar_as_int64(), in[1].scalar_as_int64(), s));
}

void k_Update(const ir::Op& op, V& in, V& out, HostOpEnv&) {
  rt::Tensor x = std::move(in[0]);
  rt::set_index(x, ir::update_spec(op, in), in[1]);
  out.push_back(std::move(x));
}

void k_Gemm(const ir::Op& op, V& in, V& out, HostOpEnv& env) {
  // c (moved in when it dies here) is updated in place when nothing else holds it.
  std::optional<rt::Tensor> cc;
  if (in.size() > 2) cc = std::move(in[2]);
  if (cc && cc->is_unique()) env.reusedBuffer();  // --trace-report counts it
  out.push_back(rt::gemm(in[0], in[1], std::move(cc), op.bool_attr("trans_a"), op.bool_attr("trans_b"),
                         ir::attr_or(op, "alpha", 1.0), ir::attr_or(op, "beta", 0.0)));
}

}  // namespace

// The kernels by name, for the host tables (HostTable.cpp, and a minimal runtime's).
extern "C" {
#define TDL_HOST_KERNEL(e)                                                   \
  void tdlk_host_##e(const ir::Op* op, V* in, V* out, HostOpEnv* env) { \
    k_##e(*op, *in, *out, *env);                                             \
  }
TDL_HOST_OPS(TDL_HOST_KERNEL)
#undef TDL_HOST_KERNEL
}

bool hasHostKernel(ir::OpKind kind) {
  switch (kind) {
#define TDL_HOST_CASE(e) case ir::OpKind::e:
    TDL_HOST_OPS(TDL_HOST_CASE)
#undef TDL_HOST_CASE
    return true;
    default: return false;
  }
}

std::vector<rt::Tensor> runHostOp(const ir::Op& op, std::vector<rt::Tensor>& in, HostOpEnv& env) {
  std::vector<rt::Tensor> out;
  if (hasHostKernel(op.kind())) {
    tdlk_fn f = tdlk_host_kernel(static_cast<int32_t>(op.kind()));
    if (!f) throw rt::Error(rt::missing_kernel_message(fmt::format("op '{}'", op.name())));
    reinterpret_cast<HostKernel>(f)(&op, &in, &out, &env);
    return out;
  }
  switch (op.kind()) {
    case ir::OpKind::Assert:
      if (!in[0].scalar_as_bool()) {
        if (in.size() == 1) throw rt::Error(op.str_attr("message"));
        throw rt::Error(rt::fill_format(op.str_attr("message"), std::vector<rt::Tensor>(in.begin() + 1, in.end())));
      }
      return out;
    case ir::OpKind::BroadcastTo: out.push_back(rt::broadcast_to(in[0], env.resolve(op.result()->type))); break;
    case ir::OpKind::Reshape: out.push_back(rt::reshape(in[0], env.resolve(op.result()->type))); break;
    case ir::OpKind::Iota:
      out.push_back(ir::iota_tensor(env.resolve(op.result()->type), op.int_attr("axis"), op.result()->type.dtype));
      break;
    case ir::OpKind::StackNew:
      env.stacks.emplace_back();
      out.push_back(rt::Tensor::scalar(static_cast<int64_t>(env.stacks.size() - 1)));
      break;
    case ir::OpKind::StackPush:
    case ir::OpKind::StackPop:
    case ir::OpKind::StackSize: {
      int64_t h = in[0].scalar_as_int64();
      if (h < 0 || h >= static_cast<int64_t>(env.stacks.size())) throw rt::Error("internal: bad stack handle");
      auto& st = env.stacks[static_cast<size_t>(h)];
      if (op.kind() == ir::OpKind::StackPush) {
        st.push_back(std::move(in[1]));
        return out;
      }
      if (op.kind() == ir::OpKind::StackSize) {
        out.push_back(rt::Tensor::scalar(static_cast<int64_t>(st.size())));
        break;
      }
      if (st.empty()) throw rt::Error("internal: pop from an empty stack");
      out.push_back(std::move(st.back()));
      st.pop_back();
      break;
    }
    default: {
      auto r = ir::evaluate(op, in);
      if (!r) throw rt::Error(fmt::format("internal: op '{}' cannot run in compiled code", op.name()));
      out = std::move(*r);
    }
  }
  return out;
}

namespace {

struct SlotEnv : HostOpEnv {
  ExecCtx& c;
  explicit SlotEnv(ExecCtx& ctx) : HostOpEnv(ctx.stacks), c(ctx) {}
  rt::Shape resolve(const ir::TensorType& t) override { return codegen::resolve(c, t); }
  void reusedBuffer() override { ++c.fn->reusedBuffers; }
};

// --profile names: " (line L)", or " (lines A-B)" for ops on lines A to B (none when unknown).
std::string linesSuffix(int a, int z) {
  if (a > z) std::swap(a, z);
  if (a <= 0) return "";
  return a == z ? fmt::format(" (line {})", a) : fmt::format(" (lines {}-{})", a, z);
}

// gatherIn into `in`, its tensors assigned in place (their shapes' room reused).
void gatherInto(ExecCtx& c, const OpEntry& e, std::vector<rt::Tensor>& in) {
  in.resize(e.in.size());
  for (size_t i = 0; i < e.in.size(); ++i) {
    if (static_cast<int>(i) == e.moveIn) in[i] = std::move(c.slots[e.in[i]]);
    else in[i] = c.slots[e.in[i]];
  }
}

// An op's operands from their slots (the one it may take over moved out).
std::vector<rt::Tensor> gatherIn(ExecCtx& c, const OpEntry& e) {
  std::vector<rt::Tensor> in;
  in.reserve(e.in.size());
  for (size_t i = 0; i < e.in.size(); ++i) {
    if (static_cast<int>(i) == e.moveIn) in.push_back(std::move(c.slots[e.in[i]]));
    else in.push_back(c.slots[e.in[i]]);
  }
  return in;
}

// Result i of an op into its slot, and the sizes of symbolic dims it fixes.
void scatterOne(ExecCtx& c, const OpEntry& e, size_t i, rt::Tensor&& t) {
  const auto& syms = e.outSyms[i];
  for (size_t d = 0; d < syms.size() && d < t.shape().size(); ++d)
    if (syms[d] >= 0) c.syms[syms[d]] = t.dim(static_cast<int64_t>(d));
  c.slots[e.out[i]] = std::move(t);
}

// An op's results into their slots, and the sizes of symbolic dims they fix.
void scatterOut(ExecCtx& c, const OpEntry& e, std::vector<rt::Tensor>& out) {
  for (size_t i = 0; i < out.size() && i < e.out.size(); ++i) scatterOne(c, e, i, std::move(out[i]));
}

// The autodiff stacks' push, pop and size straight on the slots, as runHostOp does them but
// without its operand and result vectors (a loop's tape runs several each time round);
// false for any other op. Throws rt::Error.
bool stackOp(ExecCtx& c, const OpEntry& e) {
  const ir::OpKind k = e.op->kind();
  if (k != ir::OpKind::StackPush && k != ir::OpKind::StackPop && k != ir::OpKind::StackSize) return false;
  if (e.in.empty() || (k == ir::OpKind::StackPush ? e.in.size() < 2 : e.out.empty())) return false;
  const int64_t h = c.slots[e.in[0]].scalar_as_int64();
  if (h < 0 || h >= static_cast<int64_t>(c.stacks.size())) throw rt::Error("internal: bad stack handle");
  auto& st = c.stacks[static_cast<size_t>(h)];
  if (k == ir::OpKind::StackPush) {
    if (e.moveIn == 1) st.push_back(std::move(c.slots[e.in[1]]));  // dead after the push
    else st.push_back(c.slots[e.in[1]]);
  } else if (k == ir::OpKind::StackSize) {
    scatterOne(c, e, 0, rt::Tensor::scalar(static_cast<int64_t>(st.size())));
  } else {
    if (st.empty()) throw rt::Error("internal: pop from an empty stack");
    rt::Tensor t = std::move(st.back());
    st.pop_back();
    scatterOne(c, e, 0, std::move(t));
  }
  return true;
}

// index(x, i0, ..., ik-1) by integer scalars on x's leading axes, each in range: the block
// they select copied out (rt::get_index's result) without the general path's vectors and
// index spec (xs[i] in a loop); false for anything else (a negative index, which wraps, or
// one out of range, whose message get_index gives).
bool indexOp(ExecCtx& c, const OpEntry& e) {
  if (e.op->kind() != ir::OpKind::Index || e.in.size() < 2 || e.out.size() != 1) return false;
  const rt::Tensor& x = c.slots[e.in[0]];
  const size_t k = e.in.size() - 1;
  if (!x.defined() || k > static_cast<size_t>(x.rank())) return false;
  int64_t off = 0;
  for (size_t a = 0; a < k; ++a) {
    const rt::Tensor& t = c.slots[e.in[1 + a]];
    if (!t.defined() || t.rank() != 0 || !rt::is_integer(t.dtype())) return false;
    const int64_t i = t.item_int64(0), n = x.dim(static_cast<int64_t>(a));
    if (i < 0 || i >= n) return false;
    off = off * n + i;
  }
  rt::Shape rest(x.shape().begin() + static_cast<std::ptrdiff_t>(k), x.shape().end());
  int64_t inner = 1;
  for (int64_t d : rest) inner *= d;
  rt::Tensor out = rt::Tensor::empty(x.dtype(), std::move(rest));
  const size_t item = rt::itemsize(x.dtype());
  if (inner > 0)
    std::memcpy(out.mutable_raw(), static_cast<const char*>(x.raw()) + static_cast<size_t>(off * inner) * item,
                static_cast<size_t>(inner) * item);
  scatterOne(c, e, 0, std::move(out));
  return true;
}

void runOp(ExecCtx& c, const OpEntry& e) {
  if (stackOp(c, e) || indexOp(c, e)) return;
  std::vector<rt::Tensor> in = gatherIn(c, e);
  SlotEnv env(c);
  std::vector<rt::Tensor> out = runHostOp(*e.op, in, env);
  scatterOut(c, e, out);
}

// f() (a pointer), or null with the error of op `op` set when it throws.
template <class F>
void* pointerOrError(ExecCtx& c, int32_t op, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    c.err = e.what();
  } catch (...) {
    c.err = "unknown error";
  }
  c.errOp = op;
  return nullptr;
}

}  // namespace

std::string hostOpMessage(const ir::Op& op, std::string msg) {
  // An index op on moved axes (x[:, i] traces as a transpose, then an index) names the
  // source's axes: attr `axes` maps its index operands back (rt::Index's message).
  if (op.kind() == ir::OpKind::Index && op.attrs.count("axes")) {
    const ir::IntList& axes = op.ints_attr("axes");
    size_t at = msg.find(" for axis ");
    if (at != std::string::npos) {
      size_t b = at + 10, e = msg.find(' ', b);
      int64_t k = std::atoll(msg.substr(b, e - b).c_str());
      if (k >= 0 && static_cast<size_t>(k) < axes.size())
        msg = msg.substr(0, b) + std::to_string(axes[static_cast<size_t>(k)]) + msg.substr(e);
    }
  }
  return msg;
}

namespace {
// The message of the exception being handled, as the entry points report it: an rt::Error's
// words (through hostOpMessage for op, when given), "out of memory", or what() says.
std::string caughtError(const ir::Op* op) {
  try {
    throw;
  } catch (const rt::Error& e) {
    return op ? hostOpMessage(*op, e.what()) : e.what();
  } catch (const std::bad_alloc&) {
    return "out of memory";
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}
}  // namespace

extern "C" {
void tdl_parallel_w(void (*kernel)(void*, int64_t, int64_t), void* env, int64_t n, int64_t weight);
int64_t tdl_prof_begin(void*);
void tdl_prof_end(void* ctx, int32_t id, int64_t t0);
}

namespace {

// A product group from its operands' gathering to its results' storing (tdl_op_group, or
// tdl_op_group_begin and tdl_op_group_end around a fused loop of its results).
struct ProductGroup {
  ExecCtx& c;
  std::vector<int32_t> ids;
  std::vector<std::vector<rt::Tensor>> ins, outs;
  std::vector<std::string> errs;
  std::vector<int64_t> cost;
  std::vector<std::optional<rt::GemmBands>> bands;
  int64_t threads = 1;
  bool atOnce = false;
  int loopLine = 0;  // the line of the fused loop run with the products (tdl_op_group_begin)

  const ir::Op& op(size_t k) const { return *c.fn->ops[static_cast<size_t>(ids[k])].op; }
  size_t size() const { return ids.size(); }

  struct Form {  // op k's attributes (a gemm's; a matmul's are these), looked up by name once
    bool ta, tb;
    double alpha, beta;
  };
  std::vector<Form> forms;
  struct Piece {  // op k's columns [j0, j1) (j1 -1: an op that is not a GemmBands)
    size_t k;
    int64_t j0, j1, cost;
  };
  std::vector<Piece> pieces;

  explicit ProductGroup(ExecCtx& ctx) : c(ctx) {}

  // Takes the operands of ops id[0, n) and prepares the run: at once (a GemmBands for each
  // product that can be cut into bands) or one after another. Reuses the vectors (and the
  // tensors' shapes) of the group's last run.
  void prepare(const int32_t* id, int32_t n) {
    const size_t count = static_cast<size_t>(n);
    if (!std::equal(id, id + n, ids.begin(), ids.end())) {  // a new group: its ops' attributes, once
      ids.assign(id, id + n);
      forms.resize(count);
      for (size_t k = 0; k < count; ++k) {
        const ir::Op& o = op(k);
        const bool gemm = o.kind() == ir::OpKind::Gemm;
        forms[k] = {gemm && o.bool_attr("trans_a"), gemm && o.bool_attr("trans_b"), gemm ? ir::attr_or(o, "alpha", 1.0) : 1.0,
                    gemm ? ir::attr_or(o, "beta", 0.0) : 0.0};
      }
    }
    ins.resize(count);
    outs.resize(count);
    errs.resize(count);
    cost.assign(count, 0);
    bands.resize(count);
    release();  // a run that failed did not
    loopLine = 0;
    bool selfSplit = false;  // a product the small-k row kernel runs (split over the pool by itself)
    for (size_t k = 0; k < size(); ++k) {
      const OpEntry& e = c.fn->ops[static_cast<size_t>(ids[k])];
      gatherInto(c, e, ins[k]);
      if (ins[k].size() >= 2 && ins[k][0].rank() == 2 && ins[k][1].rank() == 2) {  // m * n * k
        const bool ta = forms[k].ta, tb = forms[k].tb;
        const int64_t cols = ins[k][1].dim(tb ? 0 : 1);
        cost[k] = ins[k][0].numel() * cols;  // numel(a) is m * k either way
        selfSplit = selfSplit || rt::gemm_small_k(cols, ins[k][0].dim(ta ? 0 : 1));
      }
    }
    // At once only when no product is large enough to be split by itself better
    // (rt::kGroupMaxMacs) or takes the small-k kernel (rt::gemm_small_k), and the work
    // besides the largest pays for the hand-off (rt::kGroupMinMacs); else one after another.
    const int64_t total = std::accumulate(cost.begin(), cost.end(), int64_t{0});
    const int64_t largest = *std::max_element(cost.begin(), cost.end());
    threads = rt::num_threads();
    // Where the BLAS kernels' bits change with a band (rt::blas_bands_exact), a product
    // rt::gemm would split (eagerly, from rt::kGemmSplitMacs on) runs as rt::gemm runs it, so
    // that the group's results are eager's; smaller ones run whole at once, as eagerly.
    const bool exact = rt::blas_bands_exact() || largest < rt::kGemmSplitMacs;
    atOnce = threads > 1 && !selfSplit && exact && largest < rt::kGroupMaxMacs && total - largest >= rt::kGroupMinMacs;
    if (!atOnce) return;
    for (size_t k = 0; k < size(); ++k) {
      const ir::Op& o = op(k);
      std::vector<rt::Tensor>& in = ins[k];
      std::optional<rt::Tensor> acc;
      try {
        if (o.kind() == ir::OpKind::MatMul && in.size() == 2) {
          bands[k] = rt::gemm_bands(in[0], in[1], acc, false, false, 1.0, 0.0);
        } else if (o.kind() == ir::OpKind::Gemm && (in.size() == 2 || in.size() == 3)) {
          if (in.size() == 3) acc = std::move(in[2]);
          const bool reused = acc && acc->is_unique();
          bands[k] = rt::gemm_bands(in[0], in[1], acc, forms[k].ta, forms[k].tb, forms[k].alpha, forms[k].beta);
          if (acc) in[2] = std::move(*acc);  // not taken: the op runs as usual (k_Gemm)
          else if (reused) ++c.fn->reusedBuffers;  // --trace-report counts it, as k_Gemm does
        }
      } catch (...) {
        errs[k] = caughtError(&o);
      }
    }
  }

  // Lets go of the operands and results (their buffers free for other ops), keeping the
  // vectors and the tensors' shapes for the next run.
  void release() {
    static const rt::Tensor none;
    for (auto& in : ins)
      for (rt::Tensor& t : in) t = none;  // a copy-assignment: the shape's room stays
    for (auto& o : outs) o.clear();
    for (auto& b : bands) b.reset();
    for (auto& e : errs) e.clear();
  }

  // The width of the bands a product of n columns is cut into: two per thread, each a
  // multiple of 16 columns and at least 32 wide; n when it is not cut.
  int64_t bandWidth(int64_t n) const {
    const int64_t per = 2 * threads, w = (n + per - 1) / per, w16 = (w + 15) / 16 * 16;
    return w16 >= 32 && w16 < n ? w16 : n;
  }

  void runOne(size_t k) {
    try {
      SlotEnv env(c);
      outs[k] = runHostOp(op(k), ins[k], env);
    } catch (...) {
      errs[k] = caughtError(&op(k));
    }
    if (errs[k].empty() && outs[k].empty()) errs[k] = "internal: a product gave no result";
  }

  // --profile's name: "N products at once (lines A-B)", `what` after "products".
  std::string name(const char* what) const {
    if (!rt::prof::enabled()) return {};
    int a = static_cast<int>(op(0).loc.line), z = a;
    for (size_t k = 0; k < size(); ++k) {
      a = std::min(a, static_cast<int>(op(k).loc.line));
      z = std::max(z, static_cast<int>(op(k).loc.line));
    }
    if (loopLine > 0) {
      a = std::min(a, loopLine);
      z = std::max(z, loopLine);
    }
    return fmt::format("{} products{} at once", size(), what) + linesSuffix(a, z);
  }

  // Every product at once (bands, whole products) or one after another.
  void runAll() {
    pieces.clear();
    if (atOnce) {
      pieces.reserve(size() * static_cast<size_t>(2 * threads));
      for (size_t k = 0; k < size(); ++k) {
        if (!errs[k].empty()) continue;
        const rt::GemmBands* g = bands[k] ? &*bands[k] : nullptr;
        if (!g) {
          pieces.push_back({k, 0, -1, cost[k]});
          continue;
        }
        const int64_t w = g->bands_same_bits() ? bandWidth(g->n) : g->n;
        for (int64_t j0 = 0; j0 < g->n; j0 += w) {
          const int64_t j1 = std::min(g->n, j0 + w);
          pieces.push_back({k, j0, j1, cost[k] / g->n * (j1 - j0)});
        }
      }
    }
    // Largest first; the pool's threads take the next piece as they finish one (a thread the
    // host delays leaves its share to the others).
    for (size_t i = 1; i < pieces.size(); ++i)  // a stable insertion sort: a dozen pieces, no buffer
      for (size_t j = i; j > 0 && pieces[j - 1].cost < pieces[j].cost; --j) std::swap(pieces[j - 1], pieces[j]);
    auto runPiece = [&](const Piece& p) {
      if (bands[p.k]) bands[p.k]->run(p.j0, p.j1);  // BLAS calls (an operand on a device: its download may throw)
      else runOne(p.k);
    };
    if (pieces.size() > 1) {
      const std::string what = name("");  // the scope keeps a view of it
      rt::prof::Scope ps(rt::prof::Section::CompiledOp, what);
      rt::parallel_for(static_cast<int64_t>(pieces.size()), 1, [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p) runPiece(pieces[static_cast<size_t>(p)]);
      });
    } else if (atOnce) {  // one piece (the others' operands failed)
      for (const Piece& p : pieces) runPiece(p);
    } else {
      for (size_t k = 0; k < size(); ++k) {
        rt::prof::Scope ps(rt::prof::Section::CompiledOp, op(k).name());
        runOne(k);
        if (!errs[k].empty()) break;
      }
    }
  }

  // The results into their slots (in program order), or the first failing op's error.
  int32_t store() {
    for (size_t k = 0; k < size(); ++k) {
      if (bands[k]) {
        outs[k].clear();
        outs[k].push_back(std::move(bands[k]->out));
      }
      if (!errs[k].empty()) {
        c.err = errs[k];
        c.errOp = ids[k];
        return 1;
      }
      scatterOut(c, c.fn->ops[static_cast<size_t>(ids[k])], outs[k]);
    }
    return 0;
  }

  // Whether every product is cut into the same bands of rows with its bits: run at once, no
  // error, each a GemmBands with bands_same_bits and one result shape of at least 16 rows.
  bool bandsAligned() const {
    if (!atOnce || !bands[0] || bands[0]->m < 16) return false;
    for (size_t k = 0; k < size(); ++k)
      if (!errs[k].empty() || !bands[k] || !bands[k]->bands_same_bits() || bands[k]->m != bands[0]->m ||
          bands[k]->n != bands[0]->n || bands[k]->out.dtype() != bands[0]->out.dtype())
        return false;
    return true;
  }

  // The results' buffers into their slots before they are computed (bandsAligned); each
  // GemmBands keeps its data pointer.
  void storeDeferred() {
    for (size_t k = 0; k < size(); ++k) {
      outs[k].clear();
      outs[k].push_back(std::move(bands[k]->out));
      scatterOut(c, c.fn->ops[static_cast<size_t>(ids[k])], outs[k]);
    }
  }

  // Each band of rows of every product, then kernel (a fused loop over the products' [m, n]
  // shape, count elements) over the band's elements, in one call on the same thread. Bands
  // of a multiple of 8 rows, two per thread.
  void runWithLoop(void (*kernel)(void*, int64_t, int64_t), void* env, int64_t count, int64_t weight) {
    const int64_t m = bands[0]->m, n = bands[0]->n, per = 2 * threads;
    const int64_t w = std::max<int64_t>(8, ((m + per - 1) / per + 7) / 8 * 8);
    auto band = [&](int64_t i0) {
      const int64_t i1 = std::min(m, i0 + w);
      for (size_t k = 0; k < size(); ++k) bands[k]->run_rows(i0, i1);
      if (kernel && count == m * n) kernel(env, i0 * n, i1 * n);
    };
    {
      const std::string what = name(" and a fused loop");  // the scope keeps a view of it
      rt::prof::Scope ps(rt::prof::Section::CompiledOp, what);
      rt::parallel_for((m + w - 1) / w, 1, [&](int64_t b, int64_t e) {
        for (int64_t j = b; j < e; ++j) band(j * w);
      });
    }
    if (kernel && count != m * n) tdl_parallel_w(kernel, env, count, weight);  // not its shape (never so)
  }
};

// The group whose first op is ids[0], prepared for this run (ExecCtx::groups keeps it).
std::shared_ptr<ProductGroup> productGroup(ExecCtx& c, const int32_t* ids, int32_t n) {
  const size_t site = static_cast<size_t>(ids[0]);
  if (c.groups.size() <= site) c.groups.resize(std::max(c.fn->ops.size(), site + 1));
  std::shared_ptr<void>& kept = c.groups[site];
  if (!kept) kept = std::make_shared<ProductGroup>(c);
  std::shared_ptr<ProductGroup> g = std::static_pointer_cast<ProductGroup>(kept);
  g->prepare(ids, n);
  return g;
}

}  // namespace

extern "C" {

int32_t tdl_op(void* ctx, int32_t id) {
  ExecCtx& c = C(ctx);
  try {
    const OpEntry& e = c.fn->ops[static_cast<size_t>(id)];
    rt::prof::Scope ps(rt::prof::Section::CompiledOp, e.op->name());
    runOp(c, e);
    return 0;
  } catch (...) {
    c.err = caughtError(c.fn->ops[static_cast<size_t>(id)].op);
  }
  c.errOp = id;
  return 1;
}

// Independent small products (Lower.cpp's findProductGroup: none uses another's result, each
// below rt::kGroupMaxMacs) run at once over the pool, one hand-off for all:
// a product whose bands of columns give its bits (rt::GemmBands) is cut into two bands per
// thread, and the threads take the pieces largest first as they come free. Operands are taken
// in program order and results stored in program order; an error is the first failing op's.
int32_t tdl_op_group(void* ctx, const int32_t* ids, int32_t n) {
  try {
    std::shared_ptr<ProductGroup> g = productGroup(C(ctx), ids, n);
    g->runAll();
    const int32_t failed = g->store();
    g->release();
    return failed;
  } catch (...) {  // the group's own bookkeeping, an operand's download from a device
    C(ctx).err = caughtError(nullptr);
  }
  C(ctx).errOp = ids[0];
  return 1;
}

// A product group and the fused loop after it that reads their results elementwise
// (Lower.cpp's findGroupEpilogue): begin takes the operands and, when every product can be
// cut into the same bands of rows (rt::GemmBands, bands_same_bits, one [m, n] shape), stores
// the results' buffers, not yet computed, so that compiled code can set up the loop (its
// operands, its result); end then runs each band of every product and, on the same thread,
// the loop over that band's elements: a recurrent step's tanh(x @ w + h @ u) in one
// hand-off, each band's elements still in its thread's cache. Otherwise begin runs the
// group as tdl_op_group does and end the loop as tdl_parallel_w does.
int32_t tdl_op_group_begin(void* ctx, const int32_t* ids, int32_t n, int32_t loop) {
  ExecCtx& c = C(ctx);
  try {
    std::shared_ptr<ProductGroup> g = productGroup(c, ids, n);
    g->loopLine = static_cast<int>(c.fn->ops[static_cast<size_t>(loop)].op->loc.line);
    if (g->bandsAligned()) {
      g->storeDeferred();
      c.pendingGroup = g;
      return 0;
    }
    g->runAll();
    const int32_t failed = g->store();
    g->release();
    return failed;
  } catch (...) {  // the group's own bookkeeping, an operand's download from a device
    c.err = caughtError(nullptr);
  }
  c.errOp = ids[0];
  return 1;
}

int32_t tdl_op_group_end(void* ctx, int32_t loop, void (*kernel)(void*, int64_t, int64_t), void* env, int64_t count,
                         int64_t weight) {
  ExecCtx& c = C(ctx);
  std::shared_ptr<ProductGroup> g = std::static_pointer_cast<ProductGroup>(std::move(c.pendingGroup));
  c.pendingGroup.reset();
  try {
    if (!g) {  // the products ran in tdl_op_group_begin: the loop alone, timed as lowerFused's
      const int64_t t0 = tdl_prof_begin(ctx);
      if (kernel) tdl_parallel_w(kernel, env, count, weight);
      tdl_prof_end(ctx, loop, t0);
      return 0;
    }
    g->runWithLoop(kernel, env, count, weight);
    g->release();
    return 0;
  } catch (...) {  // an operand's download from a device
    c.err = caughtError(nullptr);
  }
  c.errOp = loop;
  return 1;
}

int32_t tdl_truth(void* ctx, int32_t slot) {
  const rt::Tensor& t = C(ctx).slots[slot];
  return t.defined() && t.numel() == 1 && t.item_bool(0) ? 1 : 0;
}

void tdl_move(void* ctx, int32_t dst, int32_t src) {
  ExecCtx& c = C(ctx);
  if (dst != src) c.slots[dst] = std::move(c.slots[src]);
}

void tdl_copy(void* ctx, int32_t dst, int32_t src) {
  ExecCtx& c = C(ctx);
  if (dst != src) c.slots[dst] = c.slots[src];
}

// ---- native scalars: rank-0 values live in registers; these move them to and from slots.

int64_t tdl_load_i64(void* ctx, int32_t slot) {
  const rt::Tensor& t = C(ctx).slots[slot];
  return t.defined() && t.numel() == 1 ? t.item_int64(0) : 0;
}

double tdl_load_f64(void* ctx, int32_t slot) {
  const rt::Tensor& t = C(ctx).slots[slot];
  return t.defined() && t.numel() == 1 ? t.item_double(0) : 0.0;
}

// Stores a scalar of `dtype` (an rt::DType) given as i64 bits (integers, bool) or a double:
// the slot's tensor is overwritten when nothing else holds it (the next time round a loop),
// else replaced (a stack or a result may hold the old one).
void tdl_store_i64(void* ctx, int32_t slot, int32_t dtype, int64_t v) {
  rt::Tensor& t = C(ctx).slots[slot];
  if (!t.set_scalar_int(static_cast<rt::DType>(dtype), v)) t = rt::Tensor::scalar_of_int(static_cast<rt::DType>(dtype), v);
}

void tdl_store_f64(void* ctx, int32_t slot, int32_t dtype, double v) {
  rt::Tensor& t = C(ctx).slots[slot];
  if (!t.set_scalar(static_cast<rt::DType>(dtype), v)) t = rt::Tensor::scalar_of(static_cast<rt::DType>(dtype), v);
}

// A failing native op: keeps the message; the generated code then returns 1.
void tdl_fail(void* ctx, int32_t op, const char* message) {
  ExecCtx& c = C(ctx);
  c.err = message;
  c.errOp = op;
}

namespace {
// The flat offset of x[idx...] (bounds-checked like eager indexing), or -1 with the error set.
int64_t elemOffset(ExecCtx& c, const rt::Tensor& t, const int64_t* idx, int32_t n, int32_t op) {
  int64_t off = 0;
  for (int32_t a = 0; a < n; ++a) {
    int64_t size = t.dim(a), i = idx[a];
    if (i < -size || i >= size) {
      c.err = fmt::format("index {} is out of range for axis {} of size {}", i, a, size);
      c.errOp = op;
      return -1;
    }
    off = off * size + (i < 0 ? i + size : i);
  }
  return off;
}
}  // namespace

// The address of element x[idx...] of the tensor in `slot` (read only), or null on error.
const void* tdl_elem(void* ctx, int32_t slot, const int64_t* idx, int32_t n, int32_t op) {
  ExecCtx& c = C(ctx);
  const rt::Tensor& t = c.slots[slot];
  int64_t off = elemOffset(c, t, idx, n, op);
  if (off < 0) return nullptr;
  return static_cast<const char*>(t.raw()) + off * static_cast<int64_t>(rt::itemsize(t.dtype()));
}

// dst := src (moved when `move`), made unique (in place from then on); returns the address
// of element dst[idx...] for a store, or null on error.
void* tdl_update_elem(void* ctx, int32_t dst, int32_t src, int32_t move, const int64_t* idx, int32_t n,
                      int32_t op) {
  ExecCtx& c = C(ctx);
  return pointerOrError(c, op, [&]() -> void* {
    if (dst != src) {
      if (move) c.slots[dst] = std::move(c.slots[src]);
      else c.slots[dst] = c.slots[src];
    }
    rt::Tensor& t = c.slots[dst];
    int64_t off = elemOffset(c, t, idx, n, op);
    if (off < 0) return nullptr;
    return static_cast<char*>(t.mutable_raw()) + off * static_cast<int64_t>(rt::itemsize(t.dtype()));
  });
}

// ---- fused loops

// Allocates the result of a fused op in `dst` with the shape of the tensor in `ref`;
// returns its element count.
// The result of a fused loop: the buffer of `donor` (an operand of the same shape and
// dtype that is dead after the loop; -1: none) when no one else holds it, else a new one.
int64_t tdl_fused_alloc(void* ctx, int32_t dst, int32_t ref, int32_t dtype, int32_t donor) {
  ExecCtx& c = C(ctx);
  rt::Shape shape = c.slots[ref].shape();
  if (donor >= 0) {
    rt::Tensor& d = c.slots[donor];
    const rt::Storage* s = d.storage();
    if (s && s->refs.load(std::memory_order_acquire) == 1 && d.dtype() == static_cast<rt::DType>(dtype) &&
        d.shape() == shape) {
      c.slots[dst] = std::move(d);
      c.slots[donor] = rt::Tensor();
      ++c.reused;
      return c.slots[dst].numel();
    }
  }
  c.slots[dst] = rt::Tensor::empty(static_cast<rt::DType>(dtype), shape);
  return c.slots[dst].numel();
}

// The result of a fused_reduce over the domain in slot `ref` (reduced over its last axis,
// or all axes when `all`); returns the domain's number of rows (all dims but the last).
int64_t tdl_reduce_alloc_dims(void* ctx, int32_t dst, int32_t dtype, int32_t keepdims, int32_t all, int32_t rank,
                              const int64_t* dims);

int64_t tdl_reduce_alloc(void* ctx, int32_t dst, int32_t ref, int32_t dtype, int32_t keepdims, int32_t all) {
  const rt::Shape d = C(ctx).slots[ref].shape();  // a copy: dst may be ref's slot
  return tdl_reduce_alloc_dims(ctx, dst, dtype, keepdims, all, static_cast<int32_t>(d.size()), d.data());
}

// A fused loop whose operands are broadcast to its domain (Lower.cpp, strided operands):
// the broadcast of the shapes of the tensors in `slots` (n of them, aligned right) as
// `rank` dims in `out` -- the domain when no operand has its shape.
void tdl_bcast_dims(void* ctx, const int32_t* slots, int32_t n, int32_t rank, int64_t* out) {
  ExecCtx& c = C(ctx);
  for (int32_t p = 0; p < rank; ++p) out[p] = 1;
  for (int32_t j = 0; j < n; ++j) {
    const rt::Shape& s = c.slots[slots[j]].shape();
    int64_t k = static_cast<int64_t>(s.size());  // <= rank: the types say so
    for (int64_t i = 0; i < k && i < rank; ++i)
      if (s[static_cast<size_t>(i)] != 1) out[rank - k + i] = s[static_cast<size_t>(i)];
  }
}

// The element strides of the (contiguous) tensor in `slot` along the `rank` axes of a
// domain it broadcasts to, aligned right: 0 along the axes where it has size 1 or none.
void tdl_bcast_strides(void* ctx, int32_t slot, int32_t rank, int64_t* out) {
  const rt::Shape& s = C(ctx).slots[slot].shape();
  int64_t k = static_cast<int64_t>(s.size());
  int64_t st = 1;
  for (int64_t p = rank - 1; p >= 0; --p) {
    int64_t i = p - (rank - k);
    if (i < 0) {
      out[p] = 0;
      continue;
    }
    int64_t d = s[static_cast<size_t>(i)];
    out[p] = d == 1 ? 0 : st;
    st *= d;
  }
}

// tdl_fused_alloc and tdl_reduce_alloc for a domain given as dims (tdl_bcast_dims).
int64_t tdl_fused_alloc_dims(void* ctx, int32_t dst, int32_t dtype, int32_t rank, const int64_t* dims) {
  ExecCtx& c = C(ctx);
  c.slots[dst] = rt::Tensor::empty(static_cast<rt::DType>(dtype), rt::Shape(dims, dims + rank));
  return c.slots[dst].numel();
}

int64_t tdl_reduce_alloc_dims(void* ctx, int32_t dst, int32_t dtype, int32_t keepdims, int32_t all, int32_t rank,
                              const int64_t* dims) {
  ExecCtx& c = C(ctx);
  rt::Shape out;
  int64_t rows = 1;
  for (int32_t i = 0; i + 1 < rank; ++i) {
    rows *= dims[i];
    if (!all) out.push_back(dims[i]);
    else if (keepdims) out.push_back(1);
  }
  if (keepdims) out.push_back(1);
  c.slots[dst] = rt::Tensor::empty(static_cast<rt::DType>(dtype), out);
  return rows;
}

// Runs kernel(env, rowBegin, rowEnd) over `rows` rows of `inner` elements each: on the
// calling thread below kFusedParallelThreshold elements in all, else split over the pool.
void tdl_parallel_reduce_rows(void (*kernel)(void*, int64_t, int64_t), void* env, int64_t rows, int64_t inner) {
  int64_t per = std::max<int64_t>(inner, 1);
  if (rows * per < kFusedParallelThreshold) {
    kernel(env, 0, rows);
    return;
  }
  int64_t grain = std::max<int64_t>(1, kFusedParallelThreshold / 2 / per);
  rt::parallel_for(rows, grain, [&](int64_t b, int64_t e) { kernel(env, b, e); });
}

// The data of the tensor in `slot` (for a fused loop: operands are read, results written;
// a result is a fresh tensor, so writing is safe).
void* tdl_data(void* ctx, int32_t slot) { return const_cast<void*>(C(ctx).slots[slot].raw()); }

// --profile of the native code that is not a runtime op (fused loops, native loops): a
// start time when profiling is on (0 when off: the end is then a no-op), and the time
// since recorded under the op's name and .tdl line.
int64_t tdl_prof_begin(void*) {
  if (!rt::prof::enabled()) return 0;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count() | 1;
}

void tdl_prof_end(void* ctx, int32_t id, int64_t t0) {
  if (!t0) return;
  int64_t t1 = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
                   .count();
  const ir::Op* op = C(ctx).fn->ops[static_cast<size_t>(id)].op;
  std::string name = (op->kind() == ir::OpKind::While ? "native loop" : std::string(op->name()) + " loop") +
                     linesSuffix(op->loc.line, op->loc.line);
  rt::prof::record(rt::prof::Section::CompiledOp, name, static_cast<double>(t1 - t0) * 1e-9);
}

// The data of the tensor in `slot`, made its own (copied when shared) for a loop that
// writes its elements in place with no other op in between (Lower.cpp, native loops).
// Null (and the error set) when the copy fails; a tensor without elements gives a dummy.
void* tdl_mutable_data(void* ctx, int32_t slot, int32_t op) {
  ExecCtx& c = C(ctx);
  return pointerOrError(c, op, [&]() -> void* {
    rt::Tensor& t = c.slots[slot];
    static char dummy;
    if (t.numel() == 0) return &dummy;
    return t.mutable_raw();
  });
}

// Runs kernel(env, begin, end) over [0, n) of elements worth `weight` simple operations
// each: split over the runtime's pool where fused_parallel says so, else on this thread.
void tdl_parallel_w(void (*kernel)(void*, int64_t, int64_t), void* env, int64_t n, int64_t weight) {
  if (!fused_parallel(n, weight)) {
    kernel(env, 0, n);
    return;
  }
  rt::parallel_for(n, fused_grain(weight), [&](int64_t b, int64_t e) { kernel(env, b, e); });
}

// As tdl_parallel_w for simple elements (code compiled before loops had weights).
void tdl_parallel(void (*kernel)(void*, int64_t, int64_t), void* env, int64_t n) { tdl_parallel_w(kernel, env, n, 1); }

// The size of axis `axis` of the tensor in `slot`.
int64_t tdl_dim(void* ctx, int32_t slot, int32_t axis) { return C(ctx).slots[slot].dim(axis); }

// A symbolic dim's size from the tensor a native op (a fused loop, a cond's or while's
// result) left in `slot`, as a host op's results give theirs (scatterOne): ops that take a
// shape from a type naming the symbol (a gradient's broadcast_to, sum_to) read it.
void tdl_bind_sym(void* ctx, int32_t slot, int32_t axis, int32_t sym) {
  ExecCtx& c = C(ctx);
  const rt::Tensor& t = c.slots[slot];
  if (axis < t.rank()) c.syms[sym] = t.dim(axis);
}

// A symbol's size, read before a loop that binds it again and written back after it
// (Lower.cpp, lowerWhile).
int64_t tdl_sym_get(void* ctx, int32_t sym) { return C(ctx).syms[sym]; }
void tdl_sym_set(void* ctx, int32_t sym, int64_t v) { C(ctx).syms[sym] = v; }

// Runs kernel(env, rowBegin, rowEnd) over the total / inner rows of a fused result whose
// elements are worth `weight` simple operations each, as tdl_parallel_w.
void tdl_parallel_rows_w(void (*kernel)(void*, int64_t, int64_t), void* env, int64_t total, int64_t inner,
                         int64_t weight) {
  int64_t rows = inner > 0 ? total / inner : 0;
  if (!fused_parallel(total, weight)) {
    kernel(env, 0, rows);
    return;
  }
  int64_t grain = std::max<int64_t>(1, fused_grain(weight) / std::max<int64_t>(inner, 1));
  rt::parallel_for(rows, grain, [&](int64_t b, int64_t e) { kernel(env, b, e); });
}

// As tdl_parallel_rows_w for simple elements (code compiled before loops had weights).
void tdl_parallel_rows(void (*kernel)(void*, int64_t, int64_t), void* env, int64_t total, int64_t inner) {
  tdl_parallel_rows_w(kernel, env, total, inner, 1);
}

// Runs a row-group kernel(env, rowBegin, rowEnd, scratch) (Lower.cpp, lowerRowGroup) over
// `rows` rows of `inner` elements, as tdl_parallel_reduce_rows does; each chunk of rows gets
// its own `scratch` bytes for the group's row-sized intermediates. Returns 0, or 1 when a
// scratch buffer cannot be allocated (the caller reports it as the op's error).
int32_t tdl_parallel_rows_scratch(void (*kernel)(void*, int64_t, int64_t, void*), void* env, int64_t rows,
                                  int64_t inner, int64_t scratch) {
  std::atomic<bool> ok{true};
  auto chunk = [&](int64_t b, int64_t e) {
    std::unique_ptr<char[]> buf;
    if (scratch > 0) {
      buf.reset(new (std::nothrow) char[static_cast<size_t>(scratch)]);
      if (!buf) {
        ok.store(false);
        return;
      }
    }
    kernel(env, b, e, buf.get());
  };
  int64_t per = std::max<int64_t>(inner, 1);
  if (rows * per < kFusedParallelThreshold) chunk(0, rows);
  else rt::parallel_for(rows, std::max<int64_t>(1, kFusedParallelThreshold / 2 / per), chunk);
  return ok.load() ? 0 : 1;
}

// --profile of a row group: its time under "fused rows loop (lines A-B)", the lines of its
// first and last op.
void tdl_prof_end_rows(void* ctx, int32_t first, int32_t last, int64_t t0) {
  if (!t0) return;
  int64_t t1 = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
                   .count();
  const auto& ops = C(ctx).fn->ops;
  std::string name = "fused rows loop" + linesSuffix(ops[static_cast<size_t>(first)].op->loc.line,
                                                    ops[static_cast<size_t>(last)].op->loc.line);
  rt::prof::record(rt::prof::Section::CompiledOp, name, static_cast<double>(t1 - t0) * 1e-9);
}

}  // extern "C"

std::vector<AbiSymbol> abiSymbols() {
  return {{"tdl_op", reinterpret_cast<void*>(&tdl_op)},
          {"tdl_op_group", reinterpret_cast<void*>(&tdl_op_group)},
          {"tdl_op_group_begin", reinterpret_cast<void*>(&tdl_op_group_begin)},
          {"tdl_op_group_end", reinterpret_cast<void*>(&tdl_op_group_end)},
          {"tdl_load_i64", reinterpret_cast<void*>(&tdl_load_i64)},
          {"tdl_load_f64", reinterpret_cast<void*>(&tdl_load_f64)},
          {"tdl_store_i64", reinterpret_cast<void*>(&tdl_store_i64)},
          {"tdl_store_f64", reinterpret_cast<void*>(&tdl_store_f64)},
          {"tdl_fail", reinterpret_cast<void*>(&tdl_fail)},
          {"tdl_interrupt_requested", const_cast<int32_t*>(&tdl_interrupt_requested)},
          {"tdl_fused_alloc", reinterpret_cast<void*>(&tdl_fused_alloc)},
          {"tdl_data", reinterpret_cast<void*>(&tdl_data)},
          {"tdl_mutable_data", reinterpret_cast<void*>(&tdl_mutable_data)},
          {"tdl_prof_begin", reinterpret_cast<void*>(&tdl_prof_begin)},
          {"tdl_prof_end", reinterpret_cast<void*>(&tdl_prof_end)},
          {"tdl_parallel", reinterpret_cast<void*>(&tdl_parallel)},
          {"tdl_parallel_w", reinterpret_cast<void*>(&tdl_parallel_w)},
          {"tdl_parallel_rows_w", reinterpret_cast<void*>(&tdl_parallel_rows_w)},
          {"tdl_parallel_rows", reinterpret_cast<void*>(&tdl_parallel_rows)},
          {"tdl_reduce_alloc", reinterpret_cast<void*>(&tdl_reduce_alloc)},
          {"tdl_parallel_reduce_rows", reinterpret_cast<void*>(&tdl_parallel_reduce_rows)},
          {"tdl_parallel_rows_scratch", reinterpret_cast<void*>(&tdl_parallel_rows_scratch)},
          {"tdl_prof_end_rows", reinterpret_cast<void*>(&tdl_prof_end_rows)},
          {"tdl_dim", reinterpret_cast<void*>(&tdl_dim)},
          {"tdl_bind_sym", reinterpret_cast<void*>(&tdl_bind_sym)},
          {"tdl_sym_get", reinterpret_cast<void*>(&tdl_sym_get)},
          {"tdl_sym_set", reinterpret_cast<void*>(&tdl_sym_set)},
          {"tdl_bcast_dims", reinterpret_cast<void*>(&tdl_bcast_dims)},
          {"tdl_bcast_strides", reinterpret_cast<void*>(&tdl_bcast_strides)},
          {"tdl_fused_alloc_dims", reinterpret_cast<void*>(&tdl_fused_alloc_dims)},
          {"tdl_reduce_alloc_dims", reinterpret_cast<void*>(&tdl_reduce_alloc_dims)},
          {"expf", reinterpret_cast<void*>(static_cast<float (*)(float)>(&std::exp))},
          {"exp", reinterpret_cast<void*>(static_cast<double (*)(double)>(&std::exp))},
          {"logf", reinterpret_cast<void*>(static_cast<float (*)(float)>(&std::log))},
          {"log", reinterpret_cast<void*>(static_cast<double (*)(double)>(&std::log))},
          {"tdl_elem", reinterpret_cast<void*>(&tdl_elem)},
          {"tdl_update_elem", reinterpret_cast<void*>(&tdl_update_elem)},
          {"tdl_truth", reinterpret_cast<void*>(&tdl_truth)},
          {"tdl_move", reinterpret_cast<void*>(&tdl_move)},
          {"tdl_copy", reinterpret_cast<void*>(&tdl_copy)}};
}

const NativeLayout& nativeLayout() {
  static const NativeLayout layout = [] {
    NativeLayout l;
    auto at = [](const void* base, const void* field) {
      return static_cast<int64_t>(static_cast<const char*>(field) - static_cast<const char*>(base));
    };
    ExecCtx c;
    l.ctxSlots = at(&c, &c.slots);
    l.tensorSize = static_cast<int64_t>(sizeof(rt::Tensor));
    l.storageRefs = static_cast<int64_t>(offsetof(rt::Storage, refs));
    l.storageData = static_cast<int64_t>(offsetof(rt::Storage, data));
    // Find the shape's data pointer and the storage pointer inside a live tensor.
    rt::Tensor t = rt::Tensor::zeros(rt::DType::F32, {2, 3});
    const char* raw = reinterpret_cast<const char*>(&t);
    int found = 0;
    for (int64_t off = 0; off + 8 <= l.tensorSize; off += 8) {
      const void* p;
      std::memcpy(&p, raw + off, sizeof p);
      if (p == t.shape().data()) l.tensorDims = off, found |= 1;
      if (p == t.storage()) l.tensorStorage = off, found |= 2;
    }
    l.ok = found == 3 && t.storage() && t.storage()->data == t.raw() && sizeof(std::atomic<int64_t>) == 8;
    return l;
  }();
  return layout;
}

CompiledFn::CompiledFn() = default;
CompiledFn::~CompiledFn() = default;

// (Codegen.h) In the executor library, since built executables run first versions too.
bool tierUp(std::unique_ptr<CompiledFn>& cf) {
  if (!cf || !cf->optimized.valid()) return false;
  if (cf->optimized.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
  std::unique_ptr<CompiledFn> o;
  try {
    o = cf->optimized.get();
  } catch (const std::exception&) {
    return false;  // keep the first version
  }
  o->module = std::move(cf->module);
  o->reusedBuffers += cf->reusedBuffers.load();
  cf = std::move(o);
  return true;
}

bool CompiledFn::run(const std::vector<rt::Tensor>& inputs, std::vector<rt::Tensor>& outputs, ExecError& err) const {
  if (runner) return runner->run(inputs, outputs, err);
  std::vector<rt::Tensor> slots(static_cast<size_t>(numSlots));
  std::vector<int64_t> symv(syms.size(), 0);
  for (size_t i = 0; i < paramSlots.size() && i < inputs.size(); ++i) {
    slots[static_cast<size_t>(paramSlots[i])] = inputs[i];
    const auto& dims = fn->params()[i]->type.dims;
    for (size_t d = 0; d < dims.size(); ++d)
      if (dims[d].is_symbolic()) {
        for (size_t k = 0; k < syms.size(); ++k)
          if (syms[k] == dims[d].sym) symv[k] = inputs[i].dim(static_cast<int64_t>(d));
      }
  }
  ExecCtx c;
  c.fn = this;
  c.slots = slots.data();
  c.syms = symv.data();
  int status = entry(&c);
  reusedBuffers.fetch_add(c.reused, std::memory_order_relaxed);
  if (status != 0) {
    err.message = c.err;
    err.op = c.errOp >= 0 ? ops[static_cast<size_t>(c.errOp)].op : nullptr;
    return false;
  }
  outputs.clear();
  for (int s : resultSlots) outputs.push_back(slots[static_cast<size_t>(s)]);
  return true;
}

// ------------------------------------------------------------------ the table as text

namespace {
void putInts(std::string& s, const std::vector<int32_t>& v) {
  s += std::to_string(v.size());
  for (int32_t x : v) s += " " + std::to_string(x);
  s += "\n";
}
}  // namespace

std::string serializeTable(const CompiledFn& cf) {
  std::vector<const ir::Op*> order = opsInOrder(*cf.fn);
  std::string s = "tdl-table 1\n" + std::to_string(cf.numSlots) + "\n";
  putInts(s, std::vector<int32_t>(cf.paramSlots.begin(), cf.paramSlots.end()));
  putInts(s, std::vector<int32_t>(cf.resultSlots.begin(), cf.resultSlots.end()));
  s += std::to_string(cf.syms.size()) + "\n";
  for (auto& y : cf.syms) s += std::to_string(y.size()) + " " + y + "\n";
  s += std::to_string(cf.ops.size()) + "\n";
  for (const OpEntry& e : cf.ops) {
    auto it = std::find(order.begin(), order.end(), e.op);
    s += std::to_string(it == order.end() ? -1 : static_cast<int64_t>(it - order.begin())) + " " +
         std::to_string(e.moveIn + 1) + "\n";
    putInts(s, e.in);
    putInts(s, e.out);
    s += std::to_string(e.outSyms.size()) + "\n";
    for (auto& r : e.outSyms) putInts(s, std::vector<int32_t>(r.begin(), r.end()));
  }
  return s;
}

// Reads back serializeTable's text for `fn`; false for anything that is not a table of this
// function (bad syntax, numbers out of range, slots or ops that do not exist), never a crash.
bool restoreTable(CompiledFn& cf, const std::string& text, ir::Function& fn) {
  std::vector<const ir::Op*> order = opsInOrder(fn);
  size_t pos = 0;
  // A decimal integer in [lo, hi]; digits past 18 are refused before they could overflow.
  auto num = [&](int64_t& v, int64_t lo, int64_t hi) {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\n')) ++pos;
    bool neg = pos < text.size() && text[pos] == '-';
    if (neg) ++pos;
    size_t start = pos;
    int64_t x = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (pos - start >= 18) return false;
      x = x * 10 + (text[pos++] - '0');
    }
    if (start == pos) return false;
    v = neg ? -x : x;
    return v >= lo && v <= hi;
  };
  const int64_t maxCount = static_cast<int64_t>(text.size());  // each element takes a byte at least
  int64_t numSlots = 0;
  auto slots = [&](std::vector<int32_t>& v) {
    int64_t n;
    if (!num(n, 0, maxCount)) return false;
    v.resize(static_cast<size_t>(n));
    for (auto& x : v) {
      int64_t y;
      if (!num(y, 0, numSlots - 1)) return false;
      x = static_cast<int32_t>(y);
    }
    return true;
  };
  if (text.compare(0, 12, "tdl-table 1\n") != 0) return false;
  pos = 12;
  int64_t n;
  std::vector<int32_t> v;
  if (!num(numSlots, 0, int64_t{1} << 24)) return false;
  cf.numSlots = static_cast<int>(numSlots);
  if (!slots(v) || v.size() != fn.params().size()) return false;
  cf.paramSlots.assign(v.begin(), v.end());
  if (!slots(v) || v.size() != fn.result_types.size()) return false;
  cf.resultSlots.assign(v.begin(), v.end());
  if (!num(n, 0, maxCount)) return false;
  cf.syms.clear();
  for (int64_t i = 0; i < n; ++i) {
    int64_t len;
    if (!num(len, 0, maxCount) || pos + 1 + static_cast<size_t>(len) > text.size()) return false;
    cf.syms.push_back(text.substr(pos + 1, static_cast<size_t>(len)));
    pos += 1 + static_cast<size_t>(len);
  }
  const int64_t numSyms = static_cast<int64_t>(cf.syms.size());
  if (!num(n, 0, maxCount)) return false;
  cf.ops.clear();
  for (int64_t i = 0; i < n; ++i) {
    OpEntry e;
    int64_t idx, mv, nr;
    if (!num(idx, -1, static_cast<int64_t>(order.size()) - 1) || !num(mv, 0, 64)) return false;
    e.op = idx < 0 ? nullptr : order[static_cast<size_t>(idx)];
    e.moveIn = static_cast<int>(mv) - 1;
    if (!slots(e.in) || !slots(e.out) || e.moveIn >= static_cast<int>(e.in.size())) return false;
    if (!num(nr, 0, maxCount) || nr != static_cast<int64_t>(e.out.size())) return false;
    for (int64_t r = 0; r < nr; ++r) {
      int64_t rank;
      if (!num(rank, 0, 64)) return false;
      std::vector<int> dims(static_cast<size_t>(rank));
      for (int& d : dims) {
        int64_t y;
        if (!num(y, -1, numSyms - 1)) return false;
        d = static_cast<int>(y);
      }
      e.outSyms.push_back(std::move(dims));
    }
    cf.ops.push_back(std::move(e));
  }
  while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\n')) ++pos;
  if (pos != text.size()) return false;
  cf.fn = &fn;
  return true;
}

void registerExternFn(const std::string& key, ExternFn fn) {
  std::lock_guard<std::mutex> lock(externMutex());
  externFns()[key] = std::move(fn);
}

}  // namespace tdl::codegen
