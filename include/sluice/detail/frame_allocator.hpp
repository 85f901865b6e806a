#pragma once

#include <cstddef>

namespace sluice::detail {

/// Memory for coroutine frames and other short-lived scheduler objects.
///
/// Small blocks (up to kMaxCachedFrame bytes) come from a per-thread free
/// list per 16-byte size class; a thread that frees more than it allocates
/// hands batches to a shared depot, where threads that allocate more than
/// they free pick them up. A steady stream of spawns therefore calls
/// `malloc` only while the working set grows. Sanitizer builds bypass the
/// cache so that use-after-free stays detectable.
///
/// Thread safety: both functions may be called from any thread; a block may
/// be freed on a thread other than the one that allocated it.
void* frame_allocate(std::size_t size);
void frame_deallocate(void* block, std::size_t size) noexcept;

inline constexpr std::size_t kMaxCachedFrame = 1024;

/// Allocator adaptor over the frame cache, for Asio handlers and the like.
template <class T>
struct FrameAllocator {
  using value_type = T;
  FrameAllocator() noexcept = default;
  template <class U>
  FrameAllocator(const FrameAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  T* allocate(std::size_t n) { return static_cast<T*>(frame_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { frame_deallocate(p, n * sizeof(T)); }
  friend bool operator==(FrameAllocator, FrameAllocator) noexcept { return true; }
};

}  // namespace sluice::detail
