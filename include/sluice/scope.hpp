#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <ranges>
#include <stop_token>
#include <string>
#include <vector>

#include "sluice/detail/join_state.hpp"
#include "sluice/detail/scope_state.hpp"
#include "sluice/join_handle.hpp"
#include "sluice/task.hpp"

namespace sluice {

class Runtime;

/// Options for a Scope.
struct ScopeOptions {
  /// Children allowed in flight (spawned and not finished), counted with
  /// those of nested scopes. Unset: no bound of its own (the parent's and
  /// the runtime's still apply). 0 is invalid.
  std::optional<std::size_t> max_pending{};
  /// Cancel a child still running after this long (it ends timed_out).
  /// Unset: the parent scope's, else Config::task_timeout. Must be > 0.
  std::optional<std::chrono::nanoseconds> task_timeout{};
  std::string name{};  ///< for logs and metrics
};

/// Structured concurrency with backpressure.
///
/// `co_await scope.spawn(task)` starts the task on the pool and returns its
/// JoinHandle; while the scope (or an enclosing scope, or the runtime) is at
/// max_pending it suspends the producer, FIFO, until a slot frees, so memory
/// stays O(max_pending) whatever the input. `spawn_with_handle` never
/// suspends: at the bound its handle is already failed with errc::rejected.
/// After request_stop() or runtime shutdown, spawns fail with
/// errc::shutting_down (`spawn` throws shutting_down_error, waking producers
/// that were waiting for a slot). Every child ends in exactly one outcome:
/// completed, failed, cancelled, timed_out or rejected.
///
/// A child that spawns into its own full scope and waits for the slot holds
/// its own slot meanwhile: if every slot is held that way, those tasks wait
/// on each other (the pool itself keeps running everything else). Spawn such
/// grandchildren into a nested Scope, or use spawn_with_handle and handle
/// errc::rejected.
///
/// Thread safety: spawns, pending, request_stop and join may be called from
/// any thread, inside or outside the pool; one joiner at a time.
class Scope {
 public:
  /// Throws std::invalid_argument for max_pending 0 or a timeout <= 0.
  explicit Scope(Runtime& runtime, ScopeOptions options = {});
  /// A scope nested in `parent`: the parent's stop stops it, and its children
  /// count toward the parent's max_pending and the runtime's.
  explicit Scope(Scope& parent, ScopeOptions options = {});
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  /// Children still running: requests stop and waits for them. Must not run
  /// on one of the pool's workers with children pending (it would wait on
  /// itself): there, `co_await join()` first; doing otherwise terminates
  /// with a message saying so.
  ~Scope();

  template <class T>
  class SpawnAwaiter {
   public:
    SpawnAwaiter(Scope& scope, Task<T> task) : scope_(&scope), task_(std::move(task)) {}

    bool await_ready() {
      if (scope_->state_.counts_trees()) {
        return false;  // await_suspend finds the spawning task
      }
      error_ = scope_->state_.try_admit();
      return error_ != errc::rejected;  // rejected: wait for a slot instead
    }
    template <detail::SluicePromise P>
    bool await_suspend(std::coroutine_handle<P> producer) noexcept {
      if (scope_->state_.counts_trees()) {  // unbounded: never waits
        tree_ = scope_->admit_to_tree(producer.promise().context(), error_);
        return false;
      }
      waiter_.producer = &producer.promise();
      error_ = errc{};
      if (scope_->state_.admit_or_wait(waiter_)) {
        return true;
      }
      error_ = waiter_.error;
      return false;
    }
    JoinHandle<T> await_resume() {
      if (error_ == errc{} && waiter_.producer != nullptr) {
        error_ = waiter_.error;
      }
      if (error_ != errc{}) {
        scope_->refuse(std::move(task_), error_, /*refs=*/1);
        throw_error(error_);
      }
      return JoinHandle<T>(scope_->start(std::move(task_), /*refs=*/2, tree_));
    }

   private:
    Scope* scope_;
    Task<T> task_;
    errc error_{};
    detail::JoinStateBase* tree_ = nullptr;  // the spawner, counting the child
    detail::SpawnWaiter waiter_;
  };

  /// Starts `task`; `co_await` it for the JoinHandle. Suspends at the bound.
  template <class T>
  [[nodiscard]] SpawnAwaiter<T> spawn(Task<T> task) {
    return SpawnAwaiter<T>(*this, std::move(task));
  }

