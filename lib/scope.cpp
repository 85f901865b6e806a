#include "sluice/scope.hpp"

#include <cstdio>
#include <exception>
#include <stdexcept>

#include "log.hpp"
#include "sluice/runtime.hpp"

namespace sluice {

Scope::Scope(Runtime& runtime, ScopeOptions options)
    : runtime_(&runtime), options_(std::move(options)), state_(&runtime.pool()) {}

Scope::Scope(Scope& parent, ScopeOptions options) : Scope(*parent.runtime_, std::move(options)) {}

Scope::~Scope() {
  if (state_.pending() == 0) {
    return;
  }
  if (detail::current_pool() != nullptr) {
    std::fprintf(stderr,
                 "sluice: Scope '%s' destroyed on a worker thread with %llu children pending; "
                 "co_await scope.join() before it goes out of scope\n",
                 options_.name.c_str(), static_cast<unsigned long long>(state_.pending()));
    std::terminate();
  }
  runtime_->block_on(join());
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

void Scope::report_detached_failure(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    detail::log().warn("a detached task failed: {}", ex.what());
  } catch (...) {
    detail::log().warn("a detached task failed with a non-standard exception");
  }
}

void Scope::check_task(bool valid) {
  if (!valid) {
    throw std::invalid_argument("sluice::Scope: spawning an empty task");
  }
}

}  // namespace sluice
