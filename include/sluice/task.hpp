#pragma once

#include <coroutine>
#include <exception>
#include <stdexcept>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "sluice/detail/join_state.hpp"
#include "sluice/detail/promise.hpp"

namespace sluice {

template <class T = void>
class Task;

namespace detail {

template <class T>
class Promise;

template <class Derived, class T>
class ReturnValue {
 public:
  template <class U = T>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& v) { static_cast<Derived*>(this)->result_.set_value(std::forward<U>(v)); }
};

template <class Derived>
class ReturnValue<Derived, void> {
 public:
  void return_void() noexcept { static_cast<Derived*>(this)->result_.set_value(); }
};

template <class T>
class Promise final : public PromiseBase, public ReturnValue<Promise<T>, T> {
 public:
  Promise() noexcept {
    node_.handle = std::coroutine_handle<Promise>::from_promise(*this);
    node_.run = &CoroNode::resume;
  }

  /// Frames carry room for a join state (JoinRoom), used if the task is
  /// spawned.
  static void* operator new(std::size_t size) { return JoinRoom<T>::allocate(size); }
  static void operator delete(void* frame, std::size_t size) noexcept {
    JoinRoom<T>::deallocate(frame, size);
  }

  Task<T> get_return_object() noexcept;
  void unhandled_exception() noexcept { result_.set_exception(std::current_exception()); }

  ResultSlot<T> result_;
};

}  // namespace detail

/// A lazy, move-only coroutine producing a T (void, a value, a reference or
/// a move-only type).
///
/// Nothing runs until the task is awaited, spawned or passed to block_on.
/// `co_await task` starts it on the awaiting worker by symmetric transfer (a
/// chain of nested awaits does not grow the stack) and yields its value, or
/// rethrows its exception. A Task destroyed before it started frees its frame.
///
/// Thread safety: a Task object is used by one thread at a time.
template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using value_type = T;
  using Handle = std::coroutine_handle<promise_type>;

  Task() noexcept = default;
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  /// False for a moved-from or default-constructed task.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(handle_); }

  struct Awaiter {
    Handle child;

    [[nodiscard]] bool await_ready() const noexcept { return !child || child.done(); }

    template <detail::SluicePromise P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
      auto& p = child.promise();
      p.continuation_ = parent;
      p.ctx_ = parent.promise().ctx_;
      return child;
    }

    T await_resume() {
      if (!child) {
        throw std::logic_error("sluice::Task: awaiting an empty task");
      }
      return child.promise().result_.take();
    }
  };

  /// Starts the task and waits for it. The task object is consumed.
  Awaiter operator co_await() && noexcept { return Awaiter{handle_}; }
  Awaiter operator co_await() & noexcept { return Awaiter{handle_}; }

  /// Gives up ownership of the frame (for schedulers).
  Handle release() noexcept { return std::exchange(handle_, {}); }
  /// The coroutine frame (null for an empty task), for schedulers.
  [[nodiscard]] void* frame() const noexcept { return handle_.address(); }

 private:
  friend class detail::Promise<T>;
  explicit Task(Handle h) noexcept : handle_(h) {}

  void reset() noexcept {
    if (handle_) {
      handle_.destroy();
      handle_ = {};
    }
  }

  Handle handle_;
};

template <class T>
Task<T> detail::Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise>::from_promise(*this));
}

namespace detail {

struct YieldAwaiter {
  TaskContext* ctx = nullptr;

  static bool await_ready() noexcept { return false; }
  template <SluicePromise P>
  void await_suspend(std::coroutine_handle<P> h) noexcept {
    ctx = h.promise().ctx_;
    h.promise().schedule(detail::Placement::yield);
  }
  void await_resume() const {
    if (ctx != nullptr && ctx->stop_requested()) {
      throw_error(ctx->stop_error());
    }
  }
};

/// `co_await CurrentContext{}`: the running task's context (null when the
/// coroutine was not started by sluice). Never suspends.
struct CurrentContext {
  TaskContext* ctx = nullptr;
  static bool await_ready() noexcept { return false; }
  template <SluicePromise P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    ctx = h.promise().ctx_;
    return false;
  }
  [[nodiscard]] TaskContext* await_resume() const noexcept { return ctx; }
};

template <class T>
struct TaskValue;
template <class T>
struct TaskValue<Task<T>> {
  using type = T;
};
/// U for a Task<U>.
template <class T>
using task_value_t = typename TaskValue<std::remove_cvref_t<T>>::type;

struct StopTokenAwaiter {
  std::stop_token token;

  static bool await_ready() noexcept { return false; }
  template <SluicePromise P>
  bool await_suspend(std::coroutine_handle<P> h) {
    if (TaskContext* ctx = h.promise().ctx_) {
      token = ctx->stop_token();
    }
    return false;  // never suspends
  }
  std::stop_token await_resume() noexcept { return std::move(token); }
};

}  // namespace detail

/// Reschedules the calling task at the back of its worker's queue, letting
/// other ready tasks run first. Throws cancelled_error (or timeout_error)
/// when the task has been asked to stop, so CPU loops that yield can be
/// cancelled.
[[nodiscard]] inline detail::YieldAwaiter yield() noexcept { return {}; }

namespace this_task {

/// `co_await this_task::stop_token()`: a std::stop_token that fires when the
/// running task is cancelled, times out, or its scope stops.
[[nodiscard]] inline detail::StopTokenAwaiter stop_token() noexcept { return {}; }

}  // namespace this_task

}  // namespace sluice
