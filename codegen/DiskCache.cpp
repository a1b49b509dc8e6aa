#include "codegen/DiskCache.h"
#include "codegen/SharedCode.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <spawn.h>
#include <sys/mman.h>
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

#include "codegen/Sha256.h"
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

// Makes the missing directories of `path` (0700) and opens the last one: a directory of this
// user's that nobody else can write (its shared objects are loaded and run), checked on the
// descriptor itself. -1 when there is none.
int openCacheDir(const std::string& path) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  if (!path.empty() && path[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) return -1;
  }
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & S_IRWXU) != S_IRWXU ||
      (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// The largest file the cache reads back (a shared object or a table); anything larger is not
// an entry tdl wrote.
constexpr off_t kMaxEntryFile = off_t{256} << 20;

// Whether `st` is a file the cache may trust: a regular file of this user's that neither the
// group nor others can write, of a sane size.
bool trusted(const struct stat& st) {
  return S_ISREG(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0 &&
         st.st_size >= 0 && st.st_size <= kMaxEntryFile;
}

// Opens `name` in the directory for reading if it is a trusted file (never following a
// link, never blocking on a FIFO or device) and reads it whole. The descriptor is returned
// open (the caller closes it), or -1.
int readTrusted(int dirfd, const std::string& name, std::string& out) {
  struct stat st {};
  if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !trusted(st)) return -1;
  int fd = openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st2 {};
  if (fstat(fd, &st2) != 0 || !trusted(st2) || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev) {
    close(fd);
    return -1;
  }
  out.assign(static_cast<size_t>(st2.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got != out.size()) {  // changed under us: not the file that was checked
    close(fd);
    return -1;
  }
  return fd;
}

// Creates `name` in the directory (it must not exist) with mode 0600 whatever the umask, and
// writes `data` to it.
bool writeNew(int dirfd, const std::string& name, const std::string& data) {
  int fd = openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = fchmod(fd, 0600) == 0 && writeAllFd(fd, data);
  if (close(fd) != 0) ok = false;
  if (!ok) unlinkat(dirfd, name.c_str(), 0);
  return ok;
}

// The symbol every cached shared object defines for its graph fn (an alias of the JIT's
// per-process name, so the table needs no name and writers racing on a key agree).
constexpr const char* kEntry = "tdl_cached_entry";

// An entry's table file: this header, the SHA-256 of the shared object (written by the link
// job, which computes it with `sha256sum` once the object exists), the SHA-256 of the table
// text, then the table text (serializeTable).
constexpr const char* kEntryMagic = "tdl-cache-entry 2\n";

// The table text of a table file whose digests are well formed and whose text matches its
// digest; `soDigest` receives the shared object's recorded digest.
bool parseEntryTable(const std::string& file, std::string& soDigest, std::string& text) {
  const std::string magic = kEntryMagic;
  auto hexLine = [&](size_t at, const char* label, std::string& out) {
    size_t l = std::strlen(label);
    if (file.compare(at, l, label) != 0 || at + l + 65 > file.size() || file[at + l + 64] != '\n') return false;
    out = file.substr(at + l, 64);
    return out.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  if (file.compare(0, magic.size(), magic) != 0) return false;
  size_t at = magic.size();
  std::string textDigest;
  if (!hexLine(at, "so-sha256 ", soDigest)) return false;
  at += 10 + 65;
  if (!hexLine(at, "table-sha256 ", textDigest)) return false;
  at += 13 + 65;
  text = file.substr(at);
  return sha256Hex(text) == textDigest;
}

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
// temporaries KEY.PID.N.{o,table,so,meta}.
void prune(int dirfd) {
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return;
  }
  std::vector<std::pair<time_t, std::string>> entries;
  time_t now = time(nullptr);
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 34 || name.find_first_not_of("0123456789abcdef") != 32) continue;
    struct stat st {};
    if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    bool entry = name.size() == 35 && endsWith(name, ".so");
    bool temp = name[32] == '.' && std::isdigit(static_cast<unsigned char>(name[33]));
    if (entry) entries.emplace_back(st.st_mtime, name.substr(0, 32));
    else if (temp && now - st.st_mtime > kStaleTempSeconds) unlinkat(dirfd, name.c_str(), 0);
  }
  closedir(d);
  if (entries.size() <= kMaxEntries) return;
  std::sort(entries.begin(), entries.end());
  for (size_t i = 0; i + kMaxEntries < entries.size(); ++i) {
    unlinkat(dirfd, (entries[i].second + ".so").c_str(), 0);
    unlinkat(dirfd, (entries[i].second + ".table").c_str(), 0);
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
  dirfd_ = openCacheDir(dir_);
  if (dirfd_ < 0) return;
  identity_ = "tdl-compile-cache 2\n" + id + "\n" + cpuIdentity();
  enabled_ = true;
}

std::string DiskCache::key(const std::string& irText) const {
  return hex(ir::fnv1a(irText, ir::fnv1a(identity_))) + hex(ir::fnv1a(identity_, ir::fnv1a(irText)));
}

std::unique_ptr<CompiledFn> DiskCache::load(const std::string& key, ir::Function& fn) {
  if (!enabled_) return nullptr;
  const std::string soName = key + ".so", tableName = key + ".table";
  struct stat st {};
  bool soThere = fstatat(dirfd_, soName.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  bool tableThere = fstatat(dirfd_, tableName.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (!soThere || !tableThere) return nullptr;  // not (or not yet completely) stored
  // Anything short of a trusted, intact entry is removed, so that it is compiled and stored
  // anew: never loaded.
  auto drop = [&]() -> std::unique_ptr<CompiledFn> {
    for (const std::string* name : {&soName, &tableName})
      if (unlinkat(dirfd_, name->c_str(), 0) != 0 && errno == EISDIR) unlinkat(dirfd_, name->c_str(), AT_REMOVEDIR);
    return nullptr;
  };
  std::string tableFile, so, soDigest, table;
  int tfd = readTrusted(dirfd_, tableName, tableFile);
  if (tfd < 0) return drop();
  close(tfd);
  if (!parseEntryTable(tableFile, soDigest, table)) return drop();
  int sofd = readTrusted(dirfd_, soName, so);
  if (sofd < 0) return drop();
  if (sha256Hex(so) != soDigest) {
    close(sofd);
    return drop();
  }
  void* h = dlopenBytes(so, "tdl-compile-cache");
  if (!h) {
    close(sofd);
    return drop();
  }
  void* sym = dlsym(h, kEntry);
  auto cf = std::make_unique<CompiledFn>();
  cf->fn = &fn;
  cf->syms = fn.syms;
  if (!sym || !restoreTable(*cf, table, fn)) {
    dlclose(h);
    close(sofd);
    return drop();
  }
  cf->entry = reinterpret_cast<int (*)(void*)>(sym);
  futimens(sofd, nullptr);  // recently used: pruned last
  close(sofd);
  return cf;  // the handle stays open: the code is used until the process ends
}

void DiskCache::store(const std::string& key, const std::string& object, const std::string& entry,
                      const std::string& table) {
  if (!enabled_ || object.empty()) return;
  static std::atomic<int> counter{0};
  static std::atomic<bool> pruned{false};
  if (!pruned.exchange(true)) prune(dirfd_);
  std::string tmp = key + "." + std::to_string(getpid()) + "." + std::to_string(counter++);
  if (!writeNew(dirfd_, tmp + ".o", object) ||
      !writeNew(dirfd_, tmp + ".table", "table-sha256 " + sha256Hex(table) + "\n" + table)) {
    unlinkat(dirfd_, (tmp + ".o").c_str(), 0);
    unlinkat(dirfd_, (tmp + ".table").c_str(), 0);
    return;
  }
  // In the cache directory itself (the child's working directory is the descriptor checked
  // at start, so a renamed or replaced path is never written), with a umask that keeps every
  // file private: link, record the object's digest in the table file, then rename the table
  // and the object into place (each rename atomic; a reader needs both, and checks both
  // digests). Detached: this process neither waits for it nor leaves a zombie.
  std::string script =
      "umask 077; ( \"$1\" -shared -o \"$2.so\" \"$2.o\" -Wl,--defsym=" + std::string(kEntry) +
      "=\"$4\" -lm && h=$(sha256sum < \"$2.so\") && "
      "{ printf 'tdl-cache-entry 2\\nso-sha256 %.64s\\n' \"$h\" && cat \"$2.table\"; } > \"$2.meta\" && "
      "mv -fT \"$2.meta\" \"$3.table\" && mv -fT \"$2.so\" \"$3.so\"; "
      "rm -f \"$2.o\" \"$2.table\" \"$2.so\" \"$2.meta\" ) </dev/null >/dev/null 2>&1 &";
  const char* argv[] = {"sh", "-c", script.c_str(), "sh", cc_.c_str(), tmp.c_str(), key.c_str(), entry.c_str(), nullptr};
  pid_t pid = 0;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addfchdir_np(&fa, dirfd_);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);  // no inherited pipes held by the link job
  int rc = posix_spawn(&pid, "/bin/sh", &fa, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc == 0) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  } else {
    unlinkat(dirfd_, (tmp + ".o").c_str(), 0);
    unlinkat(dirfd_, (tmp + ".table").c_str(), 0);
  }
}

}  // namespace tdl::codegen
