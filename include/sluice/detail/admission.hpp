#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>

#include "sluice/error.hpp"

namespace sluice::detail {

/// A producer waiting for a slot. Lives in the waiting coroutine's frame.
struct AdmissionWaiter {
  /// Called once, on the thread that granted the slot or closed the gate.
  void (*on_ready)(AdmissionWaiter*) noexcept = nullptr;
  AdmissionWaiter* next = nullptr;  // FIFO link, guarded by the Admission's mutex
  // Back link, kept by Admission (for withdraw_one); ScopeState's own FIFO
  // links through `next` alone.
  AdmissionWaiter* prev = nullptr;
  errc error{};                 // set instead of a slot when the gate closed
  const void* owner = nullptr;  // who queued it (a scope), for withdraw()
  /// Whether the owner stopped admitting: checked under the level's mutex
  /// before queueing, so the owner's close() cannot miss the waiter.
  bool (*owner_closed)(const AdmissionWaiter*) noexcept = nullptr;
};

/// Unlinks from the FIFO [head, tail] every waiter queued by `owner`, and
/// returns them as a list (through `next`); adds their number to `count`.
/// The level's mutex held.
AdmissionWaiter* unlink_owned(AdmissionWaiter*& head, AdmissionWaiter*& tail, const void* owner,
                              std::size_t& count) noexcept;

/// Wakes every waiter of `list` (through `next`) with `error`, no slot given.
/// The level's mutex not held.
void wake_refused(AdmissionWaiter* list, errc error) noexcept;

/// A counting gate with a fixed number of slots: the max_pending bound.
///
/// Fast path: a CAS on used_ while no one waits. When full, producers queue
/// in FIFO order; release() hands the freed slot straight to the oldest
/// waiter, so used_ never exceeds limit_, not even briefly, and a newcomer
/// cannot overtake a waiter (try_acquire fails while anyone waits).
///
/// No lost wake-up: a producer publishes waiting_ and then retries the CAS;
/// a releaser decrements used_ and then reads waiting_. All four are seq_cst,
/// so either the producer gets the slot or the releaser sees the waiter.
///
/// Thread safety: every member may be called from any thread.
class Admission {
 public:
  explicit Admission(std::size_t limit) noexcept : limit_(limit) {}
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  /// Takes a slot if one is free and no one waits.
  bool try_acquire() noexcept {
    if (waiting_.load(std::memory_order_seq_cst) != 0 || closed()) {
      return false;
    }
    return cas_acquire();
  }

  /// Takes a slot, or queues `w` (true: the caller must wait for on_ready).
  /// Fails with w->error set (returns false, no slot) when closed.
  bool acquire_or_wait(AdmissionWaiter* w) noexcept;

  /// Returns a slot, handing it to the oldest waiter if any.
  void release() noexcept;

  /// Refuses every later acquire and wakes all waiters with `error`.
  void close(errc error) noexcept;

  /// Wakes the waiters queued by `owner` with `error` (their producer's
  /// scope closed), without a slot.
  void withdraw(const void* owner, errc error) noexcept;

  /// Wakes `w` with `error`, without a slot, if it still waits (O(1)); false
  /// if it was granted a slot or woken already.
  bool withdraw_one(AdmissionWaiter* w, errc error) noexcept;

  [[nodiscard]] bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  [[nodiscard]] std::size_t in_use() const noexcept {
    return used_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
  [[nodiscard]] std::size_t waiting() const noexcept {
    return waiting_.load(std::memory_order_relaxed);
  }

 private:
  AdmissionWaiter* pop_head() noexcept;                                 // mutex_ held
  void unlink(AdmissionWaiter* w) noexcept;                             // mutex_ held; w queued
  [[nodiscard]] bool queued(const AdmissionWaiter* w) const noexcept {  // mutex_ held
    return w->prev != nullptr || head_ == w;
  }

  bool cas_acquire() noexcept {
    auto used = used_.load(std::memory_order_seq_cst);
    while (used < limit_) {
      if (used_.compare_exchange_weak(used, used + 1, std::memory_order_seq_cst)) {
        return true;
      }
    }
    return false;
  }

  const std::size_t limit_;
  // Written by acquirers (CAS) and releasers; read by everyone.
  alignas(64) std::atomic<std::size_t> used_{0};
  // Written under mutex_; read by the fast path to keep FIFO order.
  std::atomic<std::size_t> waiting_{0};
  std::atomic<bool> closed_{false};  // written once by close()
  errc close_error_{};               // guarded by mutex_
  std::mutex mutex_;
  AdmissionWaiter* head_ = nullptr;  // guarded by mutex_
  AdmissionWaiter* tail_ = nullptr;  // guarded by mutex_
};

}  // namespace sluice::detail
