// Compiled graph fns as shared objects, loaded without LLVM: the compile cache's entries
// (codegen/DiskCache.h) and the code of model files exported for another machine
// (`tdl export --target`, model/Model.h), which the loader on an ARM board maps with the
// system's dynamic loader. Part of tdl_exec (no LLVM).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "codegen/Codegen.h"

namespace tdl::codegen {

// The features an LLVM feature list enables: "+avx2,-avx512f,+fma" -> {avx2, fma}.
std::vector<std::string> enabledFeatures(const std::string& features);

// Writes all of `data` to fd (retrying short writes and EINTR).
bool writeAllFd(int fd, const std::string& data);

// dlopen of exactly `bytes`: a memfd holding them (named `name` in /proc/PID/maps), opened by
// its /proc path. The memfd stays open for the life of the process: the dynamic loader
// recognizes an object it has loaded by its path name, so a /proc/self/fd/N path must never
// name another object later. Null when the bytes cannot be loaded (or memfds or /proc are
// unavailable); `why` then says why when given.
void* dlopenBytes(const std::string& bytes, const char* name, std::string* why = nullptr);

// Whether code compiled for `triple` with the LLVM feature list `features` ("+neon,+crc,...")
// runs on this machine, without LLVM: the same architecture, and on 64-bit ARM every
// feature the kernel reports in its hardware capabilities (getauxval: SVE, dot product,
// LSE atomics, ...) present. Otherwise `why` says what differs.
bool cpuRunsCode(const std::string& triple, const std::string& features, std::string& why);

// A function linked into a shared object (its entry point the exported symbol `entry`),
// with its op table restored onto `fn` (owned by `module`). The shared object calls the
// tdl_* runtime ABI by name: the ABI must be visible to the dynamic loader (the tdl
// executable exports it; libtdl_model.so exports it and is made global here when it was
// loaded with RTLD_LOCAL). Throws std::runtime_error when it cannot be loaded.
std::unique_ptr<CompiledFn> loadSharedObject(std::unique_ptr<ir::Module> module, ir::Function& fn,
                                             const std::string& so, const std::string& entry,
                                             const std::string& table);

}  // namespace tdl::codegen
