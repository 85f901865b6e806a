#pragma once

#include <asio/io_context.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "sluice/config.hpp"
#include "sluice/executor.hpp"
#include "sluice/task.hpp"

namespace sluice {

/// Owns the worker pool and the reactor.
///
/// Construction starts `threads` workers and `io_threads` reactor threads;
/// destruction stops the reactor first (so no completion is posted into a
/// dead pool), then lets the workers drain what is queued and joins them.
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

  /// Number of worker threads.
  [[nodiscard]] std::size_t threads() const noexcept;
  [[nodiscard]] const Config& config() const noexcept;

  /// The pool, for sluice's own templates.
  [[nodiscard]] detail::Pool& pool() noexcept { return *pool_; }

 private:
  struct Impl;

  static void check_block_on(bool valid);

  std::unique_ptr<Impl> impl_;
  detail::Pool* pool_;
};

namespace detail {

template <class T>
struct BlockOnState : TaskContext {
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
  detail::BlockOnState<T> state;
  state.pool = pool_;
  auto handle = task.release();
  handle.promise().ctx_ = &state;
  handle.promise().on_final_ = &detail::finish_block_on<T>;
  handle.promise().schedule();
  std::unique_lock lock(state.mutex);
  state.cv.wait(lock, [&] { return state.result.has_value(); });
  return std::move(*state.result).value();
}

}  // namespace sluice
