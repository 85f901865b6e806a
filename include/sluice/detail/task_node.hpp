#pragma once

#include <cstdint>

namespace sluice::detail {

/// Where a node scheduled from one of its pool's workers goes. From any
/// other thread it goes to the pool's injector.
enum class Placement : std::uint8_t {
  next,    // the worker's LIFO slot: runs next on this worker
  shared,  // the worker's queue, where idle workers are woken to take it
  yield,   // the worker's yielded queue: behind everything queued there
};

/// What the scheduler runs: an intrusive header with a function pointer.
/// The pool knows nothing else about the work; a coroutine promise embeds
/// one (run = resume), and so does a posted Asio handler (run = invoke).
struct TaskNode {
  using RunFn = void (*)(TaskNode*) noexcept;

  RunFn run = nullptr;
  /// Link used while the node sits in the injector; owned by whichever queue
  /// holds the node.
  TaskNode* next = nullptr;
};

}  // namespace sluice::detail
