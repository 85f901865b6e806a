#pragma once

#include <asio/execution/blocking.hpp>
#include <asio/execution/context.hpp>
#include <asio/execution_context.hpp>
#include <new>
#include <type_traits>
#include <utility>

#include "sluice/detail/frame_allocator.hpp"
#include "sluice/detail/scheduler.hpp"
#include "sluice/detail/task_node.hpp"

namespace sluice {

namespace detail {

/// A posted function, scheduled like any other node.
template <class Fn>
struct FunctionNode final : TaskNode {
  template <class F>
  explicit FunctionNode(F&& f) : fn(std::forward<F>(f)) {
    run = &invoke;
  }

  // Frees the node before the call, so the function may post again and reuse
  // the memory. An exception escaping a posted function terminates, as it
  // would escaping a thread's entry point.
  static void invoke(TaskNode* node) noexcept {
    auto* self = static_cast<FunctionNode*>(node);
    Fn fn(std::move(self->fn));
    self->~FunctionNode();
    frame_deallocate(self, sizeof(FunctionNode));
    std::move(fn)();
  }

  Fn fn;
};

}  // namespace detail

/// An Asio executor that runs functions on a Runtime's worker pool.
///
/// Satisfies Asio 1.22's standard executor requirements, so it works with
/// `asio::post`, `asio::dispatch`, `asio::co_spawn` and as the executor of
/// I/O objects. Its execution context is the runtime's reactor (io_context),
/// so an I/O object built on this executor does its I/O on the reactor and
/// completes on the pool. `require(blocking.possibly)` gives an executor that
/// runs a function inline when already on one of the pool's workers.
///
/// Thread safety: copies may be used from any thread.
class Executor {
 public:
  Executor(detail::Pool& pool, asio::execution_context& context) noexcept
      : pool_(&pool), context_(&context) {}

  template <class F>
  void execute(F&& f) const {
    if (possibly_ && detail::current_pool() == pool_) {
      std::forward<F>(f)();
      return;
    }
    using Node = detail::FunctionNode<std::decay_t<F>>;
    void* memory = detail::frame_allocate(sizeof(Node));
    detail::TaskNode* node = nullptr;
    try {
      node = ::new (memory) Node(std::forward<F>(f));
    } catch (...) {
      detail::frame_deallocate(memory, sizeof(Node));
      throw;
    }
    detail::schedule(*pool_, node);
  }

  [[nodiscard]] asio::execution_context& query(asio::execution::context_t) const noexcept {
    return *context_;
  }
  [[nodiscard]] asio::execution::blocking_t query(asio::execution::blocking_t) const noexcept {
    return possibly_ ? asio::execution::blocking_t(asio::execution::blocking.possibly)
                     : asio::execution::blocking_t(asio::execution::blocking.never);
  }
  [[nodiscard]] Executor require(asio::execution::blocking_t::never_t) const noexcept {
    return with_possibly(false);
  }
  [[nodiscard]] Executor require(asio::execution::blocking_t::possibly_t) const noexcept {
    return with_possibly(true);
  }

  /// Whether the calling thread is one of this pool's workers.
  [[nodiscard]] bool running_in_this_thread() const noexcept {
    return detail::current_pool() == pool_;
  }

  friend bool operator==(const Executor&, const Executor&) noexcept = default;

 private:
  [[nodiscard]] Executor with_possibly(bool possibly) const noexcept {
    Executor e = *this;
    e.possibly_ = possibly;
    return e;
  }

  detail::Pool* pool_;
  asio::execution_context* context_;
  bool possibly_ = false;
};

}  // namespace sluice