  /// Starts `task` and returns its handle at once; at the bound or after
  /// stop the handle is already failed (rejected / shutting_down).
  template <class T>
  JoinHandle<T> spawn_with_handle(Task<T> task) {
    const errc e = state_.try_admit();
    if (e != errc{}) {
      return JoinHandle<T>(refuse(std::move(task), e, /*refs=*/2));
    }
    return JoinHandle<T>(start(std::move(task), /*refs=*/2));
  }

  /// Starts `task` with no handle; refusals and failures are counted and
  /// logged. Returns false if it was refused (rejected or shutting_down).
  template <class T>
  bool spawn_detached(Task<T> task) {
    const errc e = state_.try_admit();
    if (e != errc{}) {
      refuse(std::move(task), e, /*refs=*/1);
      return false;
    }
    start(std::move(task), /*refs=*/1);
    return true;
  }

  /// Runs `fn(item) -> Task<U>` over `inputs` with exactly `max_concurrency`
  /// items in flight while input remains (a new one starts as each
  /// finishes), pulling inputs lazily: the iterator is advanced only when a
  /// slot is free, so a million-line input is never held. Results come back
  /// in input order; a failing item is a failed Result, not an abort. `fn`
  /// may be called from several workers at once. If this scope (or the
  /// calling task) is stopped, pulling stops, items in flight are cancelled,
  /// and the call returns with those (and, for a sized range, the items never
  /// pulled) reported as errc::cancelled. An exception from the input range
  /// stops the items in flight and is rethrown once they have ended. Throws
  /// std::invalid_argument for max_concurrency 0; above 8,388,607 (the
  /// largest bound a scope counts) it means 8,388,607.
  template <std::ranges::input_range R, class F>
  Task<std::vector<
      Result<detail::task_value_t<std::invoke_result_t<F&, std::ranges::range_value_t<R>>>>>>
  stream_process(R inputs, std::size_t max_concurrency, F fn);

  /// The same, handing `sink(index, Result<U>)` each outcome as it completes
  /// (in completion order; calls are serialised) in O(max_concurrency)
  /// memory. An exception from the sink is rethrown when the call returns.
  template <std::ranges::input_range R, class F, class Sink>
  Task<void> stream_process(R inputs, std::size_t max_concurrency, F fn, Sink sink);

  /// Groups `items` into batches of `batch_size` (pulled lazily), runs one
  /// task per batch (its items in sequence: task overhead amortised over
  /// tiny items) with at most `max_concurrent_batches` in flight; results
  /// per item, in order.
  template <std::ranges::input_range R, class F>
  Task<std::vector<
      Result<detail::task_value_t<std::invoke_result_t<F&, std::ranges::range_value_t<R>>>>>>
  batch_process(R items, std::size_t batch_size, std::size_t max_concurrent_batches, F fn);

  /// Every item at once (bounded only by the enclosing scopes and runtime);
  /// results in order.
  template <std::ranges::input_range R, class F>
  Task<std::vector<
      Result<detail::task_value_t<std::invoke_result_t<F&, std::ranges::range_value_t<R>>>>>>
  par_map_async(R&& items, F fn);

  /// Completes when no child is pending.
  Task<void> join();
  /// Cancels every child and nested scope; later spawns fail.
  void request_stop() noexcept { state_.request_stop(); }
  [[nodiscard]] std::stop_token stop_token() const noexcept { return state_.stop_token(); }
  /// Children spawned and not yet finished. In a scope with no admission
  /// level (no max_pending of its own, of an ancestor or of the runtime),
  /// children that the scope's own tasks spawn are counted per worker, and
  /// this is a momentary sum of those counts (exact once quiescent, as after
  /// a join).
  [[nodiscard]] std::size_t pending() const noexcept { return state_.tasks_pending(); }
  [[nodiscard]] std::optional<std::size_t> max_pending() const noexcept {
    return state_.max_pending();
  }
  /// Producers suspended in spawn() waiting for a slot of this scope.
  [[nodiscard]] std::size_t waiting() const noexcept { return state_.waiting(); }
  [[nodiscard]] const std::string& name() const noexcept { return options_.name; }
  [[nodiscard]] Runtime& runtime() const noexcept { return *runtime_; }

 private:
  // A slot at every admission level, awaited before an input is pulled.
  class SlotAwaiter {
   public:
    explicit SlotAwaiter(Scope& scope) : scope_(&scope) {}
    bool await_ready() {
      error_ = scope_->state_.try_admit();
      return error_ != errc::rejected;
    }
    template <detail::SluicePromise P>
    bool await_suspend(std::coroutine_handle<P> producer) noexcept {
      waiter_.producer = &producer.promise();
      if (scope_->state_.admit_or_wait(waiter_)) {
        return true;
      }
      error_ = waiter_.error;
      return false;
    }
    /// True: a slot is held; false: the scope stopped admitting.
    bool await_resume() noexcept {
      if (waiter_.producer != nullptr && error_ == errc::rejected) {
        error_ = waiter_.error;
      }
      return error_ == errc{};
    }

