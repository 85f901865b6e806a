#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "sluice/detail/admission.hpp"
#include "sluice/detail/promise.hpp"
#include "sluice/detail/runtime_core.hpp"
#include "sluice/detail/scheduler.hpp"
#include "sluice/detail/stop_list.hpp"

namespace sluice::detail {

class ScopeState;

/// A producer suspended in `co_await scope.spawn(t)` until every admission
/// level has a slot for it. Lives in the producer's frame.
struct SpawnWaiter : AdmissionWaiter {
  ScopeState* scope = nullptr;  // the scope it spawns into
  PromiseBase* producer = nullptr;
  std::size_t level = 0;  // being waited on: 0 its scope's own, i > 0 outer level i - 1
};

/// A scope's bookkeeping: admission, pending children, joiner, stop.
///
/// Admission levels, innermost first: this scope's own max_pending, each
/// bounded ancestor's, the runtime's (Config::max_pending). A spawn takes a
/// slot at every level or at none, before its task starts; a finished child
/// (or a slot given back unused) returns them, outer levels first.
///
/// The scope's own level lives in the same atomic word as its pending count:
///
///   state_ = pending * kOne | held * kHeldOne | kDraining | kWaiters | kJoining
///
/// `pending` counts the slots of this scope's own children (admitted, and
/// not finished; in a scope that counts trees, the trees in flight: see
/// TreeLinks in join_state.hpp), `held` every slot of its bound (its
/// children's and those of nested scopes' children), so
/// pending <= held <= max_pending. A child
/// takes (kOne + kHeldOne) in one CAS and gives both back in one, so pending
/// never exceeds the bound, not even briefly. An unbounded scope counts
/// pending only (fetch_add / fetch_sub). In both, pending also includes
/// units that workers took ahead for their next spawns (credits: see
/// WorkerSlot), which a joiner, a queueing producer and the destructor give
/// back first.
///
/// Waiting producers queue FIFO under mutex_; kWaiters is set while the
/// queue is not empty (under mutex_). Taking fails while kWaiters is set (no
/// overtaking), and giving back with kWaiters set hands the slot to the
/// oldest waiter under mutex_ instead (the counts change by the difference
/// of the two units in one RMW). No lost wake-up: a queueing producer sets
/// kWaiters and then retries; every change is an RMW of the one word, so a
/// give-back either comes before the flag (the retry sees the free slot) or
/// sees it (and hands over).
///
/// Joining: a joiner stores itself in joiner_, gives back the credits, then
/// sets kJoining (in an unbounded scope it sets kJoining first, holding a
/// count of its own while it gives the credits back; in a bounded one it
/// sets kDraining first, which no child reads); if pending was then 0 it
/// takes the bits back and does not suspend. The child that
/// brings pending to 0 while kJoining is set takes the bit (a CAS that only
/// succeeds while pending is 0) and resumes the joiner. Exactly one of them
/// clears the bit, so the joiner is resumed once; a spawn racing with that
/// (pending 0 -> 1) makes the CAS fail and defers the wake to that child.
///
/// Lifetime: the scope may be destroyed once the word is 0 (idle()), so a
/// give-back touches nothing of the scope after its RMW, except to take the
/// joiner (the joiner, suspended, keeps its owner from destroying it) and,
/// on a hand-over, the mutex (the waiter's slot keeps the word non-zero).
class ScopeState {
 public:
  /// The largest max_pending a scope can count (23 bits of the word).
  static constexpr std::size_t kMaxBound = (std::size_t{1} << 23) - 1;

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
    return waiting_.load(std::memory_order_relaxed);
  }

  /// Whether children spawned by this scope's own tasks are counted in
  /// their spawner's tree (JoinStateBase) rather than in pending: only with
  /// no admission level at all, where pending bounds nothing.
  [[nodiscard]] bool counts_trees() const noexcept { return !bounded_ && outer_.empty(); }

