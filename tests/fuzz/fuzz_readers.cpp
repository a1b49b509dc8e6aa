// libFuzzer target: the file readers of the runtime (.npy, safetensors, CSV,
// .csv.gz) on arbitrary bytes. The first byte picks the reader; the rest is
// the file. A reader may only answer with rt::Error — any crash, sanitizer
// report or other exception is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "runtime/Error.h"
#include "runtime/Io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* const kExt[] = {".npy", ".safetensors", ".csv", ".csv.gz"};
  int which = data[0] % 4;
  std::string path = "/tmp/tdl-fuzz-" + std::to_string(getpid()) + kExt[which];
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data + 1, 1, size - 1, f);
  std::fclose(f);
  try {
    switch (which) {
      case 0: (void)tdl::rt::load_npy(path); break;
      case 1: (void)tdl::rt::load_safetensors(path); break;
      default: (void)tdl::rt::load_csv(path, tdl::rt::DType::F32, (data[0] & 4) != 0); break;
    }
  } catch (const tdl::rt::Error&) {
    // A clean error: what a malformed file must give.
  }
  std::remove(path.c_str());
  return 0;
}
