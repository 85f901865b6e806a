#pragma once

#include <coroutine>
#include <cstddef>
#include <string>

#include "sluice/detail/join_state.hpp"
#include "sluice/detail/scope_state.hpp"
#include "sluice/join_handle.hpp"
#include "sluice/task.hpp"

namespace sluice {

class Runtime;

/// Options for a Scope.
struct ScopeOptions {
  std::string name;  ///< for logs and metrics
};

/// Structured concurrency: every task spawned in a scope is finished before
/// the scope ends.
///
/// `co_await scope.spawn(task)` starts the task on the pool and returns its
/// JoinHandle; `spawn_with_handle` does the same without suspending;
/// `spawn_detached` keeps no handle (a failure is counted and logged).
/// `co_await scope.join()` waits for every child, including children spawned
/// while joining.
///
/// Thread safety: spawn, pending and join may be called from any thread,
/// inside or outside the pool; one joiner at a time.
class Scope {
 public:
  explicit Scope(Runtime& runtime, ScopeOptions options = {});
  /// A scope nested in `parent`, on the same runtime.
  explicit Scope(Scope& parent, ScopeOptions options = {});
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  /// Waits for the children still running. Must not run on one of the pool's
  /// workers with children pending (that would wait on itself): there,
  /// `co_await join()` first; doing otherwise terminates with a message.
  ~Scope();

  template <class T>
  struct SpawnAwaiter {
    Scope* scope;
    Task<T> task;

    static bool await_ready() noexcept { return true; }
    static void await_suspend(std::coroutine_handle<>) noexcept {}
    JoinHandle<T> await_resume() { return scope->spawn_with_handle(std::move(task)); }
  };

  /// Starts `task` on the pool; `co_await` it to get the JoinHandle.
  template <class T>
  [[nodiscard]] SpawnAwaiter<T> spawn(Task<T> task) {
    return SpawnAwaiter<T>{this, std::move(task)};
  }

  /// Starts `task` on the pool and returns its handle at once.
  template <class T>
  JoinHandle<T> spawn_with_handle(Task<T> task) {
    return JoinHandle<T>(start(std::move(task), /*refs=*/2));
  }

  /// Starts `task` with no handle.
  template <class T>
  void spawn_detached(Task<T> task) {
    start(std::move(task), /*refs=*/1);
  }

  /// Completes when no child is pending.
  Task<void> join();

  /// Children spawned and not yet finished.
  [[nodiscard]] std::size_t pending() const noexcept { return state_.pending(); }
  [[nodiscard]] const std::string& name() const noexcept { return options_.name; }
  [[nodiscard]] Runtime& runtime() const noexcept { return *runtime_; }

 private:
  template <class T>
  detail::JoinState<T>* start(Task<T> task, std::uint32_t refs);

  template <class T>
  static std::coroutine_handle<> finish(detail::PromiseBase& base) noexcept;

  static void report_detached_failure(const std::exception_ptr& e) noexcept;
  static void check_task(bool valid);

  Runtime* runtime_;
  ScopeOptions options_;
  detail::ScopeState state_;
};

template <class T>
detail::JoinState<T>* Scope::start(Task<T> task, std::uint32_t refs) {
  check_task(task.valid());
  auto* js = new detail::JoinState<T>(state_.pool(), &state_, refs);
  auto handle = task.release();
  auto& promise = handle.promise();
  promise.ctx_ = js;
  promise.on_final_ = &Scope::finish<T>;
  state_.add_child();
  promise.schedule();
  return js;
}

// Runs at the spawned task's final suspend: publishes the outcome, frees the
// frame, and hands the worker to whoever waited (the handle's awaiter first,
// then the scope's joiner).
template <class T>
std::coroutine_handle<> Scope::finish(detail::PromiseBase& base) noexcept {
  auto& promise = static_cast<detail::Promise<T>&>(base);
  auto* js = static_cast<detail::JoinState<T>*>(promise.ctx_);
  try {
    js->result.emplace(promise.result_.take_result());
  } catch (...) {  // moving the value threw
    js->result.emplace(Result<T>::failure(std::current_exception()));
  }
  std::coroutine_handle<detail::Promise<T>>::from_promise(promise).destroy();
  if (js->detached() && !js->result->has_value()) {
    report_detached_failure(js->result->exception());  // no handle: no one else reads it
  }

  // The scope first: a handle that reads done() may let its owner destroy
  // the scope, so the scope is not touched after complete().
  detail::PromiseBase* joiner = js->scope()->finish_child();
  detail::PromiseBase* waiter = js->complete();
  js->release();

  std::coroutine_handle<> next = std::noop_coroutine();
  if (waiter != nullptr) {
    next = waiter->handle();
  }
  if (joiner != nullptr) {
    if (waiter != nullptr) {
      joiner->schedule();
    } else {
      next = joiner->handle();
    }
  }
  return next;
}

}  // namespace sluice
