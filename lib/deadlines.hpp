// DeadlineQueue: task timeouts and await_timeout without a reactor round trip
// per spawn.
//
// Deadlines are kept in FIFO lists, one per duration: tasks that share a
// timeout (a scope's, the runtime's) are added in deadline order, so each
// list is sorted by construction and expiry pops from its front. One Asio
// timer, on a strand of the reactor, is armed for the earliest front; adding
// posts to the reactor only when the new deadline is earlier than the armed
// one (in practice: when a list was empty). A finished task's entry stays
// until its deadline, holding a reference to the small JoinState only.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>

namespace sluice::detail {

class JoinStateBase;
class PromiseBase;

class DeadlineQueue {
 public:
  using Clock = std::chrono::steady_clock;

  explicit DeadlineQueue(asio::io_context& io);
  ~DeadlineQueue();  // releases what is still queued; the reactor must be stopped
  DeadlineQueue(const DeadlineQueue&) = delete;
  DeadlineQueue& operator=(const DeadlineQueue&) = delete;

  /// Thread safety: any thread.
  void add(JoinStateBase& task, std::chrono::nanoseconds timeout, PromiseBase* waiter,
           bool* timed_out);

  /// Entries not yet expired (for tests and metrics).
  [[nodiscard]] std::size_t size() const;

 private:
  struct Entry {
    Clock::time_point deadline;
    JoinStateBase* task;     // holds one reference
    PromiseBase* waiter;     // null: a task timeout; else an await_timeout
    bool* timed_out;
  };

  void arm(Clock::time_point at);       // on the strand
  void on_timer(std::error_code ec);    // on the strand
  static void expire(const Entry& e) noexcept;

  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer timer_;  // used on strand_ only
  mutable std::mutex mutex_;
  std::map<std::int64_t, std::deque<Entry>> lists_;  // guarded by mutex_
  Clock::time_point armed_at_ = Clock::time_point::max();  // guarded by mutex_
};

}  // namespace sluice::detail
