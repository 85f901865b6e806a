#include "deadlines.hpp"

#include <algorithm>
#include <asio/post.hpp>
#include <functional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "sched/pool.hpp"
#include "sluice/detail/join_state.hpp"
#include "sluice/detail/runtime_core.hpp"
#include "sluice/detail/scope_state.hpp"
#include "sluice/detail/sleep.hpp"

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

namespace {

constexpr std::int64_t kTickNs = 1'000'000;  // sleeps have 1 ms ticks

// The first tick at or after `ns`.
std::uint64_t tick_at_or_after(std::int64_t ns) noexcept {
  if (ns <= 0) {
    return 0;
  }
  return static_cast<std::uint64_t>(ns / kTickNs + (ns % kTickNs != 0 ? 1 : 0));
}

// When `tick` starts, in ns, saturated: the timer is never armed past the
// representable range (a far sleep is then re-examined, not lost).
std::int64_t tick_start_ns(std::uint64_t tick) noexcept {
  constexpr auto kMaxTick = static_cast<std::uint64_t>(INT64_MAX / 2 / kTickNs);
  return static_cast<std::int64_t>(std::min(tick, kMaxTick)) * kTickNs;
}

}  // namespace

std::size_t DeadlineQueue::shard_index() noexcept {
  // A shard per thread keeps the locks mostly uncontended.
  static thread_local const std::size_t mine =
      std::hash<std::thread::id>{}(std::this_thread::get_id()) % kShards;
  return mine;
}

void DeadlineQueue::add_task(JoinStateBase& task, std::chrono::nanoseconds timeout) {
  // Consecutive tasks of one spawner go to different shards: the task
  // finishing on another worker then rarely wants the lock the spawner holds.
  static thread_local std::size_t turn = shard_index();
  Shard& shard = shards_[turn++ % kShards];
  if (task.deadline_link == nullptr) {  // only tasks with a timeout pay for one
    task.deadline_link =
        new (frame_allocate(sizeof(JoinStateBase::DeadlineLink))) JoinStateBase::DeadlineLink{};
  }
  auto& link = *task.deadline_link;
  link.task = &task;
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
      list.tail->next = &link;
    } else {
      list.head = &link;
    }
    list.tail = &link;
    ++list.size;
  }
  try {
    note_deadline(deadline);  // not link's: the task may have finished already
  } catch (...) {
    remove_task(task);  // the caller reports the spawn as failed
    throw;
  }
}

