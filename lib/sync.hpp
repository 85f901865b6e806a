// The one place sluice's scheduler takes its atomics from.
//
// A model-checking or stress build can swap `Atomic` for an instrumented type
// and shrink the rings (SLUICE_QUEUE_CAPACITY) so that overflow and
// wrap-around paths run every few operations instead of every few thousand.
#pragma once

#include <atomic>
#include <cstddef>
#include <thread>

#ifndef SLUICE_QUEUE_CAPACITY
#define SLUICE_QUEUE_CAPACITY 256
#endif

namespace sluice::detail::sync {

template <class T>
using Atomic = std::atomic<T>;

/// Two lines, not one: x86's adjacent-line prefetcher pulls pairs of 64-byte
/// lines, so fields written by different threads stay 128 bytes apart.
inline constexpr std::size_t kFalseSharingRange = 128;

inline constexpr std::size_t kQueueCapacity = SLUICE_QUEUE_CAPACITY;

/// A short pause inside a spin loop.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#else
  std::this_thread::yield();
#endif
}

}  // namespace sluice::detail::sync
