#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "deadline.hpp"
#include "deadlines.hpp"
#include "outcome.hpp"
#include "sleep.hpp"
#include "sluice/sluice.hpp"

using namespace std::chrono_literals;
using sluice::Scope;
using sluice::ScopeOptions;
using sluice::Task;
using sluice::test::outcome;
using Clock = std::chrono::steady_clock;

namespace {

// Sleeps `d`, then gives its length in milliseconds.
Task<int> sleep_for(sluice::Runtime& rt, std::chrono::milliseconds d) {
  co_await sluice::test::sleep_for(rt, d);
  co_return static_cast<int>(d.count());
}

}  // namespace

TEST_CASE("a scope's task_timeout ends slow children as timed_out", "[timeout]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt, ScopeOptions{.task_timeout = 50ms});
  const auto start = Clock::now();
  auto slow = scope.spawn_with_handle(sleep_for(rt, 10s));
  auto slow2 = scope.spawn_with_handle(sleep_for(rt, 10s));
  auto fast = scope.spawn_with_handle(sleep_for(rt, 1ms));
  CHECK(rt.block_on(outcome(slow)) == sluice::errc::timed_out);
  CHECK(Clock::now() - start < 5s);
  CHECK(rt.block_on(outcome(fast)) == std::error_code());
  auto rethrows = [&]() -> Task<void> { co_await slow2; };
  CHECK_THROWS_AS(rt.block_on(rethrows()), sluice::timeout_error);
  rt.block_on(scope.join());
  const auto m = rt.metrics();
  CHECK(m.timed_out == 2);
  CHECK(m.completed == 1);
}

TEST_CASE("Config::task_timeout applies to every scope without its own", "[timeout]") {
  sluice::Runtime rt(sluice::Config{.threads = 2, .task_timeout = 30ms});
  Scope scope(rt);
  Scope longer(rt, ScopeOptions{.task_timeout = 10s});
  auto h1 = scope.spawn_with_handle(sleep_for(rt, 10s));
  auto h2 = longer.spawn_with_handle(sleep_for(rt, 100ms));
  CHECK(rt.block_on(outcome(h1)) == sluice::errc::timed_out);
  CHECK(rt.block_on(outcome(h2)) == std::error_code());
}

TEST_CASE("await_timeout returns timed_out after d and cancels the task", "[timeout]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt);
  auto h = scope.spawn_with_handle(sleep_for(rt, 10s));
  const auto start = Clock::now();
  auto waited = [&]() -> Task<std::error_code> {
    auto r = co_await h.await_timeout(40ms);
    co_return r.error();
  };
  CHECK(rt.block_on(waited()) == sluice::errc::timed_out);
  const auto took = Clock::now() - start;
  CHECK(took >= 40ms);
  CHECK(took < 5s);
  rt.block_on(scope.join());  // the task was cancelled, so this returns
  CHECK(rt.metrics().timed_out == 1);
}

TEST_CASE("await_timeout gives the value when the task is faster", "[timeout]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt);
  auto h = scope.spawn_with_handle(sleep_for(rt, 5ms));
  auto waited = [&]() -> Task<int> {
    auto r = co_await h.await_timeout(10s);
    co_return r.value();
  };
  CHECK(rt.block_on(waited()) == 5);
}

TEST_CASE("await_timeout returns on time even for a task that ignores cancellation", "[timeout]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt);
  std::atomic<bool> release{false};
  auto h = scope.spawn_with_handle([](std::atomic<bool>& r) -> Task<int> {
    while (!r.load()) {
      std::this_thread::sleep_for(1ms);  // never looks at its stop token
    }
    co_return 7;
  }(release));
  auto waited = [&]() -> Task<std::error_code> {
    auto r = co_await h.await_timeout(30ms);
    co_return r.error();
  };
  CHECK(rt.block_on(waited()) == sluice::errc::timed_out);
  release.store(true);
  rt.block_on(scope.join());
  CHECK(rt.metrics().completed == 1);  // it finished by itself, later
}

TEST_CASE("many short timeouts share one reactor timer", "[timeout][stress]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt, ScopeOptions{.task_timeout = 200ms});
  constexpr int n = 20'000;
  for (int i = 0; i < n; ++i) {
    if (i % 2 == 0) {
      scope.spawn_detached([]() -> Task<int> { co_return 0; }());  // entry outlives it
    } else {
      scope.spawn_detached(sleep_for(rt, 10s));
    }
  }
  rt.block_on(scope.join());
  const auto m = rt.metrics();
  CHECK(m.timed_out == n / 2);
  CHECK(m.completed == n / 2);
}

TEST_CASE("a finished task takes its timeout entry with it", "[timeout]") {
  // Memory for timeouts follows the tasks alive, not the tasks spawned
  // within the timeout.
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt, ScopeOptions{.task_timeout = 60s});
  auto& deadlines = *rt.core().deadlines;
  std::atomic<bool> release{false};
  auto held = scope.spawn_with_handle([](std::atomic<bool>& r) -> Task<void> {
    while (!r.load()) {
      co_await sluice::yield();
    }
  }(release));
  for (int i = 0; i < 10'000; ++i) {
    scope.spawn_detached([]() -> Task<int> { co_return 1; }());
  }
  REQUIRE(sluice::test::eventually([&] { return scope.pending() == 1; }));
  CHECK(deadlines.size() == 1);  // only the task still running
  release.store(true);
  rt.block_on(scope.join());
  CHECK(deadlines.size() == 0);
}
