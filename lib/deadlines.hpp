// DeadlineQueue: task timeouts and await_timeout without a reactor round trip
// per spawn, in memory proportional to the tasks alive.
//
// Task timeouts: each task's JoinState carries intrusive links; it is
// appended to the FIFO list for its duration (tasks sharing a timeout are
// added in deadline order, so each list is sorted by construction) in one of
// kShards shards, each under its own mutex. A spawner's consecutive tasks go
// to successive shards, so a task finishing on another worker rarely wants
// the lock its spawner holds. A finishing task unlinks itself in O(1);
// expiry pops from list fronts.
// await_timeout entries are rarer and hold a reference to the task instead.
//
// Sleeps (sluice::sleep_for): the SleepNode inside the sleeping frame is
// linked into one of kShards TimerWheels (1 ms ticks), each under its own
// mutex, picked by the sleeping thread; O(1) to add and to cancel.
//
// One Asio timer, on a strand of the reactor, is armed for the earliest
// deadline of all three kinds; adding posts to the reactor only when the new
// deadline is earlier than the armed one (in practice: when a list was empty).
#pragma once

#include <array>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>

#include "sluice/detail/join_state.hpp"
#include "timer_wheel.hpp"

namespace sluice::detail {

class JoinStateBase;
class PromiseBase;
struct SleepNode;

class DeadlineQueue {
 public:
  using Clock = std::chrono::steady_clock;

  explicit DeadlineQueue(asio::io_context& io);
  ~DeadlineQueue();  // the reactor must be stopped
  DeadlineQueue(const DeadlineQueue&) = delete;
  DeadlineQueue& operator=(const DeadlineQueue&) = delete;

  /// Thread safety: all three from any thread.
  void add_task(JoinStateBase& task, std::chrono::nanoseconds timeout);
  void remove_task(JoinStateBase& task) noexcept;
  void add_wait(JoinStateBase& task, std::chrono::nanoseconds timeout, PromiseBase* waiter,
                bool* timed_out);

  /// Links `node` (its waiter set, its shard from sleep_shard()) to resume
  /// its waiter at `deadline_ns`. False, linking nothing, when the
  /// deadline has passed or the node was cancelled first: do not suspend.
  /// Thread safety: any thread; cancel_sleep may run concurrently.
  bool add_sleep(SleepNode& node, std::int64_t deadline_ns);
  /// The shard a sleep from the calling thread goes to.
  void* sleep_shard() noexcept;
  static void cancel_sleep(SleepNode& node) noexcept;
  static void forget_sleep(SleepNode& node) noexcept;

  /// Entries not yet expired or removed (tests, metrics).
  [[nodiscard]] std::size_t size() const;

 private:
  static constexpr std::size_t kShards = 16;

  using Link = JoinStateBase::DeadlineLink;
  struct List {
    Link* head = nullptr;
    Link* tail = nullptr;
    std::size_t size = 0;
  };
  struct alignas(128) Shard {
    mutable std::mutex mutex;
    std::map<std::int64_t, List> lists;  // by duration; guarded by mutex
  };
  struct alignas(128) SleepShard {
    std::mutex mutex;
    TimerWheel wheel;  // guarded by mutex; ticks are whole ms of Clock
  };
  struct WaitEntry {
    std::int64_t deadline_ns;
    JoinStateBase* task;  // holds one reference
    PromiseBase* waiter;
    bool* timed_out;
  };

  static std::int64_t now_ns() noexcept;
  static void unlink(List& list, Link& link) noexcept;
  void note_deadline(std::int64_t deadline_ns);
  void arm(std::int64_t at_ns);       // on the strand
  void on_timer(std::error_code ec);  // on the strand
  std::int64_t expire_tasks(std::int64_t now) noexcept;
  std::int64_t expire_waits(std::int64_t now) noexcept;
  std::int64_t expire_sleeps(std::int64_t now) noexcept;
  static std::size_t shard_index() noexcept;

  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer timer_;  // used on strand_ only
  std::array<Shard, kShards> shards_;
  std::array<SleepShard, kShards> sleep_shards_;
  mutable std::mutex waits_mutex_;
  std::map<std::int64_t, std::deque<WaitEntry>> waits_;  // guarded by waits_mutex_
  // The deadline the timer is armed for (max: none). Lowered by adders (CAS),
  // reset by the timer handler.
  std::atomic<std::int64_t> armed_at_{INT64_MAX};
};

}  // namespace sluice::detail
