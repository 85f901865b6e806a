#include "deadlines.hpp"

#include <asio/post.hpp>
#include <vector>

#include "sluice/detail/join_state.hpp"
#include "sluice/detail/runtime_core.hpp"

namespace sluice::detail {

DeadlineQueue::DeadlineQueue(asio::io_context& io)
    : strand_(asio::make_strand(io)), timer_(strand_) {}

DeadlineQueue::~DeadlineQueue() {
  for (auto& [duration, list] : lists_) {
    for (auto& e : list) {
      e.task->release();
    }
  }
}

void DeadlineQueue::add(JoinStateBase& task, std::chrono::nanoseconds timeout,
                        PromiseBase* waiter, bool* timed_out) {
  task.add_ref();
  bool rearm = false;
  Clock::time_point deadline;
  {
    std::lock_guard lock(mutex_);
    // Read under the lock: each list stays sorted by deadline.
    deadline = Clock::now() + timeout;
    lists_[timeout.count()].push_back(Entry{deadline, &task, waiter, timed_out});
    if (deadline < armed_at_) {
      armed_at_ = deadline;
      rearm = true;
    }
  }
  if (rearm) {
    asio::post(strand_, [this, deadline] { arm(deadline); });
  }
}

std::size_t DeadlineQueue::size() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [duration, list] : lists_) {
    n += list.size();
  }
  return n;
}

void DeadlineQueue::arm(Clock::time_point at) {
  {
    std::lock_guard lock(mutex_);
    if (at != armed_at_) {
      return;  // superseded by an earlier deadline, or already handled
    }
  }
  timer_.expires_at(at);
  timer_.async_wait([this](std::error_code ec) { on_timer(ec); });
}

void DeadlineQueue::on_timer(std::error_code ec) {
  if (ec == asio::error::operation_aborted) {
    return;  // re-armed for an earlier deadline
  }
  std::vector<Entry> expired;
  Clock::time_point next = Clock::time_point::max();
  {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    for (auto it = lists_.begin(); it != lists_.end();) {
      auto& list = it->second;
      while (!list.empty() && list.front().deadline <= now) {
        expired.push_back(list.front());
        list.pop_front();
      }
      if (list.empty()) {
        it = lists_.erase(it);
      } else {
        next = std::min(next, list.front().deadline);
        ++it;
      }
    }
    armed_at_ = next;
  }
  for (const auto& e : expired) {
    expire(e);
  }
  if (next != Clock::time_point::max()) {
    arm(next);
  }
}

void DeadlineQueue::expire(const Entry& e) noexcept {
  if (e.waiter == nullptr) {
    if (!e.task->done()) {
      e.task->request_stop(errc::timed_out);
    }
  } else if (e.task->withdraw_waiter(e.waiter)) {
    *e.timed_out = true;
    e.task->request_stop(errc::timed_out);
    e.waiter->schedule();
  }
  e.task->release();
}

void add_task_deadline(RuntimeCore& core, JoinStateBase& task, std::chrono::nanoseconds timeout) {
  core.deadlines->add(task, timeout, nullptr, nullptr);
}

void add_wait_deadline(RuntimeCore& core, JoinStateBase& task, std::chrono::nanoseconds timeout,
                       PromiseBase* waiter, bool* timed_out) {
  core.deadlines->add(task, timeout, waiter, timed_out);
}

}  // namespace sluice::detail
