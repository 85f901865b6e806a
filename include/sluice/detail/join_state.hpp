#pragma once

#include <atomic>
#include <cstdint>
#include <new>
#include <optional>

#include "sluice/detail/frame_allocator.hpp"
#include "sluice/detail/promise.hpp"

namespace sluice::detail {

class ScopeState;

/// What a spawned task and its JoinHandle share: the outcome, the waiter,
/// and a reference count (the handle + the running task).
///
/// waiter_ protocol: 0 while running with no waiter; kDone once the result
/// is stored; otherwise the PromiseBase* of the one coroutine awaiting it.
/// The task publishes the result, then exchanges in kDone (acq_rel); the
/// waiter CASes 0 -> itself (acq_rel) and, if it finds kDone, reads the
/// result without suspending.
class JoinStateBase : public TaskContext {
 public:
  static constexpr std::uintptr_t kDone = 1;

  JoinStateBase(Pool* runs_on, ScopeState* scope, std::uint32_t refs) noexcept
      : TaskContext{runs_on}, scope_(scope), detached_(refs == 1), refs_(refs) {}

  [[nodiscard]] bool done() const noexcept {
    return waiter_.load(std::memory_order_acquire) == kDone;
  }

  /// Registers `waiter`; false if the task has already finished.
  bool set_waiter(PromiseBase* waiter) noexcept {
    std::uintptr_t expected = 0;
    return waiter_.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(waiter),
                                           std::memory_order_acq_rel, std::memory_order_acquire);
  }

  /// Marks the result published; returns the waiter to resume, if any.
  PromiseBase* complete() noexcept {
    const auto prev = waiter_.exchange(kDone, std::memory_order_acq_rel);
    return prev == 0 ? nullptr : reinterpret_cast<PromiseBase*>(prev);
  }

  [[nodiscard]] ScopeState* scope() const noexcept { return scope_; }
  /// Spawned without a handle.
  [[nodiscard]] bool detached() const noexcept { return detached_; }

 protected:
  ~JoinStateBase() = default;

  // Drops one reference; true when it was the last.
  bool release_ref() noexcept { return refs_.fetch_sub(1, std::memory_order_acq_rel) == 1; }

 private:
  ScopeState* scope_;
  bool detached_;
  // Written by the task (complete) and the waiter (set_waiter).
  std::atomic<std::uintptr_t> waiter_{0};
  // Written by the handle's destructor and the finishing task.
  std::atomic<std::uint32_t> refs_;
};

template <class T>
class JoinState final : public JoinStateBase {
 public:
  using JoinStateBase::JoinStateBase;

  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }

  void release() noexcept {
    if (release_ref()) {
      delete this;
    }
  }

  std::optional<Result<T>> result;  // set by the task before complete()
};

}  // namespace sluice::detail
