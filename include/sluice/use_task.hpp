#pragma once

#include <asio/async_result.hpp>
#include <asio/error_code.hpp>
#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include "sluice/detail/frame_allocator.hpp"
#include "sluice/detail/io_bridge.hpp"
#include "sluice/detail/promise.hpp"
#include "sluice/detail/runtime_core.hpp"
#include "sluice/detail/scope_state.hpp"

namespace sluice {

/// Completion token: `co_await op(..., sluice::use_task)` inside a Task.
///
/// The operation runs on the reactor; its completion resumes the task on the
/// pool. The operation is bound to the task's cancellation: when the task is
/// cancelled, times out or its scope stops, the operation in flight completes
/// at once and the co_await throws cancelled_error (or timeout_error); an
/// operation started after that throws at once without starting. With more
/// than one reactor thread, create I/O objects on a strand
/// (`asio::make_strand(rt.io_context())`) so that the cancellation runs
/// serialised with the operation. The result follows the completion signature: `(error_code)`
/// yields nothing and throws `std::system_error` on error, `(error_code, T)` yields T, more values
/// come as a tuple, and `(exception_ptr, ...)` rethrows. Wrap the token
/// (`asio::redirect_error(sluice::use_task, ec)`, `asio::experimental::as_tuple(sluice::use_task)`)
/// to get errors as values; a stop of the task still ends the co_await with
/// cancelled_error (or timeout_error). Through redirect_error, whose handler
/// hides the error code, that is decided by whether the stop reached the
/// operation, so an operation that completed just as the stop came is
/// reported as stopped; the other forms decide on operation_aborted. The
/// redirect_error form costs one small allocation per operation.
struct use_task_t {
  constexpr use_task_t() noexcept = default;
};
inline constexpr use_task_t use_task{};

namespace detail {

template <class... Values>
auto unpack_values(std::tuple<Values...>&& values) {
  if constexpr (sizeof...(Values) == 0) {
    return;
  } else if constexpr (sizeof...(Values) == 1) {
    return std::get<0>(std::move(values));
  } else {
    return std::move(values);
  }
}

template <class First, class... Rest>
auto drop_first(std::tuple<First, Rest...>&& t) {
  return std::apply([](auto&&, auto&&... rest) { return std::tuple<Rest...>(std::move(rest)...); },
                    std::move(t));
}

/// Turns a completion's arguments into the value of the co_await.
template <class... Results>
auto unpack_completion(std::tuple<Results...>&& results) {
  if constexpr (sizeof...(Results) == 0) {
    return;
  } else {
    using First = std::tuple_element_t<0, std::tuple<Results...>>;
    if constexpr (std::is_same_v<First, std::error_code>) {
      if (const auto& ec = std::get<0>(results)) {
        throw std::system_error(ec);
      }
      return unpack_values(drop_first(std::move(results)));
    } else if constexpr (std::is_same_v<First, std::exception_ptr>) {
      if (auto& ex = std::get<0>(results)) {
        std::rethrow_exception(ex);
      }
      return unpack_values(drop_first(std::move(results)));
    } else {
      return unpack_values(std::move(results));
    }
  }
}

template <class T, class = void>
struct HasExecutor : std::false_type {};
template <class T>
struct HasExecutor<T, std::void_t<decltype(std::declval<const T&>().get_executor())>>
    : std::true_type {};

// Asio 1.22 wraps the I/O object's initiation for redirect_error and
// as_tuple in an init_wrapper whose `initiation_` member is the original.
template <class T, class = void>
struct WrapsInitiation : std::false_type {};
template <class T>
struct WrapsInitiation<T, std::void_t<decltype(std::declval<const T&>().initiation_)>>
    : std::true_type {};

// redirect_error's wrapper also holds the error_code it writes to (`ec_`):
// its handler's signature hides the error.
template <class T, class = void>
struct HidesErrorCode : std::false_type {};
template <class T>
struct HidesErrorCode<T, std::void_t<decltype(std::declval<const T&>().ec_)>> : std::true_type {};

/// Whether `Trait` holds for the initiation or for one it wraps.
template <template <class, class> class Trait, class Initiation>
constexpr bool through_wrappers() {
  if constexpr (Trait<Initiation, void>::value) {
    return true;
  } else if constexpr (WrapsInitiation<Initiation>::value) {
    using Inner = std::decay_t<decltype(std::declval<Initiation&>().initiation_)>;
    return through_wrappers<Trait, Inner>();
  } else {
    return false;
  }
}

/// Whether the executor the operation runs its steps on can be found.
template <class Initiation>
constexpr bool has_io_executor() {
  return through_wrappers<HasExecutor, Initiation>();
}

/// That executor (the I/O object's: a strand when the object is on one).
template <class Initiation>
asio::any_io_executor io_executor(const Initiation& init) {
  if constexpr (HasExecutor<Initiation>::value) {
    return init.get_executor();
  } else {
    return io_executor(init.initiation_);
  }
}

template <class Initiation>
constexpr bool hides_error_code() {
  return through_wrappers<HidesErrorCode, Initiation>();
}

template <class T>
struct IsTupleWithErrorCode : std::false_type {};
template <class... T>
struct IsTupleWithErrorCode<std::tuple<std::error_code, T...>> : std::true_type {};

/// The awaitable an Asio initiating function returns for use_task.
template <class Initiation, class ArgsTuple, class... Results>
class UseTaskOperation {
 public:
  UseTaskOperation(Initiation init, ArgsTuple args)
      : init_(std::move(init)), args_(std::move(args)) {}

