#include "codegen/DiskCache.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "ir/Printer.h"
#include "tools/BuildConfig.h"

extern char** environ;

namespace tdl::codegen {

namespace {

std::string hex(uint64_t v) {
  static const char* d = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<size_t>(i)] = d[v & 15];
  return s;
}

// The GNU build id of the main program (changes whenever the tdl binary does).
std::string buildId() {
  std::string id;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) -> int {
        auto& s = *static_cast<std::string*>(out);
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_NOTE) continue;
          const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
          const char* end = p + ph.p_memsz;
          while (p + sizeof(ElfW(Nhdr)) <= end) {
            auto* n = reinterpret_cast<const ElfW(Nhdr)*>(p);
            const char* name = p + sizeof(ElfW(Nhdr));
            const char* desc = name + ((n->n_namesz + 3) & ~3u);
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0 &&
                desc + n->n_descsz <= end) {
              for (unsigned k = 0; k < n->n_descsz; ++k) {
                char b[3];
                std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(desc[k]));
                s += b;
              }
              return 1;
            }
            p = desc + ((n->n_descsz + 3) & ~3u);
          }
        }
        return 1;  // only the main program (the first entry)
      },
      &id);
  return id;
}

// The host CPU as the kernel describes it (model and feature flags of the first CPU).
std::string cpuIdentity() {
  std::ifstream f("/proc/cpuinfo");
  std::string line, out;
  while (std::getline(f, line)) {
    if (line.empty()) break;
    // x86: vendor, family, model, stepping and flags; aarch64: implementer, part, features.
    for (const char* k : {"vendor_id", "cpu family", "model", "model name", "stepping", "flags", "Features",
                          "CPU implementer", "CPU architecture", "CPU variant", "CPU part", "CPU revision"})
      if (line.rfind(k, 0) == 0 && line.find(':') != std::string::npos &&
          line.find_last_not_of(" \t", line.find(':') - 1) + 1 == std::strlen(k)) {
        out += line + "\n";
        break;
      }
  }
  return out;
}

bool mkdirs(const std::string& path) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  if (!path.empty() && path[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) return false;
  }
  // Only a directory of this user's that nobody else can write: its shared objects are
  // loaded and run.
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && access(path.c_str(), W_OK) == 0 &&
         st.st_uid == geteuid() && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

bool writeFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(f);
}

bool readFile(const std::string& path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

// The symbol every cached shared object defines for its graph fn (an alias of the JIT's
// per-process name, so the table needs no name and writers racing on a key agree).
constexpr const char* kEntry = "tdl_cached_entry";

// The cache is bounded: at most this many entries (least recently used go first), and
// temporaries of links that never finished are removed after an hour.
constexpr size_t kMaxEntries = 4096;
constexpr time_t kStaleTempSeconds = 3600;

bool endsWith(const std::string& s, const char* suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Keeps the newest kMaxEntries entries (by the .so's mtime, which a hit refreshes) and
// drops stale temporaries. Entries are named KEY.so / KEY.table (KEY: 32 hex digits);
// temporaries KEY.PID.N.{o,table,so}.
void prune(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::vector<std::pair<time_t, std::string>> entries;
  time_t now = time(nullptr);
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 34 || name.find_first_not_of("0123456789abcdef") != 32) continue;
    std::string path = dir + "/" + name;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) continue;
    bool entry = name.size() == 35 && endsWith(name, ".so");
    bool temp = name[32] == '.' && std::isdigit(static_cast<unsigned char>(name[33]));
    if (entry) entries.emplace_back(st.st_mtime, name.substr(0, 32));
    else if (temp && now - st.st_mtime > kStaleTempSeconds) unlink(path.c_str());
  }
  closedir(d);
  if (entries.size() <= kMaxEntries) return;
  std::sort(entries.begin(), entries.end());
  for (size_t i = 0; i + kMaxEntries < entries.size(); ++i) {
    std::string base = dir + "/" + entries[i].second;
    unlink((base + ".so").c_str());
    unlink((base + ".table").c_str());
  }
}

}  // namespace

DiskCache& DiskCache::get() {
  static DiskCache* c = new DiskCache;
  return *c;
}

