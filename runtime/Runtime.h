// The public API of the TDL runtime (namespace tdl::rt). Include this one header.
//
// Conventions for callers (the VM, JIT-compiled code, AOT executables):
//  - User-facing failures throw tdl::rt::Error whose message is the bare SPEC §9 phrase
//    (no location); the caller adds `file:line:col` and the call chain. InternalError
//    means the C++ API was misused.
//  - Binary elementwise ops, where, concat, matmul promote strong operands to their
//    common dtype themselves. Weak literals (SPEC §2) are the caller's job: convert the
//    literal to the other operand's dtype first (Tensor::scalar_of / scalar_of_int).
//  - Tensors are values: copies share storage; writes go through mutable_data() /
//    set_index(), which copy a shared buffer first.
#pragma once

#include "runtime/Create.h"       // zeros ones full arange linspace eye
#include "runtime/DType.h"        // DType, promote, dtype_name, dispatch
#include "runtime/Elementwise.h"  // binary/unary ops (ops.def), cast, where, clip
#include "runtime/Error.h"        // Error, InternalError
#include "runtime/Index.h"        // get_index, set_index, gather, scatter
#include "runtime/Io.h"           // load/save_npy, load/save_safetensors, load_csv
#include "runtime/Matmul.h"       // matmul, dot, outer
#include "runtime/Print.h"        // format_tensor, format_float
#include "runtime/Random.h"       // seed, rand, randn, randint, permutation (Philox)
#include "runtime/Reduce.h"       // sum mean max min prod all any argmax argmin logsumexp
#include "runtime/Shape.h"        // every shape rule (broadcast, reshape, matmul, ...)
#include "runtime/ShapeOps.h"     // reshape transpose concat stack take pad tile ...
#include "runtime/Tensor.h"       // Tensor (copy-on-write storage)
#include "runtime/ThreadPool.h"   // parallel_for
