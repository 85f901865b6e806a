#pragma once

#include <coroutine>
#include <utility>

#include "sluice/detail/join_state.hpp"
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
/// Thread safety: one thread uses a handle at a time; await it once.
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
    T await_resume() { return std::move(*state->result).value(); }
    Result<T> take_result() { return std::move(*state->result); }
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