  /// Takes a slot at every level without waiting: errc{} on success (the
  /// caller then holds a slot: it starts a child with it or gives it back
  /// with finish_child()),
  /// rejected when a level is full, shutting_down after stop or shutdown.
  errc try_admit() noexcept;

  /// Takes slots level by level, queueing `w` where one is full. True: the
  /// producer must suspend until w->on_ready; false: done (see w->error).
  bool admit_or_wait(SpawnWaiter& w) noexcept;

  /// Gives back the slots of an admitted spawn that started nothing, or of a
  /// finished child. Returns the joiner to resume, if this left no child
  /// pending and someone joins. The scope is not touched after it returns.
  PromiseBase* finish_child() noexcept {
    for (const Outer& o : outer_) {  // first: this scope stays alive meanwhile
      o.release();
    }
    return give_back(own_unit_);
  }

  /// Waits for the word to clear: children giving back slots, nested
  /// scopes' children holding slots of this bound.
  void wait_idle() const noexcept;

  /// Registers `joiner`; false if no child is pending (do not suspend).
  bool set_joiner(PromiseBase* joiner) noexcept {
    joiner_ = joiner;
    if (!counts_trees()) {
      if (stashes_bounded()) {
        // Credits first, while kJoining is clear: no child can resume the
        // joiner (and let it destroy the scope) before the drain ends.
        // seq_cst: before the exchanges, against a worker stashing credits.
        state_.fetch_or(kDraining, std::memory_order_seq_cst);
        if (const std::uint64_t units = take_credits()) {
          (void)return_units(units);  // kJoining clear: never the joiner
        }
      }
      // acq_rel: publishes joiner_ to the last child; acquires its results.
      const auto prev = state_.fetch_or(kJoining, std::memory_order_acq_rel);
      if (pending_of(prev) != 0) {
        return true;  // the last child resumes us
      }
    } else {
      // Workers may keep credits (admit_root): they are given back after
      // kJoining is set, while a unit of our own keeps pending above 0, so
      // no child can take the joiner, and resume it, before the last RMW
      // here. After that RMW nothing of the scope or of the joiner's frame
      // is touched unless it emptied the word.
      state_.fetch_add(kOne, std::memory_order_relaxed);
      // seq_cst: before drain_credits, against a worker stashing credits;
      // acq_rel as above.
      state_.fetch_or(kJoining, std::memory_order_seq_cst);
      drain_credits();
      // acq_rel: as give_back.
      const auto prev = state_.fetch_sub(kOne, std::memory_order_acq_rel);
      if (!emptied(prev, kOne)) {
        return true;
      }
    }
    // Nothing pending: withdraw, unless a child spawned and finished in
    // between and already took the bit (then it resumes us).
    return take_joiner() == nullptr;
  }

  /// Gives back the credits workers keep (see WorkerSlot); for a scope
  /// about to be destroyed, whose word must reach 0.
  void give_back_credits() noexcept {
    if (counts_trees()) {
      drain_credits();
    } else if (stashes_bounded()) {
      if (const std::uint64_t units = take_credits()) {
        if (PromiseBase* joiner = return_units(units)) {
          joiner->schedule();
        }
      }
    }
  }

