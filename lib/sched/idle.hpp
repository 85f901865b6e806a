// Idle: who is searching for work and who is parked.
//
// Protocol (after tokio's runtime/scheduler/multi_thread/idle.rs):
//  - A worker with no local work becomes a *searcher* (at most half the
//    workers search at once) and tries to steal. A searcher that finds work
//    stops searching; if it was the last searcher and work is still visible,
//    it wakes one parked worker, which becomes a searcher in turn. A burst
//    pushed by one worker thus fans out one wake-up at a time, with no herd.
//  - Whoever makes work available (push, inject) calls notify(): it wakes a
//    parked worker only if nobody is searching.
//  - A worker parks by registering as a sleeper, leaving the searching state,
//    and then re-checking every queue before it waits on its futex word.
//
// No lost wake-up: a publisher does  push; fence; read(searching, sleepers);
// a parker does  write(sleepers, searching); fence; read(queues).  With a
// seq_cst fence on both sides at least one of them sees the other's write:
// either the publisher sees a sleeper and no searcher and wakes it, or the
// parker sees the work and does not sleep. The same pairing covers a
// searcher that leaves the searching state after finding work.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "sync.hpp"

namespace sluice::detail {

class Idle {
 public:
  explicit Idle(std::size_t workers) : workers_(workers) { sleepers_.reserve(workers); }

  /// Becomes a searcher unless half the workers already search.
  bool try_start_searching() noexcept {
    // seq_cst throughout: these counters take part in the Dekker pairing above.
    const auto s = searching_.load(std::memory_order_seq_cst);
    if (2 * s >= workers_) {
      return false;
    }
    searching_.fetch_add(1, std::memory_order_seq_cst);
    return true;
  }

  /// Leaves the searching state; true if this was the last searcher.
  bool stop_searching() noexcept {
    const bool last = searching_.fetch_sub(1, std::memory_order_seq_cst) == 1;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return last;
  }

  /// Whether a publisher should wake someone. Call after a seq_cst fence.
  [[nodiscard]] bool should_wake() const noexcept {
    // relaxed: ordered by the caller's fence.
    return searching_.load(std::memory_order_relaxed) == 0 &&
           num_sleepers_.load(std::memory_order_relaxed) != 0;
  }

  /// Picks a sleeper, counts it as searching, and calls `signal(index)`
  /// under the lock (so the sleeper's futex word is set before the sleeper
  /// can observe that it left the list); returns the index or -1.
  template <class Signal>
  std::int64_t unpark_one(Signal&& signal) noexcept {
    std::lock_guard lock(mutex_);
    if (sleepers_.empty()) {
      return -1;
    }
    const auto index = sleepers_.back();
    sleepers_.pop_back();
    num_sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    searching_.fetch_add(1, std::memory_order_seq_cst);
    signal(index);
    return static_cast<std::int64_t>(index);
  }

  /// Registers `index` as a sleeper (before its final re-check).
  void register_sleeper(std::size_t index) {
    std::lock_guard lock(mutex_);
    sleepers_.push_back(index);
    num_sleepers_.fetch_add(1, std::memory_order_seq_cst);
  }

  /// Withdraws a registration after the re-check found work. False if a
  /// waker already took `index` (it then counted the worker as searching).
  bool unregister_sleeper(std::size_t index) noexcept {
    std::lock_guard lock(mutex_);
    for (auto it = sleepers_.begin(); it != sleepers_.end(); ++it) {
      if (*it == index) {
        sleepers_.erase(it);
        num_sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        return true;
      }
    }
    return false;
  }

  /// Empties the sleeper list (shutdown), calling `signal(index)` for each
  /// under the lock; returns who was in it.
  template <class Signal>
  std::vector<std::size_t> unpark_all(Signal&& signal) {
    std::lock_guard lock(mutex_);
    auto all = std::move(sleepers_);
    sleepers_.clear();
    num_sleepers_.store(0, std::memory_order_seq_cst);
    for (const auto index : all) {
      signal(index);
    }
    return all;
  }

  [[nodiscard]] std::size_t sleeping() const noexcept {
    return num_sleepers_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t searching() const noexcept {
    return searching_.load(std::memory_order_relaxed);
  }

 private:
  const std::size_t workers_;
  // Written by searchers and wakers; read by every publisher on its fast path.
  alignas(sync::kFalseSharingRange) sync::Atomic<std::size_t> searching_{0};
  // Written under mutex_; read without it by publishers (fast path).
  sync::Atomic<std::size_t> num_sleepers_{0};
  alignas(sync::kFalseSharingRange) std::mutex mutex_;
  std::vector<std::size_t> sleepers_;  // guarded by mutex_; LIFO: warmest first
};

}  // namespace sluice::detail
