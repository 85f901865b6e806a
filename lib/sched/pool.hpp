// Pool: N worker threads over per-worker LimitedAccessQueues, a LIFO slot
// each, one global injector and an Idle tracker.
//
// A worker looks for its next node in this order:
//   1. every kInjectorInterval ticks, the injector first (fairness: work
//      submitted from outside is never starved by local respawning), taking
//      turns with its yielded queue (below);
//   2. on the same ticks (before the injector), the oldest node of its local
//      queue if it has sat
//      at the front for kMaxFrontWait (fairness within the worker: nodes
//      waking each other through the LIFO slot, or a stream of newer spawns,
//      never starve it);
//   3. its LIFO slot (the node it scheduled last: a spawned child or a task
//      it just woke), then its local queue newest first: fork-join work runs
//      depth first, as in a work-stealing deque, while thieves take the
//      oldest half;
//   4. its yielded queue, oldest first, then the injector (taking a batch
//      into the queue);
//   5. stealing, as a searcher (Idle): guided by the load vector, it takes
//      half of the queue with the largest approx_len(), ties broken from a
//      random start, then falls back to the other workers' yielded queues
//      and LIFO slots;
//   6. a bounded spin of steps 3-5, then parking on a futex word.
//
// A yielding node goes behind everything its worker has queued: onto the
// worker's second LimitedAccessQueue, for yielded nodes only (no lock;
// thieves can take them), which the owner pops oldest first.
//
// The pool knows nothing of coroutines: it runs TaskNode::run.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "idle.hpp"
#include "injector.hpp"
#include "limited_access_queue.hpp"
#include "sluice/detail/task_node.hpp"
#include "sync.hpp"

namespace sluice::detail {

class Pool {
 public:
  struct Options {
    std::size_t threads = 1;
    bool work_stealing = true;
  };

  /// Slots for events counted on behalf of the layers above (task outcomes).
  static constexpr std::size_t kEventSlots = 8;

  /// Per-worker event counts, summed on read.
  struct Counters {
    std::uint64_t steals = 0;     // successful steal operations
    std::uint64_t stolen = 0;     // nodes moved by them
    std::uint64_t parks = 0;      // times a worker went to sleep
    std::uint64_t polled = 0;     // nodes run
    std::uint64_t parked_ns = 0;  // time spent parked, all workers
    std::array<std::uint64_t, kEventSlots> events{};
  };

  explicit Pool(Options options);
  ~Pool();  // stop() + join
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  /// Queues `node` to run once: from one of this pool's workers, where
  /// `where` says (see Placement); from any other thread, to the injector.
  /// Thread safety: any thread.
  void schedule(TaskNode* node, Placement where = Placement::next) noexcept;

  /// Asks workers to exit once no work is visible, and joins them. Nodes
  /// scheduled after stop() returns are never run.
  void stop() noexcept;

  /// Adds one to event slot `slot` on the shared line, for threads that are
  /// not this pool's workers (which count on their own line: count_event).
  /// Thread safety: any thread.
  void count_shared(std::size_t slot) noexcept;

  /// The pool whose worker is the calling thread, or null.
  static Pool* current() noexcept;
  [[nodiscard]] bool on_worker() const noexcept { return current() == this; }
  [[nodiscard]] std::size_t size() const noexcept { return workers_.size(); }
  /// Workers parked right now (racy).
  [[nodiscard]] std::size_t sleeping() const noexcept { return idle_.sleeping(); }
  /// Nodes waiting in queues (racy).
  [[nodiscard]] std::size_t queued() const noexcept;
  [[nodiscard]] Counters counters() const noexcept;

  /// An opaque pointer for the layer that owns the pool (the runtime's
  /// core). Set before anything is scheduled; read by tasks.
  void set_owner(void* owner) noexcept { owner_ = owner; }
  [[nodiscard]] void* owner() const noexcept { return owner_; }

 private:
  using Queue = LimitedAccessQueue<TaskNode*>;
  struct Worker;

  void run_worker(std::size_t index) noexcept;
  TaskNode* next_local(Worker& w) noexcept;
  TaskNode* overdue_front(Worker& w) noexcept;
  TaskNode* pop_injector(Worker& w) noexcept;
  TaskNode* search(Worker& w) noexcept;
  TaskNode* steal(Worker& w) noexcept;
  void park(Worker& w) noexcept;
  void push_local(Worker& w, TaskNode* node, Placement where) noexcept;
  void push_queue(Worker& w, TaskNode* node) noexcept;
  void found_work(Worker& w) noexcept;
  void notify() noexcept;
  void wake(std::size_t index) noexcept;
  [[nodiscard]] bool has_visible_work() const noexcept;

  // The calling thread's worker, if any (its pool: tls_worker_id.pool).
  static thread_local Worker* tls_worker_;

  const bool work_stealing_;
  void* owner_ = nullptr;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Queue::Stealer> stealers_;        // immutable after construction
  std::vector<Queue::Stealer> yield_stealers_;  // the yielded queues'; likewise
  Injector injector_;
  Idle idle_;
  // Written once by stop(); read by workers when they run out of work.
  alignas(sync::kFalseSharingRange) sync::Atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
  // Outside threads between their injector push and the end of their
  // notify() (fetch_add / fetch_sub); stop() waits for zero.
  alignas(sync::kFalseSharingRange) sync::Atomic<std::uint32_t> external_scheduling_{0};
  // Events counted from threads outside the pool (fetch_add).
  alignas(sync::kFalseSharingRange)
      std::array<sync::Atomic<std::uint64_t>, kEventSlots> external_events_{};
};

}  // namespace sluice::detail