DiskCache::DiskCache() {
  const char* env = std::getenv("TDL_CACHE_DIR");
  if (env) {
    if (env[0] == '\0' || std::strcmp(env, "off") == 0 || std::strcmp(env, "0") == 0) return;
    dir_ = env;
  } else if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && xdg[0] == '/') {
    dir_ = std::string(xdg) + "/tdl/compiled";
  } else if (const char* home = std::getenv("HOME"); home && home[0] == '/') {
    dir_ = std::string(home) + "/.cache/tdl/compiled";
  } else {
    return;
  }
  // A cached object calls the runtime ABI by name: only a program exporting it (tdl) can
  // load one.
  if (!dlsym(RTLD_DEFAULT, "tdl_op") || !dlsym(RTLD_DEFAULT, "tdl_fused_alloc")) return;
  cc_ = TDL_BUILD_CC;
  if (access(cc_.c_str(), X_OK) != 0) return;
  std::string id = buildId();
  if (id.empty()) return;
  if (!mkdirs(dir_)) return;
  identity_ = "tdl-compile-cache 1\n" + id + "\n" + cpuIdentity();
  enabled_ = true;
}

std::string DiskCache::key(const std::string& irText) const {
  return hex(ir::fnv1a(irText, ir::fnv1a(identity_))) + hex(ir::fnv1a(identity_, ir::fnv1a(irText)));
}

std::unique_ptr<CompiledFn> DiskCache::load(const std::string& key, ir::Function& fn) {
  if (!enabled_) return nullptr;
  std::string base = dir_ + "/" + key;
  std::string table;
  if (access((base + ".so").c_str(), R_OK) != 0 || !readFile(base + ".table", table)) return nullptr;
  void* h = dlopen((base + ".so").c_str(), RTLD_NOW | RTLD_LOCAL);
  auto drop = [&] {
    unlink((base + ".so").c_str());
    unlink((base + ".table").c_str());
    return nullptr;
  };
  if (!h) return drop();
  void* sym = dlsym(h, kEntry);
  auto cf = std::make_unique<CompiledFn>();
  cf->fn = &fn;
  cf->syms = fn.syms;
  if (!sym || !restoreTable(*cf, table, fn)) {
    dlclose(h);
    return drop();
  }
  cf->entry = reinterpret_cast<int (*)(void*)>(sym);
  utimes((base + ".so").c_str(), nullptr);  // recently used: pruned last
  return cf;  // the handle stays open: the code is used until the process ends
}

void DiskCache::store(const std::string& key, const std::string& object, const std::string& entry,
                      const std::string& table) {
  if (!enabled_ || object.empty()) return;
  static std::atomic<int> counter{0};
  static std::atomic<bool> pruned{false};
  if (!pruned.exchange(true)) prune(dir_);
  std::string base = dir_ + "/" + key;
  std::string tmp = base + "." + std::to_string(getpid()) + "." + std::to_string(counter++);
  if (!writeFile(tmp + ".o", object) || !writeFile(tmp + ".table", table)) {
    unlink((tmp + ".o").c_str());
    unlink((tmp + ".table").c_str());
    return;
  }
  // Link, then rename the table and the object into place (each rename is atomic; a reader
  // needs both). Detached: this process neither waits for it nor leaves a zombie.
  std::string script =
      "( \"$1\" -shared -o \"$2.so\" \"$2.o\" -Wl,--defsym=" + std::string(kEntry) +
      "=\"$4\" -lm && mv -f \"$2.table\" \"$3.table\" && mv -f \"$2.so\" \"$3.so\"; "
      "rm -f \"$2.o\" \"$2.table\" \"$2.so\" ) </dev/null >/dev/null 2>&1 &";
  const char* argv[] = {"sh", "-c", script.c_str(), "sh", cc_.c_str(), tmp.c_str(), base.c_str(), entry.c_str(), nullptr};
  pid_t pid = 0;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);  // no inherited pipes held by the link job
  int rc = posix_spawn(&pid, "/bin/sh", &fa, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc == 0) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  } else {
    unlink((tmp + ".o").c_str());
    unlink((tmp + ".table").c_str());
  }
}

}  // namespace tdl::codegen
