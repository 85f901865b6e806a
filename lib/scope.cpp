#include "sluice/scope.hpp"

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <system_error>

#include "log.hpp"
#include "sluice/runtime.hpp"

namespace sluice {

const ScopeOptions& Scope::validate(const ScopeOptions& options) {
  if (options.max_pending && *options.max_pending == 0) {
    throw std::invalid_argument("sluice::ScopeOptions::max_pending must be at least 1");
  }
  if (options.max_pending && *options.max_pending > detail::ScopeState::kMaxBound) {
    throw std::invalid_argument(
        "sluice::ScopeOptions::max_pending must be at most 8,388,607 (leave it empty for no "
        "bound)");
  }
  if (options.task_timeout && *options.task_timeout <= std::chrono::nanoseconds::zero()) {
    throw std::invalid_argument("sluice::ScopeOptions::task_timeout must be > 0");
  }
  return options;
}

Scope::Scope(Runtime& runtime, ScopeOptions options)
    : runtime_(&runtime),
      options_(std::move(validate(options))),
      state_(runtime.core(), nullptr, options_.max_pending, options_.task_timeout) {}

Scope::Scope(Scope& parent, ScopeOptions options)
    : runtime_(parent.runtime_),
      options_(std::move(validate(options))),
      state_(runtime_->core(), &parent.state_, options_.max_pending, options_.task_timeout) {}

Scope::~Scope() {
  state_.give_back_credits();
  if (state_.pending() == 0) {
    state_.wait_idle();
    return;
  }
  if (detail::current_pool() != nullptr) {
    std::fprintf(stderr,
                 "sluice: Scope '%s' destroyed on a worker thread with %llu children pending; "
                 "co_await scope.join() before it goes out of scope\n",
                 options_.name.c_str(), static_cast<unsigned long long>(state_.tasks_pending()));
    std::terminate();
  }
  state_.request_stop();
  runtime_->block_on(join());
  state_.wait_idle();
}

namespace {

struct JoinAwaiter {
  detail::ScopeState& state;
  [[nodiscard]] bool await_ready() const noexcept { return state.pending() == 0; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    return state.set_joiner(&h.promise());
  }
  static void await_resume() noexcept {}
};

}  // namespace

Task<void> Scope::join() { co_await JoinAwaiter{state_}; }

errc Scope::classify(const std::exception_ptr& e, const detail::TaskContext& ctx) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const task_error& err) {
    return detail::outcome_of(err.code());
  } catch (const std::system_error& err) {
    // An operation the stop aborted, awaited some other way than use_task.
    if (err.code() == std::errc::operation_canceled && ctx.stop_requested()) {
      return ctx.stop_error();
    }
  } catch (...) {
  }
  return errc::failed;
}

void Scope::count(detail::Pool* pool, errc outcome) noexcept {
  using detail::Event;
  Event e = Event::completed;
  switch (outcome) {
    case errc::failed:
      e = Event::failed;
      break;
    case errc::cancelled:
      e = Event::cancelled;
      break;
    case errc::timed_out:
      e = Event::timed_out;
      break;
    case errc::rejected:
    case errc::shutting_down:
      e = Event::rejected;
      break;
    default:
      break;
  }
  detail::count_event(*pool, e);
}

void Scope::report_detached_failure(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    detail::log().warn("a detached task failed: {}", ex.what());
  } catch (...) {
    detail::log().warn("a detached task failed with a non-standard exception");
  }
}

Task<void> Scope::settle(Scope& inner, std::exception_ptr pull_error) {
  if (pull_error) {
    inner.request_stop();  // the units in flight must end before the scope does
  }
  co_await inner.join();
  if (pull_error) {
    std::rethrow_exception(pull_error);
  }
}

void Scope::give_back_slot() noexcept {
  if (detail::PromiseBase* joiner = state_.finish_child()) {
    joiner->schedule();
  }
}

detail::PromiseBase* Scope::end_body(detail::JoinStateBase& js, detail::TreeLinks& tree) noexcept {
  if (tree.alone()) {  // exact: only a running body adds to it
    if (tree.parent != nullptr) {
      js.scope()->count_tree_task(-1);
    }
    return end_tree(js, false);  // ends now, with no RMW of its count
  }
  // Counted out before leave(): once the tree is left, a child may end it
  // and let the scope go. The tree's own reference keeps js for the child
  // that ends it; the task's still covers complete() if that is now.
  js.scope()->count_tree_task(-1);
  js.add_ref();
  return tree.leave() ? end_tree(js, true) : nullptr;
}

detail::PromiseBase* Scope::end_tree(detail::JoinStateBase& ended, bool counted_out) noexcept {
  detail::JoinStateBase* js = &ended;
  detail::JoinStateBase* drop = nullptr;  // an ancestor whose tree ended here
  for (;;) {
    detail::JoinStateBase* up = js->tree_links()->parent;
    detail::ScopeState* scope = js->scope();
    if (drop != nullptr) {
      drop->release();  // the reference its tree kept; its fields are read
    }
    if (up == nullptr) {  // a root: the scope's word, last
      if (counted_out) {
        scope->count_tree_task(+1);  // the word lets it go instead
      }
      return scope->finish_child();
    }
    if (!up->tree_links()->leave()) {
      return nullptr;
    }
    // An ancestor's tree ends only after its body ended with children
    // running: it was counted out then.
    js = drop = up;
    counted_out = true;
  }
}

void Scope::check_task(bool valid) {
  if (!valid) {
    throw std::invalid_argument("sluice::Scope: spawning an empty task");
  }
}

}  // namespace sluice