   private:
    Scope* scope_;
    errc error_{};
    detail::SpawnWaiter waiter_;
  };

  // An admitted slot, given back on scope exit unless released to start().
  class HeldSlot {
   public:
    explicit HeldSlot(Scope& scope) noexcept : scope_(&scope) {}
    HeldSlot(const HeldSlot&) = delete;
    HeldSlot& operator=(const HeldSlot&) = delete;
    ~HeldSlot() {
      if (scope_ != nullptr) {
        scope_->give_back_slot();
      }
    }
    void release() noexcept { scope_ = nullptr; }

   private:
    Scope* scope_;
  };

  template <class Item, class U, class Fn, class Deliver>
  struct Pump;
  /// Ends a producer loop over `inner`: stops the units in flight if pulling
  /// threw `pull_error`, waits for them all, then rethrows it.
  static Task<void> settle(Scope& inner, std::exception_ptr pull_error);

  /// Admission for a child spawned by the task whose context is `spawner`
  /// (counts_trees() scopes): the spawner's tree if it is a task of this
  /// scope, else this scope's word. Sets `error` to shutting_down after stop.
  detail::JoinStateBase* admit_to_tree(detail::TaskContext* spawner, errc& error) noexcept {
    if (spawner == nullptr || spawner->scope() != &state_) {
      error = state_.try_admit();  // no level: never rejected
      return nullptr;
    }
    if (state_.closed()) {
      error = errc::shutting_down;
      return nullptr;
    }
    // Only a spawned task's context (a JoinStateBase) names a scope, and a
    // scope that counts trees gives every task a TreeJoinState.
    auto* tree = static_cast<detail::JoinStateBase*>(spawner);
    tree->tree_links()->add_child();
    state_.count_tree_task(+1);
    return tree;
  }
  /// The body of `js` (a task of a scope that counts trees) ended: ends its
  /// tree now if no child of it runs, else keeps a reference for the tree,
  /// which the last child ends. Returns the scope's joiner to resume.
  static detail::PromiseBase* end_body(detail::JoinStateBase& js, detail::TreeLinks& tree) noexcept;
  /// The tree of `js` ended: gives it to the spawner's tree, or the scope's
  /// word for a root, and so on up. `counted_out`: js's body ended with
  /// children running, so ScopeState::count_tree_task already counted it
  /// out. Returns the scope's joiner to resume.
  static detail::PromiseBase* end_tree(detail::JoinStateBase& js, bool counted_out) noexcept;

  /// `where`: see detail::Placement (a producer that goes on pulling after
  /// the start passes Placement::shared, so the task need not wait for it).
  template <class T>
  detail::JoinState<T>* start(Task<T> task, std::uint32_t refs,
                              detail::JoinStateBase* tree = nullptr,
                              detail::Placement where = detail::Placement::next);
  template <class T>
  detail::JoinState<T>* refuse(Task<T> task, errc e, std::uint32_t refs);
  template <class T>
  static void start_root(detail::TaskNode* node) noexcept;
  template <class T>
  static std::coroutine_handle<> finish(detail::PromiseBase& base) noexcept;

  /// The outcome of a task that ended with `e`, stopped or not.
  static errc classify(const std::exception_ptr& e, const detail::TaskContext& ctx) noexcept;
  static void count(detail::Pool* pool, errc outcome) noexcept;
  static void report_detached_failure(const std::exception_ptr& e) noexcept;
  static void check_task(bool valid);
  /// Returns an admitted slot that started no task.
  void give_back_slot() noexcept;
  static const ScopeOptions& validate(const ScopeOptions& options);

