#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "deadline.hpp"
#include "sluice/sluice.hpp"

using namespace std::chrono_literals;
using sluice::Scope;
using sluice::ScopeOptions;
using sluice::Task;

namespace {

Task<int> ok() { co_return 1; }
Task<int> fails() {
  throw std::runtime_error("no");
  co_return 0;
}
Task<int> throws_int() {
  throw 42;
  co_return 0;
}

}  // namespace

TEST_CASE("counters add up once the runtime is quiescent", "[metrics]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  {
    Scope scope(rt, ScopeOptions{.max_pending = 8});
    for (int i = 0; i < 1000; ++i) {
      scope.spawn_detached(i % 10 == 0 ? fails() : ok());
    }
    scope.spawn_detached(throws_int());  // a non-std exception: failed, logged
    rt.block_on(scope.join());
  }
  const auto m = rt.metrics();
  CHECK(m.spawned == 1001);
  CHECK(m.spawned == m.completed + m.failed + m.cancelled + m.timed_out + m.rejected);
  CHECK(m.failed + m.rejected >= 101);
  CHECK(m.pending == 0);
  CHECK(m.active == 0);
  CHECK(m.workers == 2);
  CHECK(m.success_rate() <= 1.0);
  CHECK(m.queue_pressure() == 0.0);  // no runtime-wide bound
}

TEST_CASE("utilization, pressure and the Prometheus rendering", "[metrics]") {
  sluice::Runtime rt(sluice::Config{.threads = 2, .max_pending = 100});
  (void)rt.metrics();  // start an interval
  Scope scope(rt);
  std::atomic<bool> release{false};
  for (int i = 0; i < 50; ++i) {
    scope.spawn_detached([](std::atomic<bool>& r) -> Task<void> {
      while (!r.load()) {
        co_await sluice::yield();
      }
    }(release));
  }
  std::this_thread::sleep_for(100ms);
  const auto busy = rt.metrics();
  CHECK(busy.pending == 50);
  CHECK(busy.queue_pressure() == Approx(0.5));
  CHECK(busy.utilization() > 0.5);  // both workers spin through yields
  release.store(true);
  rt.block_on(scope.join());
  REQUIRE(sluice::test::eventually([&] { return rt.metrics().utilization() < 0.2; }, 10s));
  const auto text = rt.metrics().to_prometheus();
  CHECK_THAT(text, Catch::Contains("# TYPE sluice_tasks_total counter"));
  CHECK_THAT(text, Catch::Contains("sluice_tasks_total{outcome=\"completed\"} 50"));
  CHECK_THAT(text, Catch::Contains("sluice_tasks_pending 0"));
  CHECK_THAT(text, Catch::Contains("sluice_max_pending 100"));
}

TEST_CASE("a monitor calls back periodically until destroyed", "[metrics]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  std::atomic<int> calls{0};
  std::atomic<std::size_t> workers_seen{0};
  {
    auto monitor = rt.start_monitoring(5ms, [&](const sluice::Metrics& m) {
      workers_seen.store(m.workers);
      calls.fetch_add(1);
    });
    REQUIRE(sluice::test::eventually([&] { return calls.load() >= 3; }));
  }
  CHECK(workers_seen.load() == 2);
  const int after = calls.load();
  std::this_thread::sleep_for(30ms);
  CHECK(calls.load() == after);
  CHECK_THROWS_AS(rt.start_monitoring(0ms, [](const sluice::Metrics&) {}), std::invalid_argument);
}