  static bool await_ready() noexcept { return false; }

  template <SluicePromise P>
  void await_suspend(std::coroutine_handle<P> waiter) {
    start(&waiter.promise());
  }

  /// Initiates the operation on behalf of `waiter`, which it resumes.
  void start(PromiseBase* waiter) {
    waiter_ = waiter;
    ctx_ = waiter_->ctx_;
    // The completion may resume the task (and destroy *this) on another
    // thread before the initiation returns: work on locals from here on.
    auto init = std::move(init_);
    auto args = std::move(args_);
    IoBridge* bridge = arm(init);
    if (bridge == nullptr) {
      std::apply(
          [&](auto&... a) {
            std::move(init)(Handler{this, nullptr}, std::move(a)...);
          },
          args);
      return;
    }
    // Installed under the bridge's lock: a concurrent cancel waits for it.
    PromiseBase* resume = nullptr;
    try {
      IoBridge::Initiating initiating(*bridge);
      std::apply(
          [&](auto&... a) {
            std::move(init)(Handler{this, bridge}, std::move(a)...);
          },
          args);
      resume = initiating.inline_waiter;  // set if it completed inline
      // Read through a local: once the operation is in flight, *this belongs
      // to the completion (it is not resumed before the lock is released).
      TaskContext* ctx = ctx_;
      initiating.cancel_if_stopped([ctx] { return ctx->stop_requested(); });
    } catch (...) {
      // Nothing in flight: unbind the bridge from the task's and the
      // scope's stop, as a completion would (the bridge outlives the scope).
      bridge->disarm();
      throw;
    }
    if (resume != nullptr) {
      resume->schedule();
    }
  }

  auto await_resume() {
    if (stopped_) {
      throw_error(ctx_->stop_error());
    }
    return unpack_completion(std::move(*results_));
  }

 private:
  struct Handler {
    UseTaskOperation* op;
    IoBridge* bridge;

    using allocator_type = FrameAllocator<void>;
    [[nodiscard]] allocator_type get_allocator() const noexcept { return {}; }
    using cancellation_slot_type = asio::cancellation_slot;
    [[nodiscard]] cancellation_slot_type get_cancellation_slot() const noexcept {
      return bridge != nullptr ? bridge->slot() : asio::cancellation_slot();
    }

    void operator()(Results... results) {
      if (bridge != nullptr) {
        const bool emitted = bridge->disarm();
        // A stop of the task ends the co_await with the stop's error. When
        // redirect_error hides the error code, the bridge knows whether it
        // cancelled the operation.
        const bool cancelled = kHidesError ? emitted : aborted(results...);
        op->stopped_ = cancelled && op->ctx_->stop_requested();
      }
      op->results_.emplace(std::move(results)...);
      if (auto* initiating = IoBridge::Initiating::active_for(bridge)) {
        initiating->inline_waiter = op->waiter_;  // resumed after the unlock
        return;
      }
      op->waiter_->schedule();
    }
  };

