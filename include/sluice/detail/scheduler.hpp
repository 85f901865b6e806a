#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "sluice/detail/task_node.hpp"

namespace sluice::detail {

class Pool;

/// Queues `node` on `pool` (see Pool::schedule). Compiled in lib/.
void schedule(Pool& pool, TaskNode* node, Placement where = Placement::next) noexcept;

/// The pool whose worker is the calling thread, or null.
Pool* current_pool() noexcept;

/// The calling thread's worker, for per-worker counters in headers: its pool
/// (null on other threads), index and event counters. Set by the worker
/// itself.
struct WorkerId {
  Pool* pool = nullptr;
  std::size_t index = 0;
  // The worker's event counters (count_event), indexed by Event; written
  // by this worker only, summed by Pool::counters().
  std::atomic<std::uint64_t>* events = nullptr;
};
extern constinit thread_local WorkerId tls_worker_id;

}  // namespace sluice::detail
