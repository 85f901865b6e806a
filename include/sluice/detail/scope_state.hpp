#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "sluice/detail/admission.hpp"
#include "sluice/detail/promise.hpp"
#include "sluice/detail/runtime_core.hpp"

namespace sluice::detail {

class ScopeState;

/// A producer suspended in `co_await scope.spawn(t)` until every admission
/// level has a slot for it. Lives in the producer's frame.
struct SpawnWaiter : AdmissionWaiter {
  ScopeState* scope = nullptr;
  PromiseBase* producer = nullptr;
  std::size_t level = 0;  // index of the level being waited on
};

/// A scope's bookkeeping: admission, pending children, joiner, stop.
///
/// Admission levels, innermost first: this scope's max_pending, each bounded
/// ancestor's, the runtime's. A spawn takes a slot at every level or at none;
/// a finished child gives them back.
///
/// state_ = pending * kOne | finishing * kFinishing | kJoining.
/// A joiner stores itself in joiner_, then sets kJoining; if pending was
/// already 0 it takes the bit back and does not suspend. The child that
/// brings pending to 0 while kJoining is set takes the bit (a CAS that only
/// succeeds while pending is 0) and resumes the joiner. Exactly one of them
/// clears the bit, so the joiner is resumed once; a spawn racing with that
/// (pending 0 -> 1) makes the CAS fail and defers the wake to that child.
///
/// In a bounded scope a finishing child leaves `pending` before it gives its
/// admission slots back (so pending never exceeds max_pending, even
/// briefly), and is counted in `finishing` meanwhile: the scope is not
/// destroyed until finishing is 0 (wait_idle).
class ScopeState {
 public:
  ScopeState(RuntimeCore& core, ScopeState* parent, std::optional<std::size_t> max_pending,
             std::optional<std::chrono::nanoseconds> task_timeout);
  ScopeState(const ScopeState&) = delete;
  ScopeState& operator=(const ScopeState&) = delete;
  ~ScopeState();

  [[nodiscard]] Pool* pool() const noexcept { return core_->pool; }
  [[nodiscard]] RuntimeCore& core() const noexcept { return *core_; }
  [[nodiscard]] std::optional<std::chrono::nanoseconds> task_timeout() const noexcept {
    return task_timeout_;
  }
  [[nodiscard]] std::optional<std::size_t> max_pending() const noexcept;
  /// Producers queued for a slot of this scope's own bound.
  [[nodiscard]] std::size_t waiting() const noexcept {
    return own_admission_ ? own_admission_->waiting() : 0;
  }

  /// Takes a slot at every level without waiting: errc{} on success,
  /// rejected when a level is full, shutting_down after stop or shutdown.
  errc try_admit() noexcept;

  /// Takes slots level by level, queueing `w` where one is full. True: the
  /// producer must suspend until w->on_ready; false: done (see w->error).
  bool admit_or_wait(SpawnWaiter& w) noexcept;

  /// Gives back one slot at every level (a child finished).
  void release_admission() noexcept;

  /// Counts a new child. Thread safety: any thread.
  void add_child() noexcept {
    // relaxed: the child's start is published by the scheduler's queue.
    state_.fetch_add(kOne, std::memory_order_relaxed);
  }

  /// Counts a finished child and gives back its admission slots; returns
  /// the joiner to resume, if this was the last child and someone joins.
  /// The scope is not touched after it returns.
  PromiseBase* finish_child() noexcept {
    if (levels_.empty()) {
      // acq_rel: the child's results happen-before the joiner's resumption.
      const auto prev = state_.fetch_sub(kOne, std::memory_order_acq_rel);
      return last_with_joiner(prev) ? take_joiner() : nullptr;
    }
    const auto prev = state_.fetch_sub(kOne - kFinishing, std::memory_order_acq_rel);
    PromiseBase* joiner = last_with_joiner(prev) ? take_joiner() : nullptr;
    release_admission();
    // release: the destructor's acquire in wait_idle sees us done with it.
    state_.fetch_sub(kFinishing, std::memory_order_release);
    return joiner;
  }

  /// Waits (briefly: one release_admission) for children still finishing.
  void wait_idle() const noexcept;

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
  [[nodiscard]] bool idle() const noexcept {
    return (state_.load(std::memory_order_acquire) & ~kJoining) == 0;
  }

  /// Cancels every child (and nested scope) and refuses new spawns.
  void request_stop() noexcept;
  /// Refuses new spawns (shutting_down) and wakes waiting producers.
  void close() noexcept;
  [[nodiscard]] bool stop_requested() const noexcept { return stop_.stop_requested(); }
  [[nodiscard]] bool closed() const noexcept { return closing_.stop_requested(); }
  [[nodiscard]] std::stop_token stop_token() const noexcept { return stop_.get_token(); }
  [[nodiscard]] std::stop_token closing_token() const noexcept { return closing_.get_token(); }

 private:
  static constexpr std::uint64_t kJoining = 1;
  static constexpr std::uint64_t kFinishing = 2;  // 16 bits: at most one per worker
  static constexpr std::uint64_t kOne = std::uint64_t{1} << 17;

  static bool last_with_joiner(std::uint64_t prev) noexcept {
    return prev / kOne == 1 && (prev & kJoining) != 0;
  }

  // Clears kJoining if pending is 0; returns the joiner if this call did.
  PromiseBase* take_joiner() noexcept {
    auto s = state_.load(std::memory_order_acquire);
    while (s / kOne == 0 && (s & kJoining) != 0) {
      if (state_.compare_exchange_weak(s, s & ~kJoining, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return joiner_;
      }
    }
    return nullptr;
  }

  static void on_level_ready(AdmissionWaiter* w) noexcept;
  void release_levels(std::size_t count) noexcept;

  struct StopLink {
    ScopeState* scope;
    void operator()() const noexcept { scope->request_stop(); }
  };
  struct CloseLink {
    ScopeState* scope;
    void operator()() const noexcept { scope->close(); }
  };

  RuntimeCore* core_;
  std::optional<std::chrono::nanoseconds> task_timeout_;
  std::optional<Admission> own_admission_;
  std::vector<Admission*> levels_;  // immutable after construction
  std::stop_source stop_;
  std::stop_source closing_;
  // Written by spawners (add), children (finish) and the joiner; see above.
  std::atomic<std::uint64_t> state_{0};
  PromiseBase* joiner_ = nullptr;  // written by the joiner before it sets kJoining
  std::optional<std::stop_callback<StopLink>> stop_link_;    // parent's (or runtime's) stop
  std::optional<std::stop_callback<CloseLink>> close_link_;  // parent's (or runtime's) closing
};

}  // namespace sluice::detail
