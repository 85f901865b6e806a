#pragma once

#include <atomic>
#include <cstdint>

#include "sluice/detail/promise.hpp"

namespace sluice::detail {

/// A scope's bookkeeping: how many children are pending and who is joining.
///
/// state_ = 2 * pending | kJoining. A joiner stores itself in joiner_, then
/// sets kJoining; if pending was already 0 it takes the bit back and does not
/// suspend. The child that brings pending to 0 while kJoining is set takes
/// the bit (CAS kJoining -> 0) and resumes the joiner. Exactly one of them
/// wins the CAS, so the joiner is resumed once; a spawn racing with that
/// (pending 0 -> 1) makes the CAS fail and defers the wake to that child.
class ScopeState {
 public:
  explicit ScopeState(Pool* pool) noexcept : pool_(pool) {}

  [[nodiscard]] Pool* pool() const noexcept { return pool_; }

  /// Counts a new child. Thread safety: any thread.
  void add_child() noexcept {
    // relaxed: the child's start is published by the scheduler's queue.
    state_.fetch_add(kOne, std::memory_order_relaxed);
  }

  /// Counts a finished child; returns the joiner to resume, if this was the
  /// last child and someone is joining.
  PromiseBase* finish_child() noexcept {
    // acq_rel: the child's results happen-before the joiner's resumption.
    const auto prev = state_.fetch_sub(kOne, std::memory_order_acq_rel);
    if (prev != (kOne | kJoining)) {
      return nullptr;
    }
    return take_joiner();
  }

  /// Registers `joiner`; false if no child is pending (do not suspend).
  bool set_joiner(PromiseBase* joiner) noexcept {
    joiner_ = joiner;
    // acq_rel: publishes joiner_ to the last child; acquires its results.
    const auto prev = state_.fetch_or(kJoining, std::memory_order_acq_rel);
    if (prev / kOne != 0) {
      return true;
    }
    // Nothing pending: withdraw, unless a child spawned and finished in
    // between and already took the bit (then it resumes us).
    return take_joiner() == nullptr;
  }

  [[nodiscard]] std::uint64_t pending() const noexcept {
    return state_.load(std::memory_order_acquire) / kOne;
  }

 private:
  static constexpr std::uint64_t kJoining = 1;
  static constexpr std::uint64_t kOne = 2;

  PromiseBase* take_joiner() noexcept {
    auto expected = kJoining;
    if (state_.compare_exchange_strong(expected, 0, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      return joiner_;
    }
    return nullptr;
  }

  Pool* pool_;
  // Written by spawners (add), children (finish) and the joiner; see above.
  std::atomic<std::uint64_t> state_{0};
  PromiseBase* joiner_ = nullptr;  // written by the joiner before it sets kJoining
};

}  // namespace sluice::detail
