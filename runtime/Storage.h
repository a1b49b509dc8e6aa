// Refcounted, 64-byte aligned, contiguous buffers (intrusive count, so compiled code can
// hold a plain pointer and call retain/release).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace tdl::rt {

inline constexpr size_t kStorageAlignment = 64;

struct Storage {
  std::atomic<int64_t> refs{1};
  size_t nbytes = 0;
  void* data = nullptr;
};

// Allocates `nbytes` (uninitialised). Throws
// Error("cannot allocate N bytes for a tensor of shape S") when nbytes exceeds the
// physical memory or the allocation fails; `shape_text` is S.
Storage* storage_alloc(size_t nbytes, const std::string& shape_text);
void storage_retain(Storage* s);
void storage_release(Storage* s);

// Physical memory in bytes (sysconf); the ceiling of any single allocation.
size_t physical_memory_bytes();

}  // namespace tdl::rt
