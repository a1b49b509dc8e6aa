// Refcounted, 64-byte aligned, contiguous buffers (intrusive count, so compiled code can
// hold a plain pointer and call retain/release).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tdl::rt {

inline constexpr size_t kStorageAlignment = 64;

struct Storage {
  std::atomic<int64_t> refs{1};
  size_t nbytes = 0;
  void* data = nullptr;
  // A copy on a device (`tdl run --device emu|cuda`; the device layer's record, opaque
  // here), or null. `host_stale`: only the device copy is current (`data` may be null);
  // Tensor::raw() brings it to the host first (storage_sync_host). A host write
  // (Tensor::mutable_raw) drops the device copy.
  void* device = nullptr;
  std::atomic<bool> host_stale{false};
};

// What the device layer (codegen/Device.h) does for storages that have a device copy:
// copy it into s->data (allocated by the caller), and free it.
struct DeviceHooks {
  void (*download)(Storage* s) = nullptr;
  void (*release)(Storage* s) = nullptr;
};
void set_device_hooks(const DeviceHooks* hooks);
// Makes s->data current (allocating it when null): downloads the device copy when
// s->host_stale. Thread-safe; throws Error when the download fails.
void storage_sync_host(Storage* s);
// Drops the device copy of s (the host copy becomes the only one; synced first).
void storage_drop_device(Storage* s);
// A storage of `nbytes` that lives only on the device so far: data null, host_stale set;
// the caller attaches `device`.
Storage* storage_alloc_device_only(size_t nbytes);

// Allocates `nbytes` (uninitialised). Throws
// Error("cannot allocate N bytes for a tensor of shape S") when nbytes exceeds the
// physical memory or the allocation fails; S is `shape`, formatted only then.
Storage* storage_alloc(size_t nbytes, const std::vector<int64_t>& shape);
void storage_retain(Storage* s);
void storage_release(Storage* s);

// Physical memory in bytes (sysconf); the ceiling of any single allocation.
size_t physical_memory_bytes();

}  // namespace tdl::rt
