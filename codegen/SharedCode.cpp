#include "codegen/SharedCode.h"

#include <dlfcn.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <utility>
#include <vector>

#if defined(__aarch64__)
#include <asm/hwcap.h>
#endif

namespace tdl::codegen {

namespace {

// The architecture part of a triple, with LLVM's aliases folded ("arm64" is "aarch64").
std::string archOf(const std::string& triple) {
  std::string a = triple.substr(0, triple.find('-'));
  if (a == "arm64") a = "aarch64";
  if (a == "amd64") a = "x86_64";
  return a;
}

const char* thisArch() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#else
  return "unknown";
#endif
}

#if defined(__aarch64__)
// LLVM's AArch64 feature names against the kernel's hardware capabilities (linux
// arch/arm64/include/uapi/asm/hwcap.h). Features with no capability bit (architecture
// versions, tuning flags) are not checked.
struct Cap {
  const char* feature;
  int word;  // 1: AT_HWCAP, 2: AT_HWCAP2
  unsigned long bit;
};
const Cap kCaps[] = {
    {"fp-armv8", 1, HWCAP_FP},     {"neon", 1, HWCAP_ASIMD},       {"aes", 1, HWCAP_AES},
    {"sha2", 1, HWCAP_SHA2},       {"crc", 1, HWCAP_CRC32},        {"lse", 1, HWCAP_ATOMICS},
    {"fullfp16", 1, HWCAP_FPHP},   {"rdm", 1, HWCAP_ASIMDRDM},     {"jsconv", 1, HWCAP_JSCVT},
    {"complxnum", 1, HWCAP_FCMA},  {"rcpc", 1, HWCAP_LRCPC},       {"sha3", 1, HWCAP_SHA3},
    {"sm4", 1, HWCAP_SM4},         {"dotprod", 1, HWCAP_ASIMDDP},  {"sve", 1, HWCAP_SVE},
    {"fp16fml", 1, HWCAP_ASIMDFHM}, {"sve2", 2, HWCAP2_SVE2},      {"i8mm", 2, HWCAP2_I8MM},
    {"bf16", 2, HWCAP2_BF16},
};
#endif

}  // namespace

std::vector<std::string> enabledFeatures(const std::string& features) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < features.size()) {
    size_t comma = features.find(',', start);
    std::string f = features.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!f.empty() && f[0] == '+') out.push_back(f.substr(1));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

bool writeAllFd(int fd, const std::string& data) {
  size_t put = 0;
  while (put < data.size()) {
    ssize_t n = write(fd, data.data() + put, data.size() - put);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    put += static_cast<size_t>(n);
  }
  return true;
}

void* dlopenBytes(const std::string& bytes, const char* name, std::string* why) {
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) {
    if (why) *why = "memfd_create failed";
    return nullptr;
  }
  if (!writeAllFd(fd, bytes)) {
    if (why) *why = "cannot write a memfd";
    close(fd);
    return nullptr;
  }
  void* h = dlopen(("/proc/self/fd/" + std::to_string(fd)).c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    if (why) {
      const char* e = dlerror();
      *why = e ? e : "dlopen failed";
    }
    close(fd);
  }
  return h;
}

bool cpuRunsCode(const std::string& triple, const std::string& features, std::string& why) {
  std::string arch = archOf(triple);
  if (arch != thisArch()) {
    why = "it was compiled for " + triple + ", this machine is " + thisArch();
    return false;
  }
  std::string missing;
#if defined(__aarch64__)
  unsigned long hw[3] = {0, getauxval(AT_HWCAP), getauxval(AT_HWCAP2)};
  for (const std::string& f : enabledFeatures(features))
    for (const Cap& c : kCaps)
      if (f == c.feature && !(hw[c.word] & c.bit)) missing += (missing.empty() ? "" : ", ") + f;
#else
  (void)features;
#endif
  if (!missing.empty()) {
    why = "this CPU lacks " + missing;
    return false;
  }
  return true;
}

std::unique_ptr<CompiledFn> loadSharedObject(std::unique_ptr<ir::Module> module, ir::Function& fn,
                                             const std::string& so, const std::string& entry,
                                             const std::string& table) {
  // The object calls tdl_op & co. by name. A library holding the ABI (libtdl_model.so)
  // loaded with RTLD_LOCAL (as Python's ctypes does) is made global first.
  if (!dlsym(RTLD_DEFAULT, "tdl_op")) {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&cpuRunsCode), &info) && info.dli_fname)
      dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
    if (!dlsym(RTLD_DEFAULT, "tdl_op"))
      throw std::runtime_error("this program does not export the tdl runtime ABI its code calls");
  }
  auto cf = std::make_unique<CompiledFn>();
  cf->fn = &fn;
  cf->syms = fn.syms;
  if (!restoreTable(*cf, table, fn)) throw std::runtime_error("its op table does not fit its IR");
  std::string why;
  void* h = dlopenBytes(so, "tdl-model-code", &why);
  if (!h) throw std::runtime_error("its shared object does not load: " + why);
  void* sym = dlsym(h, entry.c_str());
  if (!sym) {
    dlclose(h);
    throw std::runtime_error("its shared object has no entry point '" + entry + "'");
  }
  cf->entry = reinterpret_cast<int (*)(void*)>(sym);
  cf->module = std::move(module);
  return cf;  // the handle stays open: the code is used until the process ends
}

}  // namespace tdl::codegen
