// The pool's global queue: an intrusive FIFO list of TaskNodes under a mutex.
//
// It takes work submitted from outside the pool and the half-rings that
// overflowing workers hand over in one batch, so the lock is taken once per
// batch, not per item. `len_` lets idle workers skip the lock when empty.
#pragma once

#include <cstddef>
#include <mutex>
#include <span>

#include "sluice/detail/task_node.hpp"
#include "sync.hpp"

namespace sluice::detail {

class Injector {
 public:
  /// Thread safety: every member may be called from any thread.
  void push(TaskNode* node) noexcept { push_batch(std::span<TaskNode*>(&node, 1)); }

  void push_batch(std::span<TaskNode*> nodes) noexcept {
    if (nodes.empty()) {
      return;
    }
    for (std::size_t i = 0; i + 1 < nodes.size(); ++i) {
      nodes[i]->next = nodes[i + 1];
    }
    nodes.back()->next = nullptr;
    std::lock_guard lock(mutex_);
    if (tail_ != nullptr) {
      tail_->next = nodes.front();
    } else {
      head_ = nodes.front();
    }
    tail_ = nodes.back();
    // relaxed: the mutex orders the list; len_ is a hint read without it.
    len_.store(len_.load(std::memory_order_relaxed) + nodes.size(), std::memory_order_relaxed);
  }

  /// Takes up to `out.size()` nodes in FIFO order; returns how many.
  std::size_t pop_batch(std::span<TaskNode*> out) noexcept {
    if (is_empty()) {
      return 0;
    }
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    while (n < out.size() && head_ != nullptr) {
      out[n++] = head_;
      head_ = head_->next;
    }
    if (head_ == nullptr) {
      tail_ = nullptr;
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
  std::mutex mutex_;
  TaskNode* head_ = nullptr;  // guarded by mutex_
  TaskNode* tail_ = nullptr;  // guarded by mutex_
  // Written under mutex_; read without it as a hint by idle workers.
  sync::Atomic<std::size_t> len_{0};
};

}  // namespace sluice::detail
