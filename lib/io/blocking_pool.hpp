// A few threads for system calls that block: file reads when io_uring is
// refused.
//
// Jobs are intrusive (each lives in the frame of the coroutine that waits for
// it), so submitting allocates nothing and the queue needs no bound of its
// own: it holds at most one job per suspended task, and the callers' Scopes
// already bound those. A job still queued can be withdrawn, which is how a
// cancelled task gets out without waiting for the threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice::detail {

/// One unit of blocking work. `run` is called once, on a pool thread, unless
/// the job was withdrawn first.
struct BlockingJob {
  void (*run)(BlockingJob* self) noexcept = nullptr;
  /// Optional: whether the job's waiter was stopped, checked by submit()
  /// under the pool's mutex. A stop that sets what this reads before it
  /// calls withdraw() then either keeps the job out or finds it queued.
  bool (*stopped)(const BlockingJob* self) noexcept = nullptr;
  BlockingJob* prev = nullptr;  // guarded by the pool's mutex, like `queued`
  BlockingJob* next = nullptr;
  bool queued = false;
};

/// The process's blocking pool: kThreads threads, started on first use,
/// stopped and joined at exit.
///
/// Thread safety: submit and withdraw from any thread.
class BlockingPool {
 public:
  static constexpr std::size_t kThreads = 4;

  static BlockingPool& instance();

  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;
  ~BlockingPool();

  /// Queues `job` (FIFO); true. False, queueing nothing, if its `stopped`
  /// says so. After stop (static destruction) it runs inline.
  [[nodiscard]] bool submit(BlockingJob* job) noexcept;

  /// True if `job` was still queued and is now removed: it will not run.
  bool withdraw(BlockingJob* job) noexcept;

 private:
  BlockingPool();
  void work() noexcept;

  std::mutex mutex_;
  std::condition_variable ready_;
  BlockingJob* head_ = nullptr;  // guarded by mutex_
  BlockingJob* tail_ = nullptr;  // guarded by mutex_
  bool stopping_ = false;        // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace sluice::detail