  static constexpr bool kHidesError = hides_error_code<Initiation>();

  template <class... R>
  static bool aborted(const R&... results) noexcept {
    if constexpr (sizeof...(R) == 0) {
      return false;
    } else {
      const auto& first = std::get<0>(std::tie(results...));
      using First = std::decay_t<decltype(first)>;
      if constexpr (std::is_same_v<First, std::error_code>) {
        return first == asio::error::operation_aborted;
      } else if constexpr (IsTupleWithErrorCode<First>::value) {
        return std::get<0>(first) == asio::error::operation_aborted;
      } else {
        return false;
      }
    }
  }

  // Binds the operation to the task's stop; throws if the task is stopped.
  IoBridge* arm(Initiation& init) {
    if (ctx_ == nullptr) {
      return nullptr;  // not run by sluice (no context): nothing to bind
    }
    if (ctx_->stop_requested()) {
      throw_error(ctx_->stop_error());
    }
    asio::any_io_executor executor;
    if constexpr (has_io_executor<Initiation>()) {
      executor = io_executor(init);
    } else if (ctx_->scope() != nullptr) {
      executor = ctx_->scope()->core().io->get_executor();
    } else {
      return nullptr;  // nowhere to run the cancellation serialised
    }
    IoBridge& bridge = ctx_->io_bridge();
    StopList* scope_waits = ctx_->scope() != nullptr ? &ctx_->scope()->stop_waits() : nullptr;
    if (!bridge.arm(std::move(executor), scope_waits, [this] { return ctx_->stop_requested(); })) {
      bridge.disarm();
      throw_error(ctx_->stop_error());
    }
    return &bridge;
  }

  Initiation init_;
  ArgsTuple args_;
  std::optional<std::tuple<Results...>> results_;
  PromiseBase* waiter_ = nullptr;
  TaskContext* ctx_ = nullptr;
  bool stopped_ = false;
};

/// The same awaitable with its initiation's type erased (one allocation).
/// Asio 1.22's redirect_error needs async_result<use_task_t, Sig>::return_type,
/// which cannot depend on the initiation; the plain token keeps the
/// allocation-free UseTaskOperation.
template <class... Results>
class ErasedUseTaskOperation {
  using Value = decltype(unpack_completion(std::declval<std::tuple<Results...>&&>()));

  struct Base {
    virtual ~Base() = default;
    virtual void start(PromiseBase* waiter) = 0;
    virtual Value resume() = 0;
  };
  template <class Op>
  struct Boxed final : Base {
    explicit Boxed(Op&& o) : op(std::move(o)) {}
    static void* operator new(std::size_t size) { return frame_allocate(size); }
    static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }
    void start(PromiseBase* waiter) override { op.start(waiter); }
    Value resume() override { return op.await_resume(); }
    Op op;
  };

 public:
  template <class Initiation, class ArgsTuple>
  ErasedUseTaskOperation(  // NOLINT(google-explicit-constructor): asio converts to it
      UseTaskOperation<Initiation, ArgsTuple, Results...>&& op)
      : op_(new Boxed<UseTaskOperation<Initiation, ArgsTuple, Results...>>(std::move(op))) {}

  static bool await_ready() noexcept { return false; }
  template <SluicePromise P>
  void await_suspend(std::coroutine_handle<P> waiter) {
    op_->start(&waiter.promise());
  }
  Value await_resume() { return op_->resume(); }

 private:
  std::unique_ptr<Base> op_;
};

}  // namespace detail
}  // namespace sluice

template <class R, class... Results>
class asio::async_result<sluice::use_task_t, R(Results...)> {
 public:
  /// For tokens that wrap use_task and need a named result type
  /// (asio::redirect_error); initiate() itself returns the unerased awaitable.
  using return_type = sluice::detail::ErasedUseTaskOperation<std::decay_t<Results>...>;

  template <class Initiation, class... InitArgs>
  static auto initiate(Initiation&& init, sluice::use_task_t, InitArgs&&... args) {
    return sluice::detail::UseTaskOperation<
        std::decay_t<Initiation>, std::tuple<std::decay_t<InitArgs>...>, std::decay_t<Results>...>(
        std::forward<Initiation>(init),
        std::tuple<std::decay_t<InitArgs>...>(std::forward<InitArgs>(args)...));
  }
};
