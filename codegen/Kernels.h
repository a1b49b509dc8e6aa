// codegen/Kernels: what the host knows of a graph fn's GPU kernels (codegen/Ptx.cpp makes
// them): the kernel list, how to launch each (grid, block, argument bytes), and the list as
// text for a native executable that embeds the PTX (`tdl build --device cuda`). No LLVM.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "ir/IR.h"
#include "ir/Pass.h"
#include "runtime/Tensor.h"

namespace tdl::codegen {

inline constexpr int kReduceBlock = 256;

struct PtxKernel {
  enum Kind { Elementwise, ElementwiseRows, Reduce, ReduceStrided, ArgReduce, Copy, Insert };
  std::string name;
  Kind kind = Elementwise;
  const ir::Op* op = nullptr;
  std::string signature;  // the kernel's parameters, for the header comment
  // An integer // or %: its last parameter is an i32 error flag that a thread dividing by
  // zero sets to 1 (the host raises "division by zero" for the op).
  bool mayFail = false;
};

struct PtxModule {
  std::string ptx;  // the PTX text, header comments included
  std::vector<PtxKernel> kernels;
  std::vector<std::string> hostOps;  // "while", "matmul", "fused (f64 exp needs libdevice)"
};

// How to launch kernel k: grid and block sizes and each argument's bytes, as cuLaunchKernel
// reads them (buffers as 64-bit device addresses). `out` is the result's buffer, bufs[j]
// operand j's (unused for a scalar operand, whose value comes from operands[j]); the sizes
// come from the operands' and the result's shapes. `skip`: nothing to launch (no elements,
// or a max/min over an empty axis, which is an error the host reports).
struct KernelLaunch {
  unsigned grid = 1, block = 1;
  std::vector<std::vector<unsigned char>> args;
  bool skip = false;
};
KernelLaunch planLaunch(const PtxKernel& k, uint64_t out, const std::vector<uint64_t>& bufs,
                        const std::vector<rt::Tensor>& operands, const rt::Shape& resultShape,
                        unsigned maxGrid = 4096, unsigned block = 256, uint64_t errFlag = 0);

// A copy kernel's view of its input (transpose, slice, broadcast_to, index with a tensor
// result): result element i, at coordinates c over `dims`, is in[offset + sum_a c[a] *
// strides[a]]. `operands`: the op's (an index's integer scalars are read); `target`: the
// resolved result shape of a broadcast_to (unused for the others). Throws rt::Error as the
// runtime's op would (a bad broadcast, an index out of range).
struct CopyView {
  rt::Shape dims;
  std::vector<int64_t> strides;
  int64_t offset = 0;
};
CopyView copyView(const ir::Op& op, const std::vector<rt::Tensor>& operands, const rt::Shape& target);

// An insert kernel's region (update, dyn_slice_update; operands x, v, indices or bounds as
// the runtime reads them): element i of `dims` is out[offset + sum c[a] * outStrides[a]] :=
// v[sum c[a] * vStrides[a]]. Throws rt::Error as set_index would (an index out of range, a
// shape that does not broadcast).
struct InsertView {
  rt::Shape dims;
  std::vector<int64_t> outStrides, vStrides;
  int64_t offset = 0, count = 0;
};
InsertView insertView(const ir::Op& op, const std::vector<rt::Tensor>& operands);

// The launch of a copy or insert kernel (what planLaunch gives them) from its view: out,
// in (v for an insert), n, offset, then the arrays (dims, then the strides) in order.
KernelLaunch planView(uint64_t out, uint64_t in, int64_t n, int64_t offset,
                      std::initializer_list<const std::vector<int64_t>*> arrays, unsigned maxGrid, unsigned block);

// How a kernel reads an operand: as the CPU's fused loops do, except that a strided
// broadcast counts as None (element-wise and fused kernels read it through strides;
// fused reductions leave such ops to the host).
ir::FusedOperand ptxOperandKind(const ir::TensorType& x, const ir::TensorType& r);

// The ops of fn in program order (an op before the ops of its regions): what the op
// tables and the kernel list as text name ops by.
std::vector<const ir::Op*> opsInOrder(const ir::Function& fn);

// The kernel list as text (one line per kernel: name, kind, its op's position in program
// order, may-fail) and back onto the function it was made from; false when it does not fit.
std::string serializeKernels(const std::vector<PtxKernel>& ks, const ir::Function& fn);
bool restoreKernels(std::vector<PtxKernel>& ks, const std::string& text, const ir::Function& fn);

}  // namespace tdl::codegen