  /// The word's pending count: children, or trees in a scope that counts
  /// trees. 0 exactly when every child has finished.
  [[nodiscard]] std::uint64_t pending() const noexcept {
    return pending_of(state_.load(std::memory_order_acquire));
  }
  /// Tasks spawned and not finished (Scope::pending()): the word's count,
  /// plus, in a scope that counts trees, the tree tasks counted per worker
  /// by count_tree_task. A momentary sum of several counters, exact once
  /// quiescent (after a join).
  [[nodiscard]] std::uint64_t tasks_pending() const noexcept;
  /// In a scope that counts trees: +1 when a tree child is spawned, -1 when
  /// a task's body ends while the word still counts it (a tree child, or a
  /// root with children running), +1 when such a root's tree ends, just
  /// before the word lets it go. Adds on the calling worker's own line.
  /// Only while the scope's word is non-zero (the scope is alive).
  void count_tree_task(int delta) noexcept {
    WorkerSlot* slots = slots_.load(std::memory_order_acquire);  // pairs with the CAS
    if (slots == nullptr && (slots = make_slots()) == nullptr) {
      return;  // out of memory: pending() leaves tree tasks out
    }
    const WorkerId& me = tls_worker_id;
    if (me.pool == core_->pool) {
      // relaxed: a statistic with one writer (this worker); a joiner sees
      // it through the tree's release sequence on the word.
      auto& n = slots[me.index].n;
      n.store(n.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
    } else {
      slots[workers_].n.fetch_add(delta, std::memory_order_relaxed);
    }
  }
  [[nodiscard]] bool idle() const noexcept {
    return (state_.load(std::memory_order_acquire) & ~(kJoining | kDraining)) == 0;
  }

  /// Cancels every child (and nested scope) and refuses new spawns.
  void request_stop() noexcept;
  /// Refuses new spawns (shutting_down) and wakes waiting producers.
  void close() noexcept;
  [[nodiscard]] bool stop_requested() const noexcept { return stop_.stop_requested(); }
  [[nodiscard]] bool closed() const noexcept { return closing_.stop_requested(); }
  [[nodiscard]] std::stop_token stop_token() const noexcept { return stop_.get_token(); }
  [[nodiscard]] std::stop_token closing_token() const noexcept { return closing_.get_token(); }
  /// The waits (sleeps, Asio operations) of this scope's tasks that its stop
  /// cancels; fired by request_stop().
  StopList& stop_waits() noexcept { return stop_waits_; }

 private:
  static constexpr std::uint64_t kJoining = 1;
  static constexpr std::uint64_t kWaiters = 2;
  static constexpr std::uint64_t kDraining = 4;          // a joiner takes the credits
  static constexpr std::uint64_t kHeldOne = 8;           // 23 bits
  static constexpr std::uint64_t kOne = kHeldOne << 23;  // 38 bits
  static constexpr std::uint64_t kHeldMask = kOne - kHeldOne;

  static std::uint64_t pending_of(std::uint64_t s) noexcept { return s / kOne; }
  static std::uint64_t held_of(std::uint64_t s) noexcept { return (s & kHeldMask) / kHeldOne; }

  /// An admission level outside this scope: a bounded ancestor (its `held`)
  /// or the runtime's Admission.
  struct Outer {
    ScopeState* scope = nullptr;
    Admission* admission = nullptr;
    [[nodiscard]] bool try_take() const noexcept {
      if (scope != nullptr) {
        return !scope->closed() && (scope->try_take(kHeldOne) ||
                                    (scope->reclaim_credits() && scope->try_take(kHeldOne)));
      }
      return admission->try_acquire();
    }
    [[nodiscard]] bool closed() const noexcept {
      return scope != nullptr ? scope->closed() : admission->closed();
    }
    bool take_or_wait(SpawnWaiter& w) const noexcept {
      return scope != nullptr ? scope->take_or_wait(w, kHeldOne) : admission->acquire_or_wait(&w);
    }
    // Wakes the producers of `owner` queued here, without a slot.
    void withdraw(const void* owner) const noexcept {
      if (scope != nullptr) {
        scope->withdraw(owner);
      } else {
        admission->withdraw(owner, errc::shutting_down);
      }
    }
    void release() const noexcept {
      if (scope != nullptr) {
        // A nested child's slot: pending is not involved, so no joiner.
        (void)scope->give_back(kHeldOne);
      } else {
        admission->release();
      }
    }
  };

  // Takes `unit` if the bound allows and no producer waits.
  bool try_take(std::uint64_t unit) noexcept {
    if (!bounded_) {
      // relaxed: counting only; the child's start is published by the
      // scheduler's queue.
      state_.fetch_add(unit, std::memory_order_relaxed);
      return true;
    }
    auto s = state_.load(std::memory_order_relaxed);
    while ((s & kWaiters) == 0 && held_of(s) < limit_) {
      // relaxed: as above; the word's modification order alone keeps the
      // bound (every change is an RMW of it).
      if (state_.compare_exchange_weak(s, s + unit, std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

  // Returns `unit`, or hands it to the oldest waiter; returns the joiner to
  // resume if pending reached 0 while one joins.
  PromiseBase* give_back(std::uint64_t unit) noexcept {
    std::uint64_t prev = 0;
    if (!bounded_) {
      // acq_rel: the child's results happen-before the joiner's resumption.
      prev = state_.fetch_sub(unit, std::memory_order_acq_rel);
    } else {
      prev = state_.load(std::memory_order_relaxed);
      do {
        if ((prev & kWaiters) != 0) {
          return hand_over(unit);
        }
        // acq_rel: as above.
      } while (!state_.compare_exchange_weak(prev, prev - unit, std::memory_order_acq_rel,
                                             std::memory_order_relaxed));
    }
    return emptied(prev, unit) ? take_joiner() : nullptr;
  }

  // Whether taking `unit` from `prev` brought pending to 0 with a joiner.
  static bool emptied(std::uint64_t prev, std::uint64_t unit) noexcept {
    return unit >= kOne && pending_of(prev) == 1 && (prev & kJoining) != 0;
  }

  // The slow paths, under mutex_ (lib/scope_state.cpp).
  bool take_or_wait(SpawnWaiter& w, std::uint64_t unit) noexcept;
  void withdraw(const void* owner) noexcept;
  PromiseBase* hand_over(std::uint64_t unit) noexcept;
  // mutex_ held, a producer queued: pops the oldest and hands it `unit`;
  // sets `joiner` if that left no child pending while one joins.
  SpawnWaiter* grant_head_locked(std::uint64_t unit, PromiseBase*& joiner) noexcept;
  std::uint64_t unit_of(const SpawnWaiter& w) const noexcept {
    return w.scope == this && w.level == 0 ? own_unit_ : kHeldOne;
  }

  // One per worker, and one for other threads (last).
  struct alignas(64) WorkerSlot {
    // Tree tasks (count_tree_task). Written by its worker only (the last
    // slot: any thread, RMW); read by tasks_pending().
    std::atomic<std::int64_t> n{0};
    // Units of the word this worker took ahead. Raised by its worker only;
    // taken by it (CAS) and by drains (exchange).
    std::atomic<std::uint32_t> credits{0};
  };

  /// Credits: a worker that spawns into a busy scope (kBusy pending, or
  /// held) takes kCredits more units of the word at once and admits its
  /// next spawns from its own slot, so a producer meets the finishing
  /// children on the word once per kCredits spawns, not on every one.
  /// Stashed units count in the word (tasks_pending() leaves them out), so
  /// whoever needs them gives them back first:
  ///  - scopes that count trees (admit_root): a joiner sets kJoining, then
  ///    empties every slot (drain_credits);
  ///  - bounded scopes with no outer level (admit_bounded): credits are
  ///    taken only while the word would stay at most half full and no one
  ///    waits or joins, so most of the bound stays on the word; a producer
  ///    that queues sets kWaiters and takes every slot's credits for the
  ///    queue (take_or_wait), and a joiner sets kDraining and gives them
  ///    back before it sets kJoining (set_joiner);
  ///  - the destructor gives them back.
  /// A worker that stashes credits reads the word after storing them and
  /// gives them back itself if one of those bits is set (seq_cst on both
  /// sides: one of the two sees the other's write). A worker spends its own
  /// credits without reading the word, so a spawn may take one while a
  /// producer is queueing: the two are concurrent, and the queueing
  /// producer's drain gets every unit that spawn did not.
  static constexpr std::uint32_t kCredits = 63;
  static constexpr std::uint64_t kBusy = 8;
  /// Takes one of the worker's own stashed units, if it has any.
  static bool use_credit(WorkerSlot& slot) noexcept;
  void admit_root() noexcept;
  errc admit_bounded() noexcept;
  void stash_bounded(WorkerSlot* slots) noexcept;
  /// Stores kCredits units (already added to the word) in this worker's
  /// `slot`; returns those to give back if the word has one of `bits` by
  /// then (a drain that may have missed them).
  std::uint64_t stash(WorkerSlot& slot, std::uint64_t bits) noexcept;
  /// Empties every worker's credits into the word. With no unit of the
  /// caller's own in the word, it may bring pending to 0: only where no one
  /// joins (the scope is being destroyed).
  void drain_credits() noexcept;
  /// Empties every worker's slot, if one stashed since the last sweep (see
  /// stashed_); returns the units taken (still counted in the word: the
  /// caller gives them back or hands them on).
  std::uint64_t take_credits() noexcept;
  /// For a spawn about to be refused: gives back the credits workers hold
  /// into the word (unless producers wait: they get them). True if any.
  bool reclaim_credits() noexcept;
  /// Gives back `units` own units of a bounded scope, handing them to
  /// waiting producers first; returns the joiner to resume, if this emptied
  /// the word while one joins. The scope is not touched after it returns.
  PromiseBase* return_units(std::uint64_t units) noexcept;
  WorkerSlot* make_slots() noexcept;
  // Bounded scopes with no outer level keep credits (admit_bounded).
  [[nodiscard]] bool stashes_bounded() const noexcept { return bounded_ && outer_.empty(); }

  // Clears kJoining (and kDraining) if pending is 0; returns the joiner if
  // this call did.
  PromiseBase* take_joiner() noexcept {
    auto s = state_.load(std::memory_order_acquire);
    while (pending_of(s) == 0 && (s & kJoining) != 0) {
      if (state_.compare_exchange_weak(s, s & ~(kJoining | kDraining), std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return joiner_;
      }
    }
    return nullptr;
  }

  static void on_level_ready(AdmissionWaiter* w) noexcept;
  // Gives back levels [0, count): outer ones first, then this scope's own.
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
  const bool bounded_;
  const std::uint64_t limit_;     // max_pending (bounded_ only)
  const std::uint64_t own_unit_;  // what one own child takes of the word
  std::vector<Outer> outer_;      // immutable after construction
  const std::size_t workers_;     // the pool's size
  // Made when first needed (a tree task counted, credits taken; CAS); freed
  // with the scope.
  std::atomic<WorkerSlot*> slots_{nullptr};
  std::stop_source stop_;
  std::stop_source closing_;
  // Keeps state_ off the cache line of the fields above, which every spawn
  // reads. Padding, not alignas: a Scope usually lives in a coroutine frame,
  // and frames are only aligned to 16 bytes.
  [[maybe_unused]] std::array<std::byte, 64> apart_{};
  // Written by spawners, finishing children, the joiner and nested scopes'
  // children (all RMWs); see above.
  std::atomic<std::uint64_t> state_{0};
  // Set by a worker that stashed credits, cleared by a drain that then
  // sweeps the slots (take_credits). On state_'s line, which the stashing
  // worker has just written.
  std::atomic<bool> stashed_{false};
  PromiseBase* joiner_ = nullptr;  // written by the joiner before it sets kJoining
  // Written under mutex_; read by waiting() as a hint.
  std::atomic<std::size_t> waiting_{0};
  std::mutex mutex_;
  AdmissionWaiter* head_ = nullptr;  // FIFO of waiting producers, guarded by mutex_
  AdmissionWaiter* tail_ = nullptr;  // guarded by mutex_
  bool refusing_ = false;            // closed: guarded by mutex_
  StopList stop_waits_;
  std::optional<std::stop_callback<StopLink>> stop_link_;    // parent's (or runtime's) stop
  std::optional<std::stop_callback<CloseLink>> close_link_;  // parent's (or runtime's) closing
};

}  // namespace sluice::detail
