// libFuzzer target: the .tdlm model loader (model/Model.h) on arbitrary bytes, checking
// everything a loader checks before it links code (the code itself is not linked or run).
// The header's SHA-256 is recomputed over each input first, so that mutations reach the
// manifest, weights and IR checks behind it instead of all failing the checksum. A loader
// may only answer with rt::Error: any crash, sanitizer report or other exception is a
// finding. Seeds: tests/fuzz/corpus-model (exported models).
#include <cstdint>
#include <string>

#include "model/Model.h"
#include "runtime/Error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  tdl::model::Model::sealDigest(bytes);
  try {
    (void)tdl::model::Model::fromBytes(std::move(bytes), "fuzz.tdlm", tdl::model::Model::Options{false});
  } catch (const tdl::rt::Error&) {
    // A clean error: what a malformed file must give.
  }
  return 0;
}
