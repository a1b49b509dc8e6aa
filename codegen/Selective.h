// Selective builds of the runtime (runtime/Kernels.h, docs/edge.md): which kernels a graph
// fn's IR may call at run time, whether this runtime holds them, and the kernel tables of a
// minimal runtime that holds only those (`tdl runtime`), as TF Lite's selective build
// registers only the ops of given models.
#pragma once
#include <set>
#include <string>

#include "ir/IR.h"

namespace tdl::codegen {

struct KernelSet {
  std::set<rt::BinaryOp> binary;  // elementwise kernels
  std::set<rt::UnaryOp> unary;
  std::set<ir::OpKind> ops;   // ir::evaluate's kernels (TDL_EVAL_OPS)
  std::set<ir::OpKind> host;  // runHostOp's (TDL_HOST_OPS)
  void merge(const KernelSet& o);
  size_t size() const { return binary.size() + unary.size() + ops.size() + host.size(); }
};

// Adds the kernels `fn` may call: those of its ops at any depth (a superset: fused bodies
// and native scalar ops compile to code of their own) and those these kernels call in turn
// (a mean divides, a logsumexp takes exp and log, ...).
void collectKernels(ir::Function& fn, KernelSet& s);

// The first kernel of `s` this runtime lacks ("op 'conv_nhwc'"), or "" when it has all.
std::string missingKernel(const KernelSet& s);

// The kernel names of `s`, sorted ("add", "matmul", ...), for reports.
std::string kernelNames(const KernelSet& s);

// The C source of a minimal runtime's tables holding exactly `s`; `forWhat` names its
// models in messages (runtime/Kernels.h's tdlk_kernels_for).
std::string kernelTableSource(const KernelSet& s, const std::string& forWhat);

}  // namespace tdl::codegen
