#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <type_traits>
#include <utility>
#include <variant>

#include "sluice/detail/frame_allocator.hpp"
#include "sluice/detail/scheduler.hpp"
#include "sluice/detail/task_context.hpp"
#include "sluice/detail/task_node.hpp"
#include "sluice/result.hpp"

namespace sluice::detail {

/// A TaskNode that resumes a coroutine.
struct CoroNode : TaskNode {
  std::coroutine_handle<> handle;

  static void resume(TaskNode* node) noexcept { static_cast<CoroNode*>(node)->handle.resume(); }
};

/// The part of every sluice promise that schedulers and awaiters see.
class PromiseBase {
 public:
  /// Frames come from the per-thread frame cache.
  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* frame, std::size_t size) noexcept {
    frame_deallocate(frame, size);
  }

  /// A root's hook at final suspend: hands the result over (and may destroy
  /// the frame); returns the coroutine to transfer to.
  using FinalFn = std::coroutine_handle<> (*)(PromiseBase&) noexcept;

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    static bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> self) noexcept {
      PromiseBase& p = self.promise();
      if (p.on_final_ != nullptr) {
        return p.on_final_(p);
      }
      return p.continuation_;
    }
    static void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  /// Queues this coroutine to resume on its pool (or the calling worker's).
  void schedule(Placement where = Placement::next) noexcept {
    Pool* pool = ctx_ != nullptr ? ctx_->pool : current_pool();
    detail::schedule(*pool, &node_, where);
  }

  [[nodiscard]] std::coroutine_handle<> handle() const noexcept { return node_.handle; }
  [[nodiscard]] TaskContext* context() const noexcept { return ctx_; }

  CoroNode node_;                         // run = resume this coroutine
  std::coroutine_handle<> continuation_;  // the awaiting parent (nested tasks)
  TaskContext* ctx_ = nullptr;            // the root's context
  FinalFn on_final_ = nullptr;            // set only on roots

 protected:
  PromiseBase() = default;
};

template <class P>
concept SluicePromise = std::is_base_of_v<PromiseBase, P>;

/// Storage for a task's outcome: nothing yet, a value, or an exception.
template <class T>
class ResultSlot {
  using Stored = std::conditional_t<std::is_reference_v<T>,
                                    std::reference_wrapper<std::remove_reference_t<T>>, T>;

 public:
  template <class U>
  void set_value(U&& v) {
    state_.template emplace<1>(std::forward<U>(v));
  }
  void set_exception(std::exception_ptr e) noexcept { state_.template emplace<2>(std::move(e)); }
  [[nodiscard]] std::exception_ptr exception() const noexcept {
    return state_.index() == 2 ? std::get<2>(state_) : nullptr;
  }

  /// The value, or rethrows.
  T take() {
    if (state_.index() == 2) {
      std::rethrow_exception(std::get<2>(state_));
    }
    if constexpr (std::is_reference_v<T>) {
      return static_cast<T>(std::get<1>(state_).get());
    } else {
      return std::move(std::get<1>(state_));
    }
  }
  Result<T> take_result() {
    if (state_.index() == 2) {
      return Result<T>::failure(std::get<2>(state_));
    }
    if constexpr (std::is_reference_v<T>) {
      return Result<T>(std::get<1>(state_).get());
    } else {
      return Result<T>(std::move(std::get<1>(state_)));
    }
  }

 private:
  std::variant<std::monostate, Stored, std::exception_ptr> state_;
};

template <>
class ResultSlot<void> {
 public:
  void set_value() noexcept {}
  void set_exception(std::exception_ptr e) noexcept { exception_ = std::move(e); }
  [[nodiscard]] std::exception_ptr exception() const noexcept { return exception_; }
  void take() {
    if (exception_) {
      std::rethrow_exception(exception_);
    }
  }
  Result<void> take_result() {
    return exception_ ? Result<void>::failure(exception_) : Result<void>();
  }

 private:
  std::exception_ptr exception_;
};

}  // namespace sluice::detail
