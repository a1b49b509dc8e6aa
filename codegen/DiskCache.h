// The compile cache on disk: a graph fn compiled once is reused by later processes without
// running LLVM (docs/graph.md, "Compile cache"; the threat model: docs/compile-cache.md). An
// entry is a shared object linked from the JIT's own object file plus the function's op
// table; its key hashes the optimized IR text and the compiler's identity (tdl version, the
// tdl binary's build id, the host CPU). A hit costs a read, a hash and a dlopen; LLVM's code
// and heap are never touched, which is most of what compiling adds to a process's memory.
//   Where: $TDL_CACHE_DIR, else $XDG_CACHE_HOME/tdl/compiled, else ~/.cache/tdl/compiled.
//   TDL_CACHE_DIR=off (or an empty value) disables it; so does a directory that cannot be
//   made, is not the user's own or is writable by others (its objects are run), a host
//   program that does not export the tdl_* runtime ABI (only `tdl` does), or a missing C
//   compiler.
//   Trusted only as far as checked: the directory is opened once (a directory fd; every
//   later access is relative to it, so renaming or replacing the path changes nothing), and
//   an entry is used only when both of its files are regular files of this user's that
//   nobody else can write, and their SHA-256 digests match the ones recorded in the entry.
//   The checked bytes themselves are what dlopen maps (through a memfd). Anything else
//   (damaged, foreign, a FIFO or link, an older format) is removed and compiled again.
//   Files are created 0600/0700 whatever the umask, under temporary names, and renamed into
//   place within the directory.
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
  int dirfd_ = -1;  // the directory, opened once (never closed: entries are read relative to it)
  std::string dir_, identity_, cc_;
};

}  // namespace tdl::codegen
