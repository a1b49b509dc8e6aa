// A native function that graph fns call as one opaque run-time op: a loaded model's fns
// (tools/ModelValue.cpp). The tracer (graph/Calls.cpp, Tracer::opaqueCall) binds the
// arguments, flattens them to the signature's tensor leaves and emits call_runtime "extern"
// with the function's key; the compiled code finds the function by that key in codegen's
// registry (codegen::registerExternFn, codegen/Exec.h), where the model registered it when
// it loaded, and runs it as eager mode does (the same checks, the same messages).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/DType.h"
#include "vm/Value.h"

namespace tdl::vm {

struct OpaqueLeaf {
  std::string name;                // the parameter, its path inside records and tuples (`p.w`), or the output's
  rt::DType dtype = rt::DType::F32;
  std::vector<int64_t> sizes;      // per dim; -1: symbolic, named in syms
  std::vector<std::string> syms;   // per dim; "" where the size is known
};

struct OpaqueSig {
  std::string key;                   // codegen::registerExternFn's key
  std::string name;                  // the fn, for messages
  std::vector<std::string> params;   // declared parameter names
  std::string inStructure, outStructure;  // "t" a tensor, "(...)" a tuple, "{name:...}" a record (model::Signature's)
  std::vector<OpaqueLeaf> inputs, outputs;
};

struct OpaqueFnObj : NativeObj {
  virtual const OpaqueSig& opaqueSig() const = 0;
};

}  // namespace tdl::vm
