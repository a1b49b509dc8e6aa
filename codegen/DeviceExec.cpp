// Graph fns on a device (`tdl run --device cuda|emu`): the optimized IR run op by op.
// Data-parallel ops (the kernels of codegen/Ptx.cpp) run on the device with their operands
// there (uploaded once; results stay there); matmul and gemm go to the device's BLAS;
// control flow runs on the host, reading back only the scalar it branches on; every other
// op runs on the host as compiled CPU code runs it (runHostOp, Exec.cpp), its operands
// brought back only if it reads them (rt::Storage's device hooks). The same code drives
// the CUDA device and the emulated one.
#include "codegen/DeviceExec.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>

#include "codegen/Device.h"
#include "codegen/Exec.h"
#include "ir/Eval.h"
#include "ir/ShapeInference.h"
#include "runtime/Elementwise.h"
#include "runtime/Interrupt.h"
#include "runtime/Profile.h"
#include "runtime/Reduce.h"
#include "runtime/ShapeOps.h"

namespace tdl::codegen {

namespace {

struct Failure {
  std::string message;
  const ir::Op* op;
};

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class DeviceRunner : public CompiledFn::Runner {
 public:
  DeviceRunner(const ir::Function& fn, Device& dev, const KernelImage* image) : fn_(fn), dev_(dev) {
    kernels_ = dev.load(fn, image);
    const auto& ks = kernels_->kernels();
    for (size_t i = 0; i < ks.size(); ++i) kernelOf_[ks[i].op] = i;
    lastUses(fn.entry());
  }

  bool run(const std::vector<rt::Tensor>& inputs, std::vector<rt::Tensor>& outputs, ExecError& err) override {
    Frame f;
    try {
      for (size_t i = 0; i < fn_.params().size() && i < inputs.size(); ++i) f.bind(fn_.params()[i], inputs[i]);
      std::vector<rt::Tensor> results;
      runBlock(f, fn_.entry(), results);
      outputs = std::move(results);
      return true;
    } catch (const Failure& e) {
      err.message = e.message;
      err.op = e.op;
    }
    return false;
  }

 private:
  struct Frame : HostOpEnv {
    Frame() : HostOpEnv(stackStore) {}
    std::vector<std::vector<rt::Tensor>> stackStore;
    std::unordered_map<const ir::Value*, rt::Tensor> vals;
    std::map<std::string, int64_t> syms;

    void bind(const ir::Value* v, rt::Tensor t) {
      const auto& dims = v->type.dims;
      for (size_t d = 0; d < dims.size() && static_cast<int64_t>(d) < t.rank(); ++d)
        if (dims[d].is_symbolic()) syms[dims[d].sym] = t.dim(static_cast<int64_t>(d));
      vals[v] = std::move(t);
    }
    const rt::Tensor& get(const ir::Value* v) const {
      auto it = vals.find(v);
      if (it == vals.end()) throw rt::InternalError("device executor: a value used before it is defined");
      return it->second;
    }
    rt::Shape resolve(const ir::TensorType& t) override {
      rt::Shape s;
      for (const ir::Dim& d : t.dims) {
        if (d.is_known()) s.push_back(d.size);
        else {
          auto it = syms.find(d.sym);
          s.push_back(it != syms.end() ? it->second : 0);
        }
      }
      return s;
    }
  };

  std::vector<rt::Tensor> operands(Frame& f, const ir::Op& op) {
    std::vector<rt::Tensor> in;
    in.reserve(op.num_operands());
    for (const ir::Value* v : op.operands()) in.push_back(f.get(v));
    return in;
  }

  void bindResults(Frame& f, const ir::Op& op, std::vector<rt::Tensor>& out) {
    for (size_t i = 0; i < out.size() && i < op.num_results(); ++i) f.bind(op.result(i), std::move(out[i]));
  }

  // Runs `blk`; its terminator's operands go to `yields`.
  void runBlock(Frame& f, const ir::Block& blk, std::vector<rt::Tensor>& yields) {
    for (size_t i = 0; i < blk.size(); ++i) {
      const ir::Op& op = blk.op(i);
      if (op.kind() == ir::OpKind::Yield || op.kind() == ir::OpKind::Return) {
        yields = operands(f, op);
        return;
      }
      try {
        runOp(f, op);
        auto d = dies_.find(&op);  // drop what no later op reads (device memory back to the cache)
        if (d != dies_.end())
          for (const ir::Value* v : d->second) f.vals.erase(v);
      } catch (const Failure&) {
        throw;
      } catch (const rt::Error& e) {
        throw Failure{hostOpMessage(op, e.what()), &op};
      } catch (const std::bad_alloc&) {
        throw Failure{"out of memory", &op};
      } catch (const std::exception& e) {
        throw Failure{e.what(), &op};
      }
    }
  }

  void runOp(Frame& f, const ir::Op& op) {
    switch (op.kind()) {
      case ir::OpKind::While: return runWhile(f, op);
      case ir::OpKind::Cond: {
        bool p = f.get(op.operand(0)).scalar_as_bool();  // read back when computed on the device
        std::vector<rt::Tensor> y;
        runBlock(f, op.region(p ? 0 : 1).block(), y);
        return bindResults(f, op, y);
      }
      default: break;
    }
    auto k = kernelOf_.find(&op);
    if (k != kernelOf_.end() && launch(f, op, k->second)) return;
    if ((op.kind() == ir::OpKind::MatMul || op.kind() == ir::OpKind::Gemm) && deviceGemm(f, op)) return;
    if (op.kind() == ir::OpKind::Fused || op.kind() == ir::OpKind::FusedReduce) return hostFused(f, op);
    rt::prof::Scope ps(rt::prof::Section::CompiledOp, op.name());  // as compiled code's tdl_op
    std::vector<rt::Tensor> in = operands(f, op);
    std::vector<rt::Tensor> out = runHostOp(op, in, f);
    bindResults(f, op, out);
  }

  void runWhile(Frame& f, const ir::Op& op) {
    std::vector<rt::Tensor> carried = operands(f, op), y;
    const ir::Block &cb = op.region(0).block(), &body = op.region(1).block();
    // Symbols bound before the loop keep their sizes after it (a gradient's backward loop
    // binds the forward values' symbols to each iteration's sizes; Lower.cpp's lowerWhile).
    std::map<std::string, int64_t> before = f.syms;
    for (;;) {
      rt::check_interrupt();
      for (size_t i = 0; i < cb.num_args(); ++i) f.bind(cb.arg(i), carried[i]);
      runBlock(f, cb, y);
      for (size_t i = 0; i < cb.num_args(); ++i) f.vals.erase(cb.arg(i));  // the body's own copies follow
      if (!y.at(0).scalar_as_bool()) break;
      for (size_t i = 0; i < body.num_args(); ++i) f.bind(body.arg(i), std::move(carried[i]));
      runBlock(f, body, carried);
    }
    for (auto& [sym, size] : before) f.syms[sym] = size;
    bindResults(f, op, carried);
  }

  // For each op, the values of its block (results, the block's arguments) that no later op
  // of the block reads, also inside regions; the values of the last op (yield, return) stay.
  void lastUses(const ir::Block& blk) {
    std::unordered_map<const ir::Value*, size_t> last;
    for (size_t i = 0; i < blk.num_args(); ++i) last[blk.arg(i)] = SIZE_MAX;
    for (size_t i = 0; i < blk.size(); ++i)
      for (size_t r = 0; r < blk.op(i).num_results(); ++r) last[blk.op(i).result(r)] = i;
    std::function<void(const ir::Op&, size_t)> uses = [&](const ir::Op& op, size_t at) {
      for (const ir::Value* v : op.operands()) {
        auto it = last.find(v);
        if (it != last.end()) it->second = at;
      }
      for (size_t r = 0; r < op.num_regions(); ++r)
        for (size_t j = 0; j < op.region(r).block().size(); ++j) uses(op.region(r).block().op(j), at);
    };
    for (size_t i = 0; i < blk.size(); ++i) uses(blk.op(i), i);
    for (auto& [v, at] : last)
      if (at != SIZE_MAX && at + 1 < blk.size()) dies_[&blk.op(at)].push_back(v);
    for (size_t i = 0; i < blk.size(); ++i)
      for (size_t r = 0; r < blk.op(i).num_regions(); ++r) lastUses(blk.op(i).region(r).block());
  }

  // --profile: the device's time for op since t0 (synchronized) under `what (line L)`.
  void profiled(const ir::Op& op, std::string what, double t0) {
    if (!rt::prof::enabled()) return;
    dev_.synchronize();
    if (op.loc.line > 0) what += fmt::format(" (line {})", op.loc.line);
    rt::prof::record(rt::prof::Section::CompiledOp, what, now() - t0);
  }

  // The shape a kernel's result has for these operands.
  // The index space of an elementwise or fused op (and a fused reduction's domain): its
  // operands' broadcast; a reduction's or argmax's: its input's shape.
  static rt::Shape domain(const ir::Op& op, const std::vector<rt::Tensor>& in) {
    size_t n = op.kind() == ir::OpKind::Reduce || op.kind() == ir::OpKind::ArgMax || op.kind() == ir::OpKind::ArgMin
                   ? 1
                   : in.size();
    rt::Shape dom = in.at(0).shape();
    for (size_t j = 1; j < n; ++j) dom = rt::broadcast_shapes(dom, in[j].shape());
    return dom;
  }

  static rt::Shape resultShape(const ir::Op& op, const std::vector<rt::Tensor>& in) {
    rt::Shape dom = domain(op, in);
    switch (op.kind()) {
      case ir::OpKind::Reduce:
      case ir::OpKind::FusedReduce: {
        rt::Axes axes = std::vector<int64_t>(op.ints_attr("axes").begin(), op.ints_attr("axes").end());
        return rt::reduced_shape(dom, rt::reduction_mask(axes, static_cast<int64_t>(dom.size())), op.bool_attr("keepdims"));
      }
      case ir::OpKind::ArgMax:
      case ir::OpKind::ArgMin: {
        rt::Axes axes = std::vector<int64_t>{op.int_attr("axis")};
        return rt::reduced_shape(dom, rt::reduction_mask(axes, static_cast<int64_t>(dom.size())), op.bool_attr("keepdims"));
      }
      default: return dom;
    }
  }

  // Runs op's kernel; false when the host must run the op instead (a max/min/argmax over an
  // empty axis: the host reports the error).
  bool launch(Frame& f, const ir::Op& op, size_t k) {
    const PtxKernel& pk = kernels_->kernels()[k];
    if (pk.kind == PtxKernel::Insert) return launchInsert(f, op, k);
    std::vector<rt::Tensor> in = operands(f, op);
    if (pk.kind == PtxKernel::Copy) {  // its view gives the shape and the launch at once
      CopyView v = copyView(op, in, op.kind() == ir::OpKind::BroadcastTo ? f.resolve(op.result()->type) : rt::Shape{});
      rt::Tensor out = deviceEmpty(op.result()->type.dtype, v.dims);
      KernelLaunch l = planView(deviceData(out), deviceData(in[0]), out.numel(), v.offset, {&v.dims, &v.strides},
                                dev_.maxGrid(), 256);
      if (!l.skip) runKernel(op, k, l);
      f.bind(op.result(), std::move(out));
      return true;
    }
    rt::Shape shape = resultShape(op, in);
    rt::Tensor out = deviceEmpty(op.result()->type.dtype, shape);
    std::vector<uint64_t> bufs(in.size(), 0);
    for (size_t j = 0; j < in.size(); ++j)  // scalars go by value
      if (!op.operand(j)->type.is_scalar()) bufs[j] = deviceData(in[j]);
    uint64_t flag = 0;
    if (pk.mayFail) {  // the kernel's error flag: a device i32, 0 until a thread fails
      if (!errFlag_.defined()) errFlag_ = rt::Tensor::zeros(rt::DType::I32, {1});
      flag = deviceData(errFlag_);
    }
    KernelLaunch l = planLaunch(pk, deviceData(out), bufs, in, shape, dev_.maxGrid(), 256, flag);
    if (l.skip) {
      if (out.numel() > 0) return false;
    } else {
      runKernel(op, k, l, flag);
    }
    f.bind(op.result(), std::move(out));
    return true;
  }

  // Launches kernel k of op and counts it; with an error flag (a kernel that may fail), reads
  // it back at once, so that nothing after the op runs; --profile times it.
  void runKernel(const ir::Op& op, size_t k, const KernelLaunch& l, uint64_t flag = 0) {
    double t0 = rt::prof::enabled() ? now() : 0;
    dev_.launch(*kernels_, k, l);
    noteLaunch();
    if (flag) {
      int32_t failed = 0;
      dev_.copyOut(&failed, flag, sizeof failed);
      noteTransfer(false, sizeof failed);
      if (failed) {
        int32_t zero = 0;
        dev_.copyIn(flag, &zero, sizeof zero);
        throw rt::Error("division by zero");
      }
    }
    const std::string& name = kernels_->kernels()[k].name;
    profiled(op, "kernel " + name.substr(name.find("_k") + 1), t0);
  }

  // update / dyn_slice_update: the result is x's buffer when x dies here and lives only on
  // the device (written in place), else a device copy of x; then the kernel writes v into
  // the region. The region is checked (the runtime's errors) before anything is copied.
  bool launchInsert(Frame& f, const ir::Op& op, size_t k) {
    std::vector<rt::Tensor> in = operands(f, op);
    uint64_t v = deviceData(in[1]);  // by pointer, also a scalar
    InsertView w = insertView(op, in);
    if (w.count == 0) {  // nothing written: x itself
      f.bind(op.result(), in[0]);
      return true;
    }
    rt::Tensor out;
    auto d = dies_.find(&op);
    bool dies = d != dies_.end() && std::find(d->second.begin(), d->second.end(), op.operand(0)) != d->second.end();
    if (dies && onDeviceOnly(in[0]) && in[0].storage()->refs.load(std::memory_order_acquire) == 2) {
      out = in[0];  // held by the frame and `in` only, and the frame drops it after this op
    } else {
      out = deviceEmpty(in[0].dtype(), in[0].shape());
      dev_.copyOnDevice(deviceData(out), deviceData(in[0]), out.nbytes());
    }
    runKernel(op, k, planView(deviceData(out), v, w.count, w.offset, {&w.dims, &w.outStrides, &w.vStrides},
                              dev_.maxGrid(), 256));
    in.clear();
    f.bind(op.result(), std::move(out));
    return true;
  }

  // matmul of rank-2 (or equally batched) and gemm of f32/f64 operands on the device's BLAS;
  // false for the others (the host runs them).
  bool deviceGemm(Frame& f, const ir::Op& op) {
    std::vector<rt::Tensor> in = operands(f, op);
    rt::DType dt = op.result()->type.dtype;
    if (dt != rt::DType::F32 && dt != rt::DType::F64) return false;
    for (const rt::Tensor& t : in)
      if (t.dtype() != dt) return false;
    const rt::Tensor &a = in[0], &b = in[1];
    if (a.rank() < 2 || a.rank() != b.rank()) return false;
    bool ta = false, tb = false;
    double alpha = 1, beta = 0;
    if (op.kind() == ir::OpKind::Gemm) {
      if (a.rank() != 2) return false;
      ta = op.bool_attr("trans_a");
      tb = op.bool_attr("trans_b");
      if (const double* p = op.attr_as<double>("alpha")) alpha = *p;
      if (const double* p = op.attr_as<double>("beta")) beta = *p;
    }
    int64_t r = a.rank();
    for (int64_t d = 0; d + 2 < r; ++d)
      if (a.dim(d) != b.dim(d)) return false;  // broadcast batches: the host
    int64_t ra = a.dim(r - 2), ca = a.dim(r - 1), rb = b.dim(r - 2), cb = b.dim(r - 1);
    int64_t M = ta ? ca : ra, K = ta ? ra : ca, N = tb ? rb : cb;
    if ((tb ? cb : rb) != K) return false;  // the host reports the mismatch
    if (M == 0 || N == 0 || K == 0) return false;
    rt::Shape shape(a.shape().begin(), a.shape().end() - 2);
    shape.push_back(M);
    shape.push_back(N);
    bool withC = in.size() > 2 && beta != 0;
    if (in.size() > 2 && in[2].shape() != shape) return false;
    rt::Tensor out = deviceEmpty(dt, shape);
    size_t item = rt::itemsize(dt);
    uint64_t pa = deviceData(a), pb = deviceData(b), pc = deviceData(out);
    if (withC) dev_.copyOnDevice(pc, deviceData(in[2]), out.nbytes());
    int64_t batches = rt::numel_of(rt::Shape(a.shape().begin(), a.shape().end() - 2));
    double t0 = rt::prof::enabled() ? now() : 0;
    for (int64_t i = 0; i < batches; ++i) {
      uint64_t oa = pa + static_cast<uint64_t>(i * ra * ca) * item, ob = pb + static_cast<uint64_t>(i * rb * cb) * item,
               oc = pc + static_cast<uint64_t>(i * M * N) * item;
      // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
      dev_.gemm(dt, tb, ta, N, M, K, alpha, ob, cb, oa, ca, withC ? beta : 0.0, oc, N);
      noteGemm();
    }
    profiled(op, fmt::format("gemm {}x{}x{}", M, N, K), t0);
    f.bind(op.result(), std::move(out));
    return true;
  }

  // A fused op that did not become a kernel (f64 transcendentals, ...): its body's ops on
  // whole tensors on the host, then the reduction of a fused_reduce.
  void hostFused(Frame& f, const ir::Op& op) {
    std::vector<rt::Tensor> in = operands(f, op);
    const ir::Block& body = op.region(0).block();
    rt::Shape dom = domain(op, in);
    for (size_t j = 0; j < body.num_args(); ++j) f.bind(body.arg(j), in[j]);
    std::vector<rt::Tensor> y;
    runBlock(f, body, y);
    rt::Tensor v = y.at(0);
    if (v.shape() != dom) v = rt::broadcast_to(v, dom);
    if (op.kind() == ir::OpKind::FusedReduce) {
      auto kind = ir::reduce_kind_from_name(op.str_attr("kind"));
      if (!kind) throw rt::InternalError("fused_reduce of kind " + op.str_attr("kind"));
      const ir::IntList& ax = op.ints_attr("axes");
      v = rt::reduce(*kind, v, rt::Axes(std::vector<int64_t>(ax.begin(), ax.end())), op.bool_attr("keepdims"));
    }
    if (v.dtype() != op.result()->type.dtype) v = rt::cast(v, op.result()->type.dtype);
    f.bind(op.result(), std::move(v));
  }

  const ir::Function& fn_;
  Device& dev_;
  std::unique_ptr<DeviceKernels> kernels_;
  std::unordered_map<const ir::Op*, size_t> kernelOf_;
  std::unordered_map<const ir::Op*, std::vector<const ir::Value*>> dies_;  // lastUses
  rt::Tensor errFlag_;  // the error flag of kernels that may fail (on the device)
};

}  // namespace

std::unique_ptr<CompiledFn> makeDeviceFn(std::unique_ptr<ir::Module> module, ir::Function& fn,
                                         const KernelImage* image) {
  Device* dev = activeDevice();
  if (!dev) throw std::runtime_error("no device is selected");
  auto cf = std::make_unique<CompiledFn>();
  cf->fn = &fn;
  cf->runner = std::make_unique<DeviceRunner>(fn, *dev, image);
  cf->module = std::move(module);
  return cf;
}

}  // namespace tdl::codegen
