#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "sluice/config.hpp"
#include "sluice/detail/runtime_core.hpp"
#include "sluice/executor.hpp"
#include "sluice/metrics.hpp"
#include "sluice/task.hpp"

namespace sluice {

/// Calls a function with the runtime's metrics at a fixed interval, on a
/// thread of its own, until destroyed (RAII). Move-only.
class Monitor {
 public:
  Monitor() noexcept;
  Monitor(Monitor&&) noexcept;
  Monitor& operator=(Monitor&&) noexcept;
  ~Monitor();
  /// Stops the calls; after it returns, the function is not running and will
  /// not be called again.
  void stop() noexcept;

 private:
  friend class Runtime;
  struct State;
  explicit Monitor(std::unique_ptr<State> state) noexcept;
  std::unique_ptr<State> state_;
};

/// Owns the worker pool and the reactor.
///
/// Construction starts `threads` workers and `io_threads` reactor threads.
/// Destruction shuts down if that has not happened (waiting for every task
/// to finish, with no deadline), then stops the reactor first (so no
/// completion is posted into a dead pool) and joins the workers.
///
/// Thread safety: every member may be called from any thread, except that
/// block_on must not be called from one of the runtime's own workers.
class Runtime {
 public:
  explicit Runtime(Config config = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  Runtime(Runtime&&) = delete;
  Runtime& operator=(Runtime&&) = delete;

  /// An Asio executor that runs work on the pool.
  [[nodiscard]] Executor get_executor() noexcept;

  /// The reactor: create sockets, timers and files on it.
  [[nodiscard]] asio::io_context& io_context() noexcept;

  /// Runs `task` on the pool and blocks the calling thread until it ends;
  /// returns its value or rethrows its exception.
  /// Throws std::logic_error when called from a sluice worker thread (it
  /// would block the worker the task may need), never deadlocks.
  template <class T>
  T block_on(Task<T> task);

  /// Graceful shutdown: stops admitting (spawns fail with shutting_down,
  /// producers waiting for a slot are woken with it), lets tasks in flight
  /// finish until `deadline`, then requests stop on what is left and waits
  /// Config::shutdown_grace for it; then stops the reactor and the workers.
  /// Logs what it had to cancel. Returns true only if every task finished by
  /// itself. A second call returns the first call's result. From a worker
  /// thread it throws std::logic_error: use `co_await shutdown(d)` there.
  bool shutdown_timeout(std::chrono::nanoseconds deadline);

  /// The same drain as shutdown_timeout, awaitable from a task; the reactor
  /// and workers then stop when the Runtime is destroyed. The awaiting task
  /// itself is not waited for.
  Task<bool> shutdown(std::chrono::nanoseconds deadline);

  /// A consistent snapshot of the counters (see Metrics).
  [[nodiscard]] Metrics metrics() const;

  /// Calls `fn(metrics())` every `every` until the Monitor is destroyed.
  /// Throws std::invalid_argument for a period <= 0 or an empty function.
  [[nodiscard]] Monitor start_monitoring(std::chrono::nanoseconds every,
                                         std::function<void(const Metrics&)> fn);

  /// Number of worker threads.
  [[nodiscard]] std::size_t threads() const noexcept;
  [[nodiscard]] const Config& config() const noexcept;

  /// For sluice's own templates.
  [[nodiscard]] detail::Pool& pool() noexcept { return *pool_; }
  [[nodiscard]] detail::RuntimeCore& core() noexcept;

 private:
  struct Impl;

  void check_block_on(bool valid) const;

  std::unique_ptr<Impl> impl_;
  detail::Pool* pool_;
};

namespace detail {

template <class T>
struct BlockOnState : TaskContext {
  explicit BlockOnState(Pool* runs_on) noexcept : TaskContext(runs_on, nullptr) {}
  ~BlockOnState() = default;

  std::mutex mutex;
  std::condition_variable cv;
  std::optional<Result<T>> result;  // guarded by mutex
};

template <class T>
std::coroutine_handle<> finish_block_on(PromiseBase& base) noexcept {
  auto& promise = static_cast<Promise<T>&>(base);
  auto* state = static_cast<BlockOnState<T>*>(promise.ctx_);
  std::optional<Result<T>> outcome;
  try {
    outcome.emplace(promise.result_.take_result());
  } catch (...) {
    outcome.emplace(Result<T>::failure(std::current_exception()));
  }
  std::coroutine_handle<Promise<T>>::from_promise(promise).destroy();
  // Notify under the lock: the waiter owns `state` and may destroy it as
  // soon as it can take the lock again.
  std::lock_guard lock(state->mutex);
  state->result.emplace(std::move(*outcome));
  state->cv.notify_one();
  return std::noop_coroutine();
}

}  // namespace detail

template <class T>
T Runtime::block_on(Task<T> task) {
  check_block_on(task.valid());
  detail::BlockOnState<T> state(pool_);
  auto handle = task.release();
  handle.promise().ctx_ = &state;
  handle.promise().on_final_ = &detail::finish_block_on<T>;
  handle.promise().schedule();
  std::unique_lock lock(state.mutex);
  state.cv.wait(lock, [&] { return state.result.has_value(); });
  return std::move(*state.result).value();
}

}  // namespace sluice
