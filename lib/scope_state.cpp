#include "sluice/detail/scope_state.hpp"

#include <new>
#include <thread>

#include "sched/pool.hpp"

namespace sluice::detail {

ScopeState::ScopeState(RuntimeCore& core, ScopeState* parent,
                       std::optional<std::size_t> max_pending,
                       std::optional<std::chrono::nanoseconds> task_timeout)
    : core_(&core),
      task_timeout_(task_timeout),
      bounded_(max_pending.has_value()),
      limit_(max_pending.value_or(0)),
      own_unit_(max_pending ? kOne + kHeldOne : kOne),
      workers_(core.pool->size()) {
  if (!task_timeout_) {
    task_timeout_ = parent != nullptr ? parent->task_timeout_ : core.task_timeout;
  }
  if (parent != nullptr) {
    if (parent->bounded_) {
      outer_.push_back(Outer{.scope = parent});
    }
    outer_.insert(outer_.end(), parent->outer_.begin(), parent->outer_.end());
  } else if (core.admission) {
    outer_.push_back(Outer{.admission = &*core.admission});
  }
  // Linked last: the callbacks run at once if the parent already stopped.
  const auto parent_stop = parent != nullptr ? parent->stop_token() : core.stopping.get_token();
  const auto parent_closing =
      parent != nullptr ? parent->closing_token() : core.closing.get_token();
  close_link_.emplace(parent_closing, CloseLink{this});
  stop_link_.emplace(parent_stop, StopLink{this});
}

ScopeState::~ScopeState() {
  // Unlink first, so a parent stopping now does not reach a dying scope.
  stop_link_.reset();
  close_link_.reset();
  delete[] slots_.load(std::memory_order_acquire);
}

ScopeState::WorkerSlot* ScopeState::make_slots() noexcept {
  auto* made = new (std::nothrow) WorkerSlot[workers_ + 1];
  if (made == nullptr) {
    return nullptr;
  }
  WorkerSlot* expected = nullptr;
  // seq_cst: publishes the slots (acquires another thread's on failure), and
  // is ordered before the stashing worker's seq_cst store and load, so a
  // drainer that misses the stash (its seq_cst load of slots_) is one whose
  // bit that load of the word sees (see WorkerSlot).
  if (slots_.compare_exchange_strong(expected, made, std::memory_order_seq_cst,
                                     std::memory_order_acquire)) {
    return made;
  }
  delete[] made;
  return expected;
}

std::uint64_t ScopeState::tasks_pending() const noexcept {
  auto total = static_cast<std::int64_t>(pending());
  // acquire: pairs with the publishing CAS.
  if (const WorkerSlot* slots = slots_.load(std::memory_order_acquire)) {
    for (std::size_t i = 0; i <= workers_; ++i) {
      total += slots[i].n.load(std::memory_order_relaxed);
      total -= slots[i].credits.load(std::memory_order_relaxed);  // not tasks
    }
  }
  return total > 0 ? static_cast<std::uint64_t>(total) : 0;
}

std::optional<std::size_t> ScopeState::max_pending() const noexcept {
  if (bounded_) {
    return static_cast<std::size_t>(limit_);
  }
  return std::nullopt;
}

errc ScopeState::try_admit() noexcept {
  if (closed()) {
    return errc::shutting_down;
  }
  if (counts_trees()) {
    admit_root();
    return errc{};
  }
  if (stashes_bounded()) {
    return admit_bounded();
  }
  if (!try_take(own_unit_)) {
    return errc::rejected;
  }
  for (std::size_t i = 0; i < outer_.size(); ++i) {
    if (!outer_[i].try_take()) {
      release_levels(i + 1);
      return outer_[i].closed() ? errc::shutting_down : errc::rejected;
    }
  }
  return errc{};
}

bool ScopeState::use_credit(WorkerSlot& slot) noexcept {
  auto n = slot.credits.load(std::memory_order_relaxed);
  while (n > 0) {
    // relaxed: a stashed unit is counted in the word already.
    if (slot.credits.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void ScopeState::admit_root() noexcept {
  const WorkerId& me = tls_worker_id;
  const bool on_worker = me.pool == core_->pool;
  // acquire: pairs with the publishing CAS.
  WorkerSlot* slots = on_worker ? slots_.load(std::memory_order_acquire) : nullptr;
  if (slots != nullptr && use_credit(slots[me.index])) {
    return;
  }
  // relaxed: counting only; the child's start is published by the
  // scheduler's queue.
  const auto prev = state_.fetch_add(own_unit_, std::memory_order_relaxed);
  if (!on_worker || pending_of(prev) < kBusy || (prev & kJoining) != 0) {
    return;
  }
  if (slots == nullptr && (slots = make_slots()) == nullptr) {
    return;
  }
  // The line is in this worker's cache after the fetch_add above.
  state_.fetch_add(own_unit_ * kCredits, std::memory_order_relaxed);
  if (const auto back = stash(slots[me.index], kJoining)) {
    // The unit admitted here is still counted: pending stays above 0.
    state_.fetch_sub(own_unit_ * back, std::memory_order_acq_rel);
  }
}

std::uint64_t ScopeState::stash(WorkerSlot& slot, std::uint64_t bits) noexcept {
  // seq_cst, store then load: against a drainer's RMW of the word (set_joiner,
  // take_or_wait) then exchange. The slot is empty (only its worker raises
  // it, and it came to the word because its slot was), so a store will do.
  slot.credits.store(kCredits, std::memory_order_seq_cst);
  stashed_.store(true, std::memory_order_seq_cst);  // see take_credits
  if ((state_.load(std::memory_order_seq_cst) & bits) == 0) {
    return 0;
  }
  return slot.credits.exchange(0, std::memory_order_seq_cst);
}

errc ScopeState::admit_bounded() noexcept {
  const WorkerId& me = tls_worker_id;
  const bool on_worker = me.pool == core_->pool;
  // acquire: pairs with the publishing CAS.
  WorkerSlot* slots = on_worker ? slots_.load(std::memory_order_acquire) : nullptr;
  if (slots != nullptr && use_credit(slots[me.index])) {
    return errc{};
  }
  bool reclaimed = false;
  auto s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((s & kWaiters) != 0) {
      return errc::rejected;  // no overtaking
    }
    if (held_of(s) >= limit_) {
      // Full, unless workers hold slots ahead that they no longer use.
      if (reclaimed || !(reclaimed = reclaim_credits())) {
        return errc::rejected;
      }
      s = state_.load(std::memory_order_relaxed);
      continue;
    }
    // Credits only while the word stays at most half full after them, so
    // the units workers keep never exceed half the bound (each take leaves
    // all stashes within the held count it checked), and none while a
    // producer waits or someone joins.
    const bool ahead = on_worker && (s & (kJoining | kDraining)) == 0 && held_of(s) >= kBusy &&
                       held_of(s) + 1 + kCredits <= limit_ / 2;
    const std::uint64_t take = ahead ? 1 + kCredits : 1;
    // relaxed: as try_take.
    if (state_.compare_exchange_weak(s, s + take * own_unit_, std::memory_order_relaxed)) {
      if (ahead) {
        stash_bounded(slots);
      }
      return errc{};
    }
  }
}

bool ScopeState::reclaim_credits() noexcept {
  if (!stashes_bounded() || (state_.load(std::memory_order_relaxed) & kWaiters) != 0) {
    return false;  // none taken ahead here; or the waiting producers get them
  }
  // No bit is set first, unlike a drain for waiters or a joiner: a worker
  // storing credits meanwhile keeps them, as it is spawning.
  const std::uint64_t units = take_credits();
  if (units == 0) {
    return false;
  }
  // The caller is spawning into the scope: it stays alive.
  if (PromiseBase* joiner = return_units(units)) {
    joiner->schedule();
  }
  return true;
}

void ScopeState::stash_bounded(WorkerSlot* slots) noexcept {
  if (slots == nullptr && (slots = make_slots()) == nullptr) {
    (void)return_units(kCredits);  // out of memory: no credits
    return;
  }
  if (const auto back = stash(slots[tls_worker_id.index], kWaiters | kJoining | kDraining)) {
    // The unit admitted here is still counted: never the joiner.
    (void)return_units(back);
  }
}

std::uint64_t ScopeState::take_credits() noexcept {
  // A stashing worker sets stashed_ after its credits and before it reads
  // the word; a drainer reads it after its RMW of the word. Read false: the
  // stash is later, and its worker sees the drainer's bit. Read true: this
  // drainer clears it and sweeps, and a stash the sweep misses sets it
  // again (or sees the bit). So the sweep, a seq_cst exchange per worker,
  // only runs when some worker stashed credits since the last one.
  if (!stashed_.load(std::memory_order_seq_cst) ||
      !stashed_.exchange(false, std::memory_order_seq_cst)) {
    return 0;
  }
  // seq_cst: see make_slots.
  WorkerSlot* slots = slots_.load(std::memory_order_seq_cst);
  if (slots == nullptr) {
    return 0;
  }
  std::uint64_t units = 0;
  for (std::size_t i = 0; i < workers_; ++i) {
    // seq_cst: against the stashing worker's store then load of the word.
    units += slots[i].credits.exchange(0, std::memory_order_seq_cst);
  }
  return units;
}

void ScopeState::drain_credits() noexcept {
  if (const std::uint64_t units = take_credits()) {
    // acq_rel: as give_back.
    state_.fetch_sub(own_unit_ * units, std::memory_order_acq_rel);
  }
}

PromiseBase* ScopeState::return_units(std::uint64_t units) noexcept {
  PromiseBase* joiner = nullptr;
  auto prev = state_.load(std::memory_order_relaxed);
  while (units > 0) {
    if ((prev & kWaiters) != 0) {
      // Waiters first, one unit each (FIFO). The units still held keep the
      // scope alive; nothing is touched after the last one.
      if (PromiseBase* j = hand_over(own_unit_)) {
        joiner = j;
      }
      if (--units == 0) {
        break;
      }
      prev = state_.load(std::memory_order_relaxed);
      continue;
    }
    // acq_rel: as give_back.
    if (state_.compare_exchange_weak(prev, prev - units * own_unit_, std::memory_order_acq_rel,
                                     std::memory_order_relaxed)) {
      if (pending_of(prev) == units && (prev & kJoining) != 0) {
        joiner = take_joiner();
      }
      break;
    }
  }
  return joiner;
}

bool ScopeState::admit_or_wait(SpawnWaiter& w) noexcept {
  w.scope = this;
  w.owner = this;
  w.owner_closed = [](const AdmissionWaiter* self) noexcept {
    return static_cast<const SpawnWaiter*>(self)->scope->closed();
  };
  w.on_ready = &ScopeState::on_level_ready;
  w.error = errc{};
  if (closed()) {
    w.error = errc::shutting_down;
    release_levels(w.level);
    return false;
  }
  for (; w.level <= outer_.size(); ++w.level) {
    const bool waits =
        w.level == 0 ? take_or_wait(w, own_unit_) : outer_[w.level - 1].take_or_wait(w);
    if (waits) {
      return true;  // on_level_ready continues from this level
    }
    if (w.error != errc{}) {
      release_levels(w.level);
      return false;
    }
  }
  return false;
}

// A level granted its slot (or closed): continue with the next levels, and
// resume the producer once all are held or one refused.
void ScopeState::on_level_ready(AdmissionWaiter* base) noexcept {
  auto& w = *static_cast<SpawnWaiter*>(base);
  ScopeState& self = *w.scope;
  if (w.error != errc{}) {
    self.release_levels(w.level);
    w.producer->schedule();
    return;
  }
  ++w.level;
  if (self.admit_or_wait(w)) {
    return;
  }
  w.producer->schedule();
}

void ScopeState::release_levels(std::size_t count) noexcept {
  for (std::size_t i = 1; i < count; ++i) {
    outer_[i - 1].release();
  }
  if (count > 0) {
    if (PromiseBase* joiner = give_back(own_unit_)) {
      joiner->schedule();
    }
  }
}

bool ScopeState::take_or_wait(SpawnWaiter& w, std::uint64_t unit) noexcept {
  if (!bounded_) {
    try_take(unit);  // never full
    return false;
  }
  std::unique_lock lock(mutex_);
  // The producer's own scope, when it is not this one, closing: checked
  // under this level's mutex, so its close() either sees the waiter queued
  // here (and withdraws it) or it sees the close and does not queue.
  if (refusing_ || (w.scope != this && w.owner_closed(&w))) {
    w.error = errc::shutting_down;
    return false;
  }
  if (head_ == nullptr && try_take(unit)) {
    return false;  // got a slot without waiting
  }
  w.next = nullptr;
  if (tail_ != nullptr) {
    tail_->next = &w;
  } else {
    head_ = &w;
    // seq_cst: before take_credits below, against a worker stashing credits
    // (see WorkerSlot); with every give-back, the word's modification order
    // alone would do.
    state_.fetch_or(kWaiters, std::memory_order_seq_cst);
  }
  tail_ = &w;
  waiting_.fetch_add(1, std::memory_order_relaxed);
  if (head_ == &w) {
    // Alone in the queue: a give-back that came before kWaiters freed a slot
    // that no one will hand over. Take it now if so (kWaiters stays set
    // meanwhile, so no newcomer overtakes).
    auto s = state_.load(std::memory_order_relaxed);
    while (held_of(s) < limit_) {
      if (state_.compare_exchange_weak(s, (s + unit) & ~kWaiters, std::memory_order_relaxed)) {
        head_ = tail_ = nullptr;
        waiting_.fetch_sub(1, std::memory_order_relaxed);
        return false;
      }
    }
  }
  if (!stashes_bounded()) {
    return true;
  }
  // Units workers stashed ahead are slots no spawn uses while producers
  // wait: the queue gets them, oldest first, and the word the rest.
  std::uint64_t units = take_credits();
  if (units == 0) {
    return true;
  }
  bool mine = false;
  PromiseBase* joiner = nullptr;
  AdmissionWaiter* ready = nullptr;  // granted, woken once the mutex is released
  AdmissionWaiter** ready_end = &ready;
  for (; units > 0 && head_ != nullptr; --units) {
    SpawnWaiter* granted = grant_head_locked(own_unit_, joiner);
    if (granted == &w) {
      mine = true;
    } else {
      granted->next = nullptr;
      *ready_end = granted;
      ready_end = &granted->next;
    }
  }
  if (units > 0) {
    // acq_rel: as give_back. The word keeps our slot, or kWaiters.
    const auto prev = state_.fetch_sub(units * own_unit_, std::memory_order_acq_rel);
    if (pending_of(prev) == units && (prev & kJoining) != 0) {
      if (PromiseBase* j = take_joiner()) {
        joiner = j;
      }
    }
  }
  lock.unlock();
  while (ready != nullptr) {              // their slots keep the scope alive
    AdmissionWaiter* next = ready->next;  // before on_ready: it may free the waiter
    ready->on_ready(ready);
    ready = next;
  }
  if (joiner != nullptr) {
    joiner->schedule();
  }
  return !mine;
}

PromiseBase* ScopeState::hand_over(std::uint64_t unit) noexcept {
  SpawnWaiter* w = nullptr;
  PromiseBase* joiner = nullptr;
  {
    std::unique_lock lock(mutex_);
    if (head_ == nullptr) {
      // The queue emptied (close(), withdraw()) after kWaiters was seen: the
      // flag is clear now.
      lock.unlock();
      return give_back(unit);
    }
    w = grant_head_locked(unit, joiner);
  }
  w->on_ready(w);  // its slot keeps this scope alive
  return joiner;
}

SpawnWaiter* ScopeState::grant_head_locked(std::uint64_t unit, PromiseBase*& joiner) noexcept {
  auto* w = static_cast<SpawnWaiter*>(head_);
  head_ = w->next;
  std::uint64_t clear = 0;
  if (head_ == nullptr) {
    tail_ = nullptr;
    clear = kWaiters;
  }
  waiting_.fetch_sub(1, std::memory_order_relaxed);
  // The slot changes hands: ours leaves and theirs enters, in one RMW
  // (modular arithmetic: the result is never negative). acq_rel: as in
  // give_back, when pending drops (a nested scope's producer takes over).
  const std::uint64_t theirs = unit_of(*w);
  const auto prev = state_.fetch_add(theirs - unit - clear, std::memory_order_acq_rel);
  if (theirs < kOne && emptied(prev, unit)) {
    if (PromiseBase* j = take_joiner()) {
      joiner = j;
    }
  }
  return w;
}

void ScopeState::wait_idle() const noexcept {
  while (!idle()) {
    std::this_thread::yield();
  }
}

void ScopeState::withdraw(const void* owner) noexcept {
  AdmissionWaiter* list = nullptr;
  {
    std::lock_guard lock(mutex_);
    std::size_t removed = 0;
    list = unlink_owned(head_, tail_, owner, removed);
    waiting_.fetch_sub(removed, std::memory_order_relaxed);
    if (list != nullptr && head_ == nullptr) {
      state_.fetch_and(~kWaiters, std::memory_order_relaxed);
    }
  }
  wake_refused(list, errc::shutting_down);
}

void ScopeState::close() noexcept {
  closing_.request_stop();
  if (bounded_) {
    AdmissionWaiter* list = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (refusing_) {
        return;
      }
      refusing_ = true;
      list = head_;
      head_ = tail_ = nullptr;
      waiting_.store(0, std::memory_order_relaxed);
      if (list != nullptr) {
        state_.fetch_and(~kWaiters, std::memory_order_relaxed);
      }
    }
    wake_refused(list, errc::shutting_down);
  }
  // This scope's producers waiting at an outer level hold a slot here: wake
  // them too, or this scope's join would wait for an outer slot. A producer
  // granted one meanwhile sees the scope closed at its next level.
  for (const Outer& o : outer_) {
    o.withdraw(this);
  }
}

void ScopeState::request_stop() noexcept {
  close();
  stop_.request_stop();
  stop_waits_.fire();  // after the stop: a wait that misses the fire sees it
}

}  // namespace sluice::detail
