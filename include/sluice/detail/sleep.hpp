#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>

#include "sluice/detail/promise.hpp"
#include "sluice/detail/stop_list.hpp"
#include "sluice/detail/timer_link.hpp"

namespace sluice::detail {

class TaskContext;

/// A sleeping task's entry in its runtime's timer wheels (lib/deadlines.hpp).
/// Lives in the sleeping coroutine's frame, inside its SleepAwaiter, so every
/// byte here is a byte of every sleeping task.
struct SleepNode : TimerLink {
  // owner_state: guarded by the shard's mutex once the node is shared.
  enum State : std::uint8_t { idle, linked, fired, cancelled };
  // owner_flags: the awaiting task's own bookkeeping.
  enum Flags : std::uint8_t { entered = 1, in_stop_list = 2 };

  [[nodiscard]] State state() const noexcept { return static_cast<State>(owner_state); }
  void set_state(State s) noexcept { owner_state = s; }

  PromiseBase* waiter = nullptr;  // set first: its context is the task's
  void* shard = nullptr;          // the wheel's shard; set before the node is shared
};

/// Ends `node`'s sleep early: unlinks it and resumes its task, unless it
/// already fired. From any thread. Compiled in lib/deadlines.cpp.
void cancel_sleep(SleepNode& node) noexcept;

/// `co_await sleep_until(t)`. Suspends the task in a timer wheel of its
/// runtime, so a sleep costs no allocation and no reactor round trip unless
/// it becomes the earliest deadline. A stop of the task (its handle, its
/// timeout, its scope) ends the sleep at once with the task's stop error:
/// the task's own stop through its context's wait word, its scope's through
/// the entry in the scope's StopList.
class SleepAwaiter : private StopEntry {
 public:
  explicit SleepAwaiter(std::chrono::steady_clock::time_point deadline) noexcept
      : StopEntry(&on_scope_stop) {
    // Kept in the node's tick (as ns) until suspend() makes it a wheel tick.
    node_.tick = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count());
  }
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  ~SleepAwaiter() {
    if ((node_.owner_flags & SleepNode::entered) != 0) {
      abandon();  // the frame is destroyed while it sleeps: nothing may resume it
    }
  }

  static bool await_ready() noexcept { return false; }
  template <SluicePromise P>
  bool await_suspend(std::coroutine_handle<P> h) {
    return suspend(h.promise());
  }
  void await_resume() { finish(); }

 private:
  // Compiled in lib/deadlines.cpp.
  static void on_scope_stop(StopEntry* entry) noexcept;
  bool suspend(PromiseBase& promise);
  void finish();
  void finish_cleanup() noexcept;
  void leave_stop_list() noexcept;
  void abandon() noexcept;

  SleepNode node_;
  std::uintptr_t kept_ = 0;  // what the task's context keeps aside while asleep
};

}  // namespace sluice::detail
