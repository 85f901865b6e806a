#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <string>

#include "sluice/sluice.hpp"

using namespace std::chrono_literals;
using sluice::Scope;
using sluice::ScopeOptions;
using sluice::Task;

namespace {
Task<int> one() { co_return 1; }
}  // namespace

TEST_CASE("invalid configurations are refused with a clear error", "[bad_input]") {
  CHECK_THROWS_WITH(sluice::Runtime(sluice::Config{.max_pending = 0}),
                    Catch::Contains("max_pending"));
  CHECK_THROWS_WITH(sluice::Runtime(sluice::Config{.task_timeout = 0ms}),
                    Catch::Contains("task_timeout"));
  CHECK_THROWS_AS(sluice::Runtime(sluice::Config{.task_timeout = -5ms}), std::invalid_argument);
  sluice::Runtime rt(sluice::Config{.threads = 2});
  CHECK_THROWS_AS(Scope(rt, ScopeOptions{.max_pending = 0}), std::invalid_argument);
  CHECK_THROWS_AS(Scope(rt, ScopeOptions{.task_timeout = 0ns}), std::invalid_argument);
  CHECK_THROWS_WITH(Scope(rt, ScopeOptions{.max_pending = std::size_t{1} << 40}),
                    Catch::Contains("at most"));
  Scope largest(rt, ScopeOptions{.max_pending = sluice::detail::ScopeState::kMaxBound});
  CHECK(largest.max_pending() == sluice::detail::ScopeState::kMaxBound);
}

TEST_CASE("an absurd thread count is capped", "[bad_input]") {
  sluice::Runtime rt(sluice::Config{.threads = 1'000'000});
  CHECK(rt.threads() < 1'000'000);
  CHECK(rt.threads() >= 1);
  CHECK(rt.block_on(one()) == 1);
}

TEST_CASE("empty tasks and handles are refused", "[bad_input]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt);
  CHECK_THROWS_AS(scope.spawn_with_handle(Task<int>()), std::invalid_argument);
  // A refused start gives its admission slot back.
  Scope one_slot(rt, ScopeOptions{.max_pending = 1});
  CHECK_THROWS_AS(one_slot.spawn_with_handle(Task<int>()), std::invalid_argument);
  CHECK_THROWS_AS(one_slot.spawn_detached(Task<int>()), std::invalid_argument);
  CHECK(one_slot.pending() == 0);
  auto fits = one_slot.spawn_with_handle(one());
  auto awaits_fits = [&]() -> Task<int> { co_return co_await fits; };
  CHECK(rt.block_on(awaits_fits()) == 1);
  rt.block_on(one_slot.join());
  CHECK_THROWS_AS(rt.block_on(Task<int>()), std::invalid_argument);
  sluice::JoinHandle<int> empty;
  auto awaits = [&]() -> Task<int> { co_return co_await empty; };
  CHECK_THROWS_AS(rt.block_on(awaits()), std::logic_error);
  auto h = scope.spawn_with_handle(one());
  auto zero = [&]() -> Task<void> { (void)co_await h.await_timeout(0ms); };
  CHECK_THROWS_AS(rt.block_on(zero()), std::invalid_argument);
  rt.block_on(scope.join());
}

TEST_CASE("a task_error with a code outside errc ends its task failed", "[bad_input]") {
  sluice::Runtime rt(sluice::Config{.threads = 1});
  sluice::Scope scope(rt);
  for (const int code : {0, 255, 256, -1}) {
    auto h = scope.spawn_with_handle([](int c) -> sluice::Task<std::string> {
      throw sluice::task_error(static_cast<sluice::errc>(c), "odd code");
      co_return std::string("never");
    }(code));
    auto r = rt.block_on(h.result());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == sluice::errc::failed);
    CHECK_THROWS_AS(r.value(), sluice::task_error);  // the task's own exception
  }
  rt.block_on(scope.join());
  const auto m = rt.metrics();
  CHECK(m.failed == 4);
  CHECK(m.spawned == m.completed + m.failed + m.cancelled + m.timed_out + m.rejected);
}
