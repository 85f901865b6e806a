// The pool's global queue: a FIFO of TaskNode pointers under a mutex.
//
// It takes work submitted from outside the pool and the half-rings that
// overflowing workers hand over in one batch, so the lock is taken once per
// batch, not per item. The pointers are kept in a growable ring, so neither
// end touches a node under the lock (a linked list would read each popped
// node's link, a cache miss apiece on nodes written by another core, while
// every other worker waits for the lock). If the ring cannot grow (no
// memory), nodes queue on an intrusive list behind it instead: nothing is
// lost. `len_` lets idle workers skip the lock when empty.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <mutex>
#include <new>
#include <span>

#include "sluice/detail/task_node.hpp"
#include "sync.hpp"

namespace sluice::detail {

class Injector {
 public:
  /// `max_ring`: the ring's largest capacity; beyond it nodes queue on the
  /// list behind it, as when memory runs out (tests use a small one).
  explicit Injector(std::size_t max_ring = std::numeric_limits<std::size_t>::max()) noexcept
      : max_ring_(max_ring) {}
  Injector(const Injector&) = delete;
  Injector& operator=(const Injector&) = delete;
  ~Injector() { delete[] ring_; }

  /// Thread safety: every member may be called from any thread.
  void push(TaskNode* node) noexcept { push_batch(std::span<TaskNode*>(&node, 1)); }

  void push_batch(std::span<TaskNode*> nodes) noexcept {
    if (nodes.empty()) {
      return;
    }
    std::lock_guard lock(mutex_);
    if (spill_head_ == nullptr && reserve(count_ + nodes.size())) {
      for (TaskNode* n : nodes) {
        ring_[(head_ + count_) & (capacity_ - 1)] = n;
        ++count_;
      }
    } else {
      for (TaskNode* n : nodes) {  // behind the ring, in order
        n->next = nullptr;
        if (spill_tail_ != nullptr) {
          spill_tail_->next = n;
        } else {
          spill_head_ = n;
        }
        spill_tail_ = n;
      }
    }
    // relaxed: the mutex orders the queue; len_ is a hint read without it.
    len_.store(len_.load(std::memory_order_relaxed) + nodes.size(), std::memory_order_relaxed);
  }

  /// Takes up to `out.size()` nodes in FIFO order; returns how many.
  std::size_t pop_batch(std::span<TaskNode*> out) noexcept {
    if (is_empty()) {
      return 0;
    }
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (; n < out.size() && count_ != 0; ++n) {
      out[n] = ring_[head_];
      head_ = (head_ + 1) & (capacity_ - 1);
      --count_;
    }
    for (; n < out.size() && spill_head_ != nullptr; ++n) {
      out[n] = spill_head_;
      spill_head_ = spill_head_->next;
    }
    if (spill_head_ == nullptr) {
      spill_tail_ = nullptr;
    }
    len_.store(len_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
    return n;
  }

  TaskNode* pop() noexcept {
    TaskNode* node = nullptr;
    return pop_batch(std::span<TaskNode*>(&node, 1)) == 1 ? node : nullptr;
  }

  /// Racy: a hint for idle workers, exact only while no one pushes or pops.
  [[nodiscard]] std::size_t len() const noexcept { return len_.load(std::memory_order_relaxed); }
  [[nodiscard]] bool is_empty() const noexcept { return len() == 0; }

 private:
  static constexpr std::size_t kInitialCapacity = 256;

  // Grows the ring (a power of two) to hold `needed`; false if it cannot.
  // Under mutex_.
  bool reserve(std::size_t needed) noexcept {
    if (needed <= capacity_) {
      return true;
    }
    std::size_t capacity = std::max(capacity_, kInitialCapacity);
    while (capacity < needed) {
      capacity *= 2;
    }
    if (capacity > max_ring_) {
      return false;
    }
    auto* ring = new (std::nothrow) TaskNode*[capacity];
    if (ring == nullptr) {
      return false;
    }
    for (std::size_t i = 0; i < count_; ++i) {
      ring[i] = ring_[(head_ + i) & (capacity_ - 1)];
    }
    delete[] ring_;
    ring_ = ring;
    capacity_ = capacity;
    head_ = 0;
    return true;
  }

  const std::size_t max_ring_;
  std::mutex mutex_;
  TaskNode** ring_ = nullptr;  // guarded by mutex_, like the fields below
  std::size_t capacity_ = 0;   // 0 or a power of two
  std::size_t head_ = 0;       // index of the oldest node
  std::size_t count_ = 0;
  TaskNode* spill_head_ = nullptr;  // behind the ring; only when it could not grow
  TaskNode* spill_tail_ = nullptr;
  // Written under mutex_; read without it as a hint by idle workers.
  sync::Atomic<std::size_t> len_{0};
};

}  // namespace sluice::detail
