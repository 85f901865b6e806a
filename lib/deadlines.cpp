#include "deadlines.hpp"

#include <asio/post.hpp>
#include <functional>
#include <thread>
#include <vector>

#include "sluice/detail/join_state.hpp"
#include "sluice/detail/runtime_core.hpp"

namespace sluice::detail {

DeadlineQueue::DeadlineQueue(asio::io_context& io)
    : strand_(asio::make_strand(io)), timer_(strand_) {}

DeadlineQueue::~DeadlineQueue() {
  for (auto& [duration, list] : waits_) {
    for (auto& e : list) {
      e.task->release();
    }
  }
}

std::int64_t DeadlineQueue::now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void DeadlineQueue::add_task(JoinStateBase& task, std::chrono::nanoseconds timeout) {
  // A shard per spawning thread keeps the locks mostly uncontended.
  static thread_local const std::size_t mine =
      std::hash<std::thread::id>{}(std::this_thread::get_id()) % kShards;
  Shard& shard = shards_[mine];
  if (task.deadline_link == nullptr) {  // only tasks with a timeout pay for one
    task.deadline_link =
        new (frame_allocate(sizeof(JoinStateBase::DeadlineLink))) JoinStateBase::DeadlineLink{};
  }
  auto& link = *task.deadline_link;
  std::int64_t deadline = 0;
  {
    std::lock_guard lock(shard.mutex);
    List& list = shard.lists[timeout.count()];
    // Read under the lock: each list stays sorted by deadline.
    deadline = now_ns() + timeout.count();
    link.deadline_ns = deadline;
    link.shard = &shard;
    link.list = &list;
    link.prev = list.tail;
    link.next = nullptr;
    if (list.tail != nullptr) {
      list.tail->deadline_link->next = &task;
    } else {
      list.head = &task;
    }
    list.tail = &task;
    ++list.size;
  }
  try {
    note_deadline(deadline);  // not link's: the task may have finished already
  } catch (...) {
    remove_task(task);  // the caller reports the spawn as failed
    throw;
  }
}

void DeadlineQueue::unlink(List& list, JoinStateBase& task) noexcept {
  auto& link = *task.deadline_link;
  if (link.prev != nullptr) {
    link.prev->deadline_link->next = link.next;
  } else {
    list.head = link.next;
  }
  if (link.next != nullptr) {
    link.next->deadline_link->prev = link.prev;
  } else {
    list.tail = link.prev;
  }
  link.prev = link.next = nullptr;
  link.list = nullptr;
  --list.size;
}

void DeadlineQueue::remove_task(JoinStateBase& task) noexcept {
  auto& link = *task.deadline_link;
  auto* shard = static_cast<Shard*>(link.shard);
  std::lock_guard lock(shard->mutex);
  if (link.list != nullptr) {  // null: it already expired
    unlink(*static_cast<List*>(link.list), task);
  }
}

void DeadlineQueue::add_wait(JoinStateBase& task, std::chrono::nanoseconds timeout,
                             PromiseBase* waiter, bool* timed_out) {
  task.add_ref();
  std::int64_t deadline = 0;
  {
    std::lock_guard lock(waits_mutex_);
    deadline = now_ns() + timeout.count();
    waits_[timeout.count()].push_back(WaitEntry{deadline, &task, waiter, timed_out});
  }
  note_deadline(deadline);
}

// Lowers the armed deadline to `deadline_ns` if it is earlier, and arms.
void DeadlineQueue::note_deadline(std::int64_t deadline_ns) {
  auto armed = armed_at_.load(std::memory_order_acquire);
  while (deadline_ns < armed) {
    if (armed_at_.compare_exchange_weak(armed, deadline_ns, std::memory_order_acq_rel)) {
      try {
        asio::post(strand_, [this, deadline_ns] { arm(deadline_ns); });
      } catch (...) {
        // Nothing will arm deadline_ns: give the earlier claim back, unless
        // an even earlier deadline replaced ours meanwhile.
        auto ours = deadline_ns;
        armed_at_.compare_exchange_strong(ours, armed, std::memory_order_acq_rel);
        throw;
      }
      return;
    }
  }
}

void DeadlineQueue::arm(std::int64_t at_ns) {
  if (armed_at_.load(std::memory_order_acquire) != at_ns) {
    return;  // superseded by an earlier deadline, or already handled
  }
  timer_.expires_at(Clock::time_point(std::chrono::nanoseconds(at_ns)));
  timer_.async_wait([this](std::error_code ec) { on_timer(ec); });
}

void DeadlineQueue::on_timer(std::error_code ec) {
  if (ec == asio::error::operation_aborted) {
    return;  // re-armed for an earlier deadline
  }
  // Reset first: deadlines added from now on arm the timer themselves.
  armed_at_.store(INT64_MAX, std::memory_order_release);
  const auto now = now_ns();
  const auto next = std::min(expire_tasks(now), expire_waits(now));
  if (next != INT64_MAX) {
    note_deadline(next);
  }
}

// Stops the tasks whose deadline passed; returns the earliest one left.
std::int64_t DeadlineQueue::expire_tasks(std::int64_t now) noexcept {
  std::int64_t next = INT64_MAX;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    for (auto& [duration, list] : shard.lists) {
      while (list.head != nullptr && list.head->deadline_link->deadline_ns <= now) {
        JoinStateBase& task = *list.head;
        unlink(list, task);
        // Still linked means still running: a finishing task unlinks itself
        // under this lock before its state can be freed.
        task.request_stop(errc::timed_out);
      }
      if (list.head != nullptr) {
        next = std::min(next, list.head->deadline_link->deadline_ns);
      }
    }
  }
  return next;
}

std::int64_t DeadlineQueue::expire_waits(std::int64_t now) noexcept {
  std::vector<WaitEntry> expired;
  std::int64_t next = INT64_MAX;
  {
    std::lock_guard lock(waits_mutex_);
    for (auto it = waits_.begin(); it != waits_.end();) {
      auto& list = it->second;
      while (!list.empty() && list.front().deadline_ns <= now) {
        expired.push_back(list.front());
        list.pop_front();
      }
      if (list.empty()) {
        it = waits_.erase(it);
      } else {
        next = std::min(next, list.front().deadline_ns);
        ++it;
      }
    }
  }
  for (const auto& e : expired) {
    if (e.task->withdraw_waiter(e.waiter)) {
      *e.timed_out = true;
      e.task->request_stop(errc::timed_out);
      e.waiter->schedule();
    }
    e.task->release();
  }
  return next;
}

std::size_t DeadlineQueue::size() const {
  std::size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    for (const auto& [duration, list] : shard.lists) {
      n += list.size;
    }
  }
  std::lock_guard lock(waits_mutex_);
  for (const auto& [duration, list] : waits_) {
    n += list.size();
  }
  return n;
}

void add_task_deadline(RuntimeCore& core, JoinStateBase& task, std::chrono::nanoseconds timeout) {
  core.deadlines->add_task(task, timeout);
}

void remove_task_deadline(RuntimeCore& core, JoinStateBase& task) noexcept {
  core.deadlines->remove_task(task);
}

void add_wait_deadline(RuntimeCore& core, JoinStateBase& task, std::chrono::nanoseconds timeout,
                       PromiseBase* waiter, bool* timed_out) {
  core.deadlines->add_wait(task, timeout, waiter, timed_out);
}

}  // namespace sluice::detail
