#pragma once

#include "sluice/detail/task_node.hpp"

namespace sluice::detail {

class Pool;

/// Queues `node` on `pool` (see Pool::schedule). Compiled in lib/.
void schedule(Pool& pool, TaskNode* node, bool yield = false) noexcept;

/// The pool whose worker is the calling thread, or null.
Pool* current_pool() noexcept;

}  // namespace sluice::detail
