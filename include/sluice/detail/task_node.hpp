#pragma once

namespace sluice::detail {

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