void DeadlineQueue::unlink(List& list, Link& link) noexcept {
  if (link.prev != nullptr) {
    link.prev->next = link.next;
  } else {
    list.head = link.next;
  }
  if (link.next != nullptr) {
    link.next->prev = link.prev;
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
    unlink(*static_cast<List*>(link.list), link);
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

void* DeadlineQueue::sleep_shard() noexcept { return &sleep_shards_[shard_index()]; }

bool DeadlineQueue::add_sleep(SleepNode& node, std::int64_t deadline_ns) {
  const std::uint64_t tick = tick_at_or_after(deadline_ns);
  auto& shard = *static_cast<SleepShard*>(node.shard);
  std::lock_guard lock(shard.mutex);
  if (node.state() == SleepNode::cancelled) {
    return false;
  }
  if (tick <= shard.wheel.elapsed()) {
    node.set_state(SleepNode::fired);
    return false;
  }
  node.tick = tick;
  shard.wheel.insert(node);
  node.set_state(SleepNode::linked);
  // Still under the lock, so that no one can fire the node while this may
  // yet take it back (and the timer handler, which resets armed_at_ before
  // it reads the wheels, either sees the node or is re-armed here).
  try {
    note_deadline(tick_start_ns(tick));
  } catch (...) {
    shard.wheel.remove(node);
    node.set_state(SleepNode::idle);
    throw;
  }
  return true;
}

void DeadlineQueue::cancel_sleep(SleepNode& node) noexcept {
  auto& shard = *static_cast<SleepShard*>(node.shard);
  {
    std::lock_guard lock(shard.mutex);
    switch (node.state()) {
      case SleepNode::idle:
        node.set_state(SleepNode::cancelled);  // add_sleep will not link it
        return;
      case SleepNode::linked:
        shard.wheel.remove(node);
        node.set_state(SleepNode::cancelled);
        break;
      case SleepNode::fired:
      case SleepNode::cancelled:
        return;  // resumed, or being resumed, by whoever changed the state
    }
  }
  // Unlinked here, so only this thread resumes the task: the node stays
  // alive until then.
  node.waiter->schedule();
}

std::int64_t DeadlineQueue::expire_sleeps(std::int64_t now) noexcept {
  const auto now_tick = static_cast<std::uint64_t>(std::max<std::int64_t>(now, 0) / kTickNs);
  std::uint64_t next = TimerWheel::kNever;
  for (auto& shard : sleep_shards_) {
    SleepNode* first = nullptr;
    SleepNode* last = nullptr;
    {
      std::lock_guard lock(shard.mutex);
      shard.wheel.advance(now_tick, [&](TimerLink& link) {
        auto& node = static_cast<SleepNode&>(link);
        node.set_state(SleepNode::fired);
        node.next = nullptr;  // the links now chain the due nodes, in order
        if (last != nullptr) {
          last->next = &node;
        } else {
          first = &node;
        }
        last = &node;
      });
      next = std::min(next, shard.wheel.next_expiration());
    }
    // Fired under the lock, so no canceller resumes these: each is resumed
    // once, here (read the chain before: a resumed task frees its node).
    for (SleepNode* node = first; node != nullptr;) {
      auto* following = static_cast<SleepNode*>(node->next);
      node->waiter->schedule();
      node = following;
    }
  }
  return next == TimerWheel::kNever ? INT64_MAX : tick_start_ns(next);
}

void DeadlineQueue::forget_sleep(SleepNode& node) noexcept {
  auto& shard = *static_cast<SleepShard*>(node.shard);
  std::lock_guard lock(shard.mutex);
  if (node.state() == SleepNode::linked) {
    shard.wheel.remove(node);
  }
  node.set_state(SleepNode::cancelled);
}

void cancel_sleep(SleepNode& node) noexcept { DeadlineQueue::cancel_sleep(node); }

void SleepAwaiter::on_scope_stop(StopEntry* entry) noexcept {
  cancel_sleep(static_cast<SleepAwaiter*>(entry)->node_);
}

bool SleepAwaiter::suspend(PromiseBase& promise) {
  node_.waiter = &promise;
  TaskContext* ctx = promise.ctx_;
  auto* core = ctx != nullptr && ctx->pool != nullptr
                   ? static_cast<RuntimeCore*>(ctx->pool->owner())
                   : nullptr;
  if (core == nullptr) {
    // Without a context the timer could not tell which pool resumes it.
    throw std::logic_error(
        "sluice::sleep_for: awaited outside a task spawned on a Scope or run by block_on");
  }
  if (ctx->stop_requested()) {
    return false;  // finish() throws the stop error
  }
  const auto deadline_ns = static_cast<std::int64_t>(node_.tick);
  if (deadline_ns <= DeadlineQueue::Clock::now().time_since_epoch().count()) {
    return false;
  }
  DeadlineQueue& queue = *core->deadlines;
  node_.shard = queue.sleep_shard();
  if (ctx != nullptr) {
    kept_ = ctx->enter_sleep(&node_);
    node_.owner_flags |= SleepNode::entered;
    if (ScopeState* scope = ctx->scope()) {
      // Runs cancel_sleep at once if the scope's stop has fired already.
      if (scope->stop_waits().add(*this)) {
        node_.owner_flags |= SleepNode::in_stop_list;
      }
    }
    if (ctx->stop_requested()) {  // seq_cst, after enter_sleep: see request_stop
      cancel_sleep(node_);        // not linked yet: only marks it cancelled
    }
  }
  try {
    // True: linked, and from here on another thread may resume the task,
    // so nothing below touches the frame.
    return queue.add_sleep(node_, deadline_ns);
  } catch (...) {
    finish_cleanup();
    throw;
  }
}

void SleepAwaiter::finish_cleanup() noexcept {
  leave_stop_list();  // waits for a scope stop cancelling it on another thread
  if ((node_.owner_flags & SleepNode::entered) != 0) {
    node_.waiter->ctx_->leave_sleep(&node_, kept_);
    node_.owner_flags &= ~SleepNode::entered;
  }
}

void SleepAwaiter::finish() {
  finish_cleanup();
  TaskContext* ctx = node_.waiter->ctx_;
  if (node_.state() == SleepNode::cancelled || ctx->stop_requested()) {
    throw_error(ctx->stop_error());
  }
}

void SleepAwaiter::leave_stop_list() noexcept {
  if ((node_.owner_flags & SleepNode::in_stop_list) != 0) {
    node_.waiter->ctx_->scope()->stop_waits().remove(*this);
    node_.owner_flags &= ~SleepNode::in_stop_list;
  }
}

void SleepAwaiter::abandon() noexcept {
  leave_stop_list();
  DeadlineQueue::forget_sleep(node_);
  finish_cleanup();  // gives the context back what the sleep kept aside
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
  const auto next = std::min({expire_tasks(now), expire_waits(now), expire_sleeps(now)});
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
      while (list.head != nullptr && list.head->deadline_ns <= now) {
        JoinStateBase& task = *list.head->task;
        unlink(list, *list.head);
        // Still linked means still running: a finishing task unlinks itself
        // under this lock before its state can be freed.
        task.request_stop(errc::timed_out);
      }
      if (list.head != nullptr) {
        next = std::min(next, list.head->deadline_ns);
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
