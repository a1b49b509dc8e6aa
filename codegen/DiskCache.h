// The compile cache on disk: a graph fn compiled once is reused by later processes without
// running LLVM (docs/graph.md, "Compile cache"). An entry is a shared object linked from the
// JIT's own object file plus the function's op table; its key hashes the optimized IR text
// and the compiler's identity (tdl version, the tdl binary's build id, the host CPU). A hit
// costs a dlopen; LLVM's code and heap are never touched, which is most of what compiling
// adds to a process's memory.
//   Where: $TDL_CACHE_DIR, else $XDG_CACHE_HOME/tdl/compiled, else ~/.cache/tdl/compiled.
//   TDL_CACHE_DIR=off (or an empty value) disables it; so does a directory that cannot be
//   made, is not the user's own or is writable by others (its objects are run), a host
//   program that does not export the tdl_* runtime ABI (only `tdl` does), or a missing C
//   compiler.
//   Bounded: at most 4096 entries, the least recently used (loaded) dropped first, when a
//   process stores its first entry; temporaries of links that never finished go after an hour.
//   Writing never delays the program: the object and table are written, and the C compiler
//   links the shared object in a detached process that renames it into place when done.
#pragma once

#include <memory>
#include <string>

#include "codegen/Codegen.h"

namespace tdl::codegen {

class DiskCache {
 public:
  static DiskCache& get();
  bool enabled() const { return enabled_; }
  const std::string& dir() const { return dir_; }
  // The key of an optimized function's IR text.
  std::string key(const std::string& irText) const;
  // The cached compiled function for `fn` under `key` (its op table restored), or null.
  std::unique_ptr<CompiledFn> load(const std::string& key, ir::Function& fn);
  // Stores the JIT's relocatable object for `entry` and the op table; links in the background.
  void store(const std::string& key, const std::string& object, const std::string& entry, const std::string& table);

 private:
  DiskCache();
  bool enabled_ = false;
  std::string dir_, identity_, cc_;
};

}  // namespace tdl::codegen
