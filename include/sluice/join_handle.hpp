#pragma once

#include <chrono>
#include <coroutine>
#include <stdexcept>
#include <utility>

#include "sluice/detail/join_state.hpp"
#include "sluice/detail/scope_state.hpp"
#include "sluice/result.hpp"
#include "sluice/task.hpp"

namespace sluice {

class Scope;

/// The owning end of a spawned task's outcome. Move-only.
///
/// `co_await handle` yields the task's value or rethrows its exception.
/// Destroying a handle without awaiting it detaches the task: it still runs
/// to completion and is counted by its scope.
///
/// Thread safety: one thread uses a handle at a time. Await it once: a
/// second await throws std::logic_error.
/// cancel() may be called from any thread.
template <class T>
class JoinHandle {
 public:
  JoinHandle() noexcept = default;
  JoinHandle(JoinHandle&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  JoinHandle(const JoinHandle&) = delete;
  JoinHandle& operator=(const JoinHandle&) = delete;
  ~JoinHandle() { reset(); }

  /// Whether the task has finished (its outcome is ready).
  [[nodiscard]] bool done() const noexcept { return state_ != nullptr && state_->done(); }
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }

  struct Awaiter {
    detail::JoinState<T>* state;

    [[nodiscard]] bool await_ready() const noexcept { return state->done(); }
    template <detail::SluicePromise P>
    bool await_suspend(std::coroutine_handle<P> waiter) noexcept {
      return state->set_waiter(&waiter.promise());
    }
    T await_resume() { return untaken().take(); }
    Result<T> take_result() { return untaken().take_result(); }
    detail::JoinState<T>& untaken() const {
      if (!state->has_result()) {
        throw std::logic_error("sluice::JoinHandle: the result was already taken (await once)");
      }
      return *state;
    }
  };

  /// The task's value; rethrows its exception.
  Awaiter operator co_await() const& { return Awaiter{checked()}; }

  /// The task's outcome as a value, never throwing for the task's failure.
  Task<Result<T>> result() {
    Awaiter awaiter{checked()};
    if (!awaiter.await_ready()) {
      co_await ResultAwaiter{awaiter};
    }
    co_return awaiter.take_result();
  }

  /// The outcome, or a timed_out Result after `timeout`, in which case the
  /// task is cancelled (it ends timed_out unless it finishes first). Throws
  /// std::invalid_argument for a timeout <= 0.
  Task<Result<T>> await_timeout(std::chrono::nanoseconds timeout) {
    if (timeout <= std::chrono::nanoseconds::zero()) {
      throw std::invalid_argument("sluice::JoinHandle::await_timeout: timeout must be > 0");
    }
    Awaiter awaiter{checked()};
    if (!awaiter.await_ready()) {
      bool timed_out = false;
      co_await TimeoutAwaiter{awaiter.state, timeout, &timed_out};
      if (timed_out) {
        co_return Result<T>::failure(make_error_code(errc::timed_out));
      }
    }
    co_return awaiter.take_result();
  }

  /// Asks the task to stop: the Asio operation it awaits through use_task
  /// completes at once, and it ends cancelled (unless it finishes first).
  /// Cancelling a finished task, or cancelling twice, does nothing.
  void cancel() noexcept {
    if (state_ != nullptr && !state_->done()) {
      state_->request_stop(errc::cancelled);
    }
  }

 private:
  friend class Scope;
  explicit JoinHandle(detail::JoinState<T>* state) noexcept : state_(state) {}

  struct ResultAwaiter {
    Awaiter& inner;
    [[nodiscard]] bool await_ready() const noexcept { return inner.await_ready(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      return inner.await_suspend(h);
    }
    void await_resume() const noexcept {}
  };

  struct TimeoutAwaiter {
    detail::JoinState<T>* state;
    std::chrono::nanoseconds timeout;
    bool* timed_out;

    static bool await_ready() noexcept { return false; }
    template <detail::SluicePromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      // Once we are registered, the completion may resume us (and our owner
      // may drop the handle and the scope) at any time: take what the
      // deadline needs first. It only acts if it can withdraw us.
      detail::RuntimeCore& core = state->scope()->core();
      detail::JoinState<T>* s = state;
      s->add_ref();
      const bool waiting = s->set_waiter(&h.promise());
      if (waiting) {
        detail::add_wait_deadline(core, *s, timeout, &h.promise(), timed_out);
      }
      s->release();
      return waiting;
    }
    static void await_resume() noexcept {}
  };

  detail::JoinState<T>* checked() const {
    if (state_ == nullptr) {
      throw std::logic_error("sluice::JoinHandle: awaiting an empty handle");
    }
    return state_;
  }

  void reset() noexcept {
    if (state_ != nullptr) {
      std::exchange(state_, nullptr)->release();
    }
  }

  detail::JoinState<T>* state_ = nullptr;
};

}  // namespace sluice
