#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "deadline.hpp"
#include "sleep.hpp"
#include "sluice/sluice.hpp"

using namespace std::chrono_literals;
using sluice::Scope;
using sluice::ScopeOptions;
using sluice::Task;
using sluice::test::sleep_for;
using Clock = std::chrono::steady_clock;

namespace {

void check_invariant(const sluice::Metrics& m) {
  CHECK(m.spawned == m.completed + m.failed + m.cancelled + m.timed_out + m.rejected);
  CHECK(m.pending == 0);
}

}  // namespace

TEST_CASE("shutdown with well-behaved tasks returns true", "[shutdown]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt);
  for (int i = 0; i < 100; ++i) {
    scope.spawn_detached(sleep_for(rt, 20ms));
  }
  CHECK(rt.shutdown_timeout(5s));
  const auto m = rt.metrics();
  CHECK(m.completed == 100);
  check_invariant(m);
  CHECK(rt.shutdown_timeout(5s));  // twice: the same answer
}

TEST_CASE("shutdown with stuck tasks cancels them and returns false in time", "[shutdown]") {
  sluice::Config config{.threads = 2};
  config.shutdown_grace = 200ms;
  sluice::Runtime rt(config);
  Scope scope(rt);
  for (int i = 0; i < 50; ++i) {
    scope.spawn_detached(sleep_for(rt, 1h));
  }
  for (int i = 0; i < 50; ++i) {
    scope.spawn_detached(sleep_for(rt, 1ms));
  }
  const auto start = Clock::now();
  CHECK_FALSE(rt.shutdown_timeout(100ms));
  CHECK(Clock::now() - start < 100ms + 200ms + 1s);  // deadline + grace, with slack
  const auto m = rt.metrics();
  CHECK(m.cancelled == 50);
  CHECK(m.completed == 50);
  check_invariant(m);
}

TEST_CASE("spawning after shutdown is refused with shutting_down", "[shutdown]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt);
  CHECK(rt.shutdown_timeout(1s));
  auto h = scope.spawn_with_handle(sleep_for(rt, 1ms));
  CHECK(h.done());
  CHECK_FALSE(scope.spawn_detached(sleep_for(rt, 1ms)));
  CHECK(rt.metrics().rejected == 2);
  CHECK_THROWS_AS(rt.block_on(sleep_for(rt, 1ms)), std::logic_error);
}

TEST_CASE("shutdown wakes producers waiting for a slot", "[shutdown]") {
  sluice::Config config{.threads = 2, .max_pending = 4};
  config.shutdown_grace = 200ms;
  sluice::Runtime rt(config);
  Scope scope(rt);
  std::atomic<int> refused{0};
  std::atomic<bool> done{false};
  std::thread producer([&] {
    rt.block_on([](sluice::Runtime& r, Scope& s, std::atomic<int>& n) -> Task<void> {
      for (int i = 0; i < 1000; ++i) {
        try {
          auto h = co_await s.spawn(sleep_for(r, 1h));
          (void)h;
        } catch (const sluice::shutting_down_error&) {
          n.fetch_add(1);
          co_return;
        }
      }
    }(rt, scope, refused));
    done.store(true);
  });
  REQUIRE(sluice::test::eventually([&] { return rt.metrics().pending == 4; }));
  CHECK_FALSE(rt.shutdown_timeout(50ms));
  producer.join();
  CHECK(done.load());
  CHECK(refused.load() == 1);
  check_invariant(rt.metrics());
}

TEST_CASE("co_await shutdown from a task", "[shutdown]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt);
  for (int i = 0; i < 10; ++i) {
    scope.spawn_detached(sleep_for(rt, 10ms));
  }
  CHECK(rt.block_on(rt.shutdown(5s)));
  check_invariant(rt.metrics());
}

TEST_CASE("shutdown with a hundred thousand tasks in flight", "[shutdown][stress]") {
  sluice::Config config{.threads = 2};
  config.shutdown_grace = 60s;  // generous for sanitizer builds; not a timing test
  sluice::Runtime rt(config);
  Scope scope(rt);
  for (int i = 0; i < 100'000; ++i) {
    scope.spawn_detached(sleep_for(rt, 1h));
  }
  CHECK_FALSE(rt.shutdown_timeout(10ms));
  const auto m = rt.metrics();
  CHECK(m.cancelled == 100'000);
  check_invariant(m);
}

TEST_CASE("a runtime destroyed with tasks running waits for them", "[shutdown]") {
  std::atomic<int> ran{0};
  {
    sluice::Runtime rt(sluice::Config{.threads = 2});
    Scope scope(rt);
    for (int i = 0; i < 20; ++i) {
      scope.spawn_detached([](sluice::Runtime& r, std::atomic<int>& n) -> Task<void> {
        co_await sleep_for(r, 10ms);
        n.fetch_add(1);
      }(rt, ran));
    }
    rt.block_on(scope.join());
  }
  CHECK(ran.load() == 20);
}
