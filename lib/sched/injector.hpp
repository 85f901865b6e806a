// The pool's global queue: a FIFO of TaskNode pointers under a mutex.
//
// It takes work submitted from outside the pool and the half-rings that
// overflowing workers hand over in one batch, so the lock is taken once per
// batch, not per item. The pointers are kept in blocks of 254 (2 KiB each,
// freed as they drain, one kept spare), so neither end touches a node under
// the lock (a linked list of nodes would read each popped node's link, a
// cache miss apiece on nodes written by another core, while every other
// worker waits for the lock), and memory follows the backlog: 8 bytes per
// queued node. If a block cannot be had (no memory, or past `max_blocks`),
// nodes queue on an intrusive list behind the blocks instead: nothing is
// lost. `len_` lets idle workers skip the lock when empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <new>
#include <span>
#include <utility>

#include "sluice/detail/task_node.hpp"
#include "sync.hpp"

namespace sluice::detail {

class Injector {
 public:
  /// `max_blocks`: how many blocks may hold nodes at once; beyond them nodes
  /// queue on the list behind them, as when memory runs out (tests use few).
  explicit Injector(std::size_t max_blocks = std::numeric_limits<std::size_t>::max()) noexcept
      : max_blocks_(max_blocks) {}
  Injector(const Injector&) = delete;
  Injector& operator=(const Injector&) = delete;
  ~Injector() {
    while (head_ != nullptr) {
      delete std::exchange(head_, head_->next);
    }
    delete spare_;
  }

  /// Thread safety: every member may be called from any thread.
  void push(TaskNode* node) noexcept { push_batch(std::span<TaskNode*>(&node, 1)); }

  void push_batch(std::span<TaskNode*> nodes) noexcept {
    if (nodes.empty()) {
      return;
    }
    std::lock_guard lock(mutex_);
    for (TaskNode* n : nodes) {
      if (spill_head_ == nullptr &&
          ((tail_ != nullptr && tail_->end < Block::kSize) || add_block())) {
        tail_->slots[tail_->end++] = n;
        continue;
      }
      n->next = nullptr;  // behind the blocks, in order
      if (spill_tail_ != nullptr) {
        spill_tail_->next = n;
      } else {
        spill_head_ = n;
      }
      spill_tail_ = n;
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
    while (n < out.size() && head_ != nullptr) {
      Block& b = *head_;
      while (n < out.size() && b.begin < b.end) {
        out[n++] = b.slots[b.begin++];
      }
      if (b.begin < b.end || (&b == tail_ && b.end < Block::kSize)) {
        break;  // not drained, or the tail with room left: keep it
      }
      drop_head();
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
  struct Block {
    static constexpr std::uint32_t kSize = 254;  // 2 KiB blocks
    Block* next = nullptr;
    std::uint32_t begin = 0;  // the oldest node
    std::uint32_t end = 0;    // one past the newest
    TaskNode* slots[kSize];
  };

  // Appends an empty block; false if none can be had. Under mutex_.
  bool add_block() noexcept {
    if (blocks_ >= max_blocks_) {
      return false;
    }
    Block* b = spare_ != nullptr ? std::exchange(spare_, nullptr) : new (std::nothrow) Block;
    if (b == nullptr) {
      return false;
    }
    b->next = nullptr;
    b->begin = b->end = 0;
    if (tail_ != nullptr) {
      tail_->next = b;
    } else {
      head_ = b;
    }
    tail_ = b;
    ++blocks_;
    return true;
  }

  // Unlinks the drained head block, keeping one spare. Under mutex_.
  void drop_head() noexcept {
    Block* b = std::exchange(head_, head_->next);
    if (head_ == nullptr) {
      tail_ = nullptr;
    }
    --blocks_;
    if (spare_ == nullptr) {
      spare_ = b;
    } else {
      delete b;
    }
  }

  const std::size_t max_blocks_;
  std::mutex mutex_;
  Block* head_ = nullptr;  // guarded by mutex_, like the fields below
  Block* tail_ = nullptr;
  Block* spare_ = nullptr;
  std::size_t blocks_ = 0;          // linked from head_
  TaskNode* spill_head_ = nullptr;  // behind the blocks; only when none could be had
  TaskNode* spill_tail_ = nullptr;
  // Written under mutex_; read without it as a hint by idle workers.
  sync::Atomic<std::size_t> len_{0};
};

}  // namespace sluice::detail
