#pragma once

#include <atomic>
#include <cstdint>
#include <stop_token>

#include "sluice/error.hpp"

namespace sluice::detail {

class Pool;
class ScopeState;
class IoBridge;
struct OwnStop;
struct SleepNode;

/// What every task in one spawned tree shares, owned by its root (a
/// JoinState, or a block_on waiter); nested tasks inherit a pointer to it
/// when they are awaited.
///
/// Stop: a task is asked to stop by its own handle (cancel, a timeout) or
/// through its scope's std::stop_source. The first reason recorded wins, so
/// an outcome is reported as cancelled or timed_out consistently.
///
/// Thread safety: request_stop and stop_requested from any thread; io_bridge
/// and stop_token only from the task itself.
class TaskContext {
 public:
  TaskContext(Pool* runs_on, ScopeState* scope) noexcept : pool(runs_on), scope_(scope) {}
  TaskContext(const TaskContext&) = delete;
  TaskContext& operator=(const TaskContext&) = delete;

  Pool* pool;

  [[nodiscard]] ScopeState* scope() const noexcept { return scope_; }

  /// Records `reason` (cancelled or timed_out) unless one is recorded, and
  /// reaches the I/O operation in flight and the task's std::stop_token.
  void request_stop(errc reason) noexcept;

  /// Stop asked by the task's handle, a timeout, or its scope.
  [[nodiscard]] bool stop_requested() const noexcept;

  /// The error a stopped task ends with: its own reason, else cancelled.
  [[nodiscard]] errc stop_error() const noexcept;

  /// The bridge to the task's in-flight Asio operation (made on first use).
  IoBridge& io_bridge();

  /// A std::stop_token that fires on any stop of this task (made on first use).
  std::stop_token stop_token();

  /// The sleep the task is entering (published before the node is in a
  /// wheel), and taken back once it resumes; request_stop cancels it in
  /// between. enter_sleep returns what the sleep keeps aside meanwhile, to
  /// give back to leave_sleep.
  std::uintptr_t enter_sleep(SleepNode* node) noexcept;
  void leave_sleep(SleepNode* node, std::uintptr_t kept) noexcept;

 protected:
  ~TaskContext();

 private:
  ScopeState* scope_;  // null for block_on roots
  // What a stop reaches the task's wait through: 0 (nothing yet); its
  // IoBridge (made by the first use_task operation, freed with the context);
  // or, while the task sleeps, its SleepNode | kSleeping, with the bridge
  // kept aside by the sleep (a task waits for one thing at a time, so one
  // word serves both). Written by the task; bit kCancelling is set by
  // request_stop while it cancels a sleep, which keeps the task from leaving
  // the sleep, and freeing the node, meanwhile.
  static constexpr std::uintptr_t kCancelling = 1;
  static constexpr std::uintptr_t kSleeping = 2;
  std::atomic<std::uintptr_t> wait_{0};
  // Written once by the task (first stop_token()); read by request_stop.
  std::atomic<OwnStop*> own_stop_{nullptr};
  // Written once (CAS) by whoever stops the task first; read by the task.
  // Last, so that a derived class's small fields can use the padding after it.
  std::atomic<std::uint8_t> stop_reason_{0};
};

}  // namespace sluice::detail
