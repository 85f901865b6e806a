#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stop_token>

#include "sluice/detail/admission.hpp"
#include "sluice/detail/scheduler.hpp"

namespace sluice::detail {

class Pool;
class PromiseBase;
class JoinStateBase;
class DeadlineQueue;
class FileRingHolder;

/// Task outcomes and admission events, counted per worker.
enum class Event : std::uint8_t { spawned, completed, failed, cancelled, timed_out, rejected };
inline constexpr std::size_t kEventCount = 6;

/// Counts `e` for a thread that is not one of `pool`'s workers.
void count_shared_event(Pool& pool, Event e) noexcept;

/// Counts `e` on the calling worker's counters (or the shared ones).
inline void count_event(Pool& pool, Event e) noexcept {
  const WorkerId& me = tls_worker_id;
  if (me.pool != &pool) {
    count_shared_event(pool, e);
    return;
  }
  auto& c = me.events[static_cast<std::size_t>(e)];
  // release: a reader that sees this count sees what led to it (a task's
  // spawn is counted before its completion can be). One writer: no RMW.
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

/// What scopes and tasks need from their Runtime. Owned by Runtime::Impl.
///
/// Two stop sources drive shutdown: `closing` stops admission (new spawns
/// fail with shutting_down, waiting producers are woken with it) and
/// `stopping` asks every task to stop. Every top-level scope links both to
/// its own; nested scopes link to their parent's.
struct RuntimeCore {
  Pool* pool = nullptr;
  asio::io_context* io = nullptr;
  std::optional<Admission> admission;  // Config::max_pending
  std::optional<std::chrono::nanoseconds> task_timeout;
  std::stop_source closing;
  std::stop_source stopping;
  DeadlineQueue* deadlines = nullptr;
  FileRingHolder* file_ring = nullptr;  // sluice's own io_uring, made on first use
  // Reads in flight on Asio's io_uring (File::read_some_at): see
  // kAsioRingReads in lib/io/file.cpp.
  Admission* asio_ring_reads = nullptr;
};

/// Cancels `task` with timed_out at `timeout` from now unless it finished
/// (remove_task_deadline, called as it finishes, takes it out again).
void add_task_deadline(RuntimeCore& core, JoinStateBase& task, std::chrono::nanoseconds timeout);
void remove_task_deadline(RuntimeCore& core, JoinStateBase& task) noexcept;

/// At `timeout` from now, if `waiter` still waits for `task`: withdraws it,
/// sets *timed_out, cancels the task with timed_out and resumes the waiter.
void add_wait_deadline(RuntimeCore& core, JoinStateBase& task, std::chrono::nanoseconds timeout,
                       PromiseBase* waiter, bool* timed_out);

}  // namespace sluice::detail