  Runtime* runtime_;
  ScopeOptions options_;
  detail::ScopeState state_;
};

// Scopes are usually locals of coroutines, and frames are allocated with
// operator new(size) (16-byte alignment at most).
static_assert(alignof(Scope) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);

// Called holding an admitted slot (try_admit / admit_or_wait), or a count in
// the spawner's `tree`: the task takes it over, or, if starting fails, it is
// given back.
template <class T>
detail::JoinState<T>* Scope::start(Task<T> task, std::uint32_t refs, detail::JoinStateBase* tree,
                                   detail::Placement where) {
  detail::JoinState<T>* js = nullptr;
  try {
    check_task(task.valid());
    void* frame = task.frame();
    if (state_.counts_trees()) {
      auto* tree_js = detail::JoinState<T>::template make<detail::TreeJoinState<T>>(
          frame, state_.pool(), &state_, refs);
      tree_js->links().parent = tree;
      js = tree_js;
    } else {
      js = detail::JoinState<T>::template make<detail::JoinState<T>>(frame, state_.pool(), &state_,
                                                                     refs);
    }
    if (const auto timeout = state_.task_timeout()) {
      detail::add_task_deadline(state_.core(), *js, *timeout);
    }
  } catch (...) {
    if (js != nullptr) {
      js->unmake(task.frame());  // the task's frame goes with `task`
    }
    if (tree != nullptr) {
      state_.count_tree_task(-1);
      (void)tree->tree_links()->leave();  // the spawner runs: its own count keeps the tree
    } else {
      give_back_slot();
    }
    throw;
  }
  auto handle = task.release();
  auto& promise = handle.promise();
  promise.ctx_ = js;
  promise.on_final_ = &Scope::finish<T>;
  promise.node_.run = &Scope::start_root<T>;
  detail::count_event(*state_.pool(), detail::Event::spawned);
  promise.schedule(where);
  return js;
}

// A refused task never runs: its frame is freed and its handle (if any) is
// born finished with the refusal.
template <class T>
detail::JoinState<T>* Scope::refuse(Task<T> task, errc e, std::uint32_t refs) {
  check_task(task.valid());
  task = Task<T>();
  detail::count_event(*state_.pool(), detail::Event::spawned);
  detail::count_event(*state_.pool(), detail::Event::rejected);
  if (refs == 1) {
    return nullptr;
  }
  // One reference: the handle's (no task runs to hold the other).
  auto* js = new detail::JoinState<T>(state_.pool(), &state_, 1);
  js->set_result(Result<T>::failure(make_error_code(e)));
  js->complete();
  return js;
}

// First run of a spawned task: one stopped before it started never runs.
template <class T>
void Scope::start_root(detail::TaskNode* node) noexcept {
  auto* coro = static_cast<detail::CoroNode*>(node);
  coro->run = &detail::CoroNode::resume;
  auto handle = std::coroutine_handle<detail::Promise<T>>::from_address(coro->handle.address());
  auto& promise = handle.promise();
  if (!promise.ctx_->stop_requested()) {
    handle.resume();
    return;
  }
  try {
    throw_error(promise.ctx_->stop_error());
  } catch (...) {
    promise.result_.set_exception(std::current_exception());
  }
  finish<T>(promise).resume();
}

// Runs at the spawned task's final suspend: publishes the outcome, frees the
// frame, gives back the admission slots, and hands the worker to whoever
// waited (the handle's awaiter first, then the scope's joiner).
template <class T>
std::coroutine_handle<> Scope::finish(detail::PromiseBase& base) noexcept {
  auto& promise = static_cast<detail::Promise<T>&>(base);
  auto* js = static_cast<detail::JoinState<T>*>(promise.ctx_);
  errc outcome{};
  if (auto e = promise.result_.exception()) {
    outcome = classify(e, *js);
    js->set_failure(outcome, std::move(e));
  } else {
    try {
      if constexpr (std::is_void_v<T>) {
        js->set_value();
      } else {
        js->set_value(promise.result_.take());
      }
    } catch (...) {  // moving the value threw
      outcome = errc::failed;
      js->set_failure(outcome, std::current_exception());
    }
  }
  std::coroutine_handle<detail::Promise<T>>::from_promise(promise).destroy();
  if (js->deadline_link != nullptr) {
    detail::remove_task_deadline(js->scope()->core(), *js);
  }
  detail::Pool* pool = js->pool;
  count(pool, outcome);
  if (js->detached()) {  // no handle: no one else reads the result
    if (outcome == errc::failed) {
      report_detached_failure(js->exception());
    }
    js->reset_result();
  }

  // The scope first (outer admission levels, then pending and the scope's
  // own slot in one step): a handle that reads done() may let its owner
  // destroy the scope, so it is not touched after complete(). In a scope
  // that counts trees, the tree first, and so the scope when no child of the
  // tree runs; with children running, the tree outlives the body and keeps
  // a reference of its own, dropped when it ends (the task's reference still
  // covers complete() if a child ends the tree meanwhile).
  detail::PromiseBase* joiner =
      js->scope()->counts_trees()
          ? end_body(*js, static_cast<detail::TreeJoinState<T>*>(js)->links())
          : js->scope()->finish_child();
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

#include "sluice/impl/stream.hpp"
