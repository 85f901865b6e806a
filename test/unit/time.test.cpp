#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "outcome.hpp"
#include "sched/pool.hpp"
#include "sluice/sluice.hpp"

using namespace std::chrono_literals;
using sluice::Scope;
using sluice::ScopeOptions;
using sluice::Task;
using sluice::test::outcome;
using Clock = std::chrono::steady_clock;

namespace {

// Sleeps `d`; gives how long it actually slept and whether it resumed on a
// worker of the runtime.
struct Slept {
  Clock::duration took;
  bool on_worker;
};
Task<Slept> timed_sleep(Clock::duration d) {
  const auto start = Clock::now();
  co_await sluice::sleep_for(d);
  co_return Slept{Clock::now() - start, sluice::detail::Pool::current() != nullptr};
}

Task<void> sleep_10s() { co_await sluice::sleep_for(10s); }

}  // namespace

TEST_CASE("sleep_for waits at least its duration and resumes on a worker", "[time]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  for (const auto d : {0ms, 1ms, 7ms, 50ms, 120ms}) {
    const auto slept = rt.block_on(timed_sleep(d));
    CHECK(slept.took >= d);
    CHECK(slept.took < d + 5s);
    CHECK(slept.on_worker);
  }
  // Zero, negative and past deadlines return at once.
  auto past = []() -> Task<void> {
    co_await sluice::sleep_for(-5s);
    co_await sluice::sleep_until(Clock::now() - 1h);
    co_await sluice::sleep_until(Clock::time_point::min());
  };
  const auto start = Clock::now();
  rt.block_on(past());
  CHECK(Clock::now() - start < 1s);
}

TEST_CASE("sleep_until a point far in the future does not overflow", "[time]") {
  sluice::Runtime rt(sluice::Config{.threads = 1});
  Scope scope(rt);
  auto forever = [&]() -> Task<void> { co_await sluice::sleep_until(Clock::time_point::max()); };
  auto very_long = [&]() -> Task<void> { co_await sluice::sleep_for(std::chrono::hours::max()); };
  auto a = scope.spawn_with_handle(forever());
  auto b = scope.spawn_with_handle(very_long());
  std::this_thread::sleep_for(20ms);
  CHECK_FALSE(a.done());
  CHECK_FALSE(b.done());
  a.cancel();
  b.cancel();
  CHECK(rt.block_on(outcome(a)) == sluice::errc::cancelled);
  CHECK(rt.block_on(outcome(b)) == sluice::errc::cancelled);
}

TEST_CASE("10,000 concurrent sleeps each wake after their own deadline", "[time]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  constexpr int kTasks = 10'000;
  std::vector<Clock::duration> late(kTasks);
  std::atomic<int> early{0};
  auto sleeper = [&](int i, Clock::duration d) -> Task<void> {
    const auto deadline = Clock::now() + d;
    co_await sluice::sleep_until(deadline);
    const auto now = Clock::now();
    if (now < deadline) {
      early.fetch_add(1);
    }
    late[i] = now - deadline;
  };
  auto all = [&]() -> Task<void> {
    Scope scope(rt);
    std::mt19937 rng(7);
    for (int i = 0; i < kTasks; ++i) {
      // 1-200 ms, and a spread of longer ones that cross wheel levels.
      const auto d = i % 100 == 0 ? std::chrono::milliseconds(300 + rng() % 700)
                                  : std::chrono::milliseconds(1 + rng() % 200);
      (void)co_await scope.spawn(sleeper(i, d));
    }
    co_await scope.join();
  };
  rt.block_on(all());
  CHECK(early.load() == 0);
  CHECK(rt.metrics().completed == kTasks);
  // Generous: a loaded CI machine may be late, but not by seconds.
  for (const auto& l : late) {
    REQUIRE(l < 3s);
  }
}

TEST_CASE("cancelling a sleeping task ends it at once as cancelled", "[time]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt);
  auto h = scope.spawn_with_handle(sleep_10s());
  auto h2 = scope.spawn_with_handle(sleep_10s());
  std::this_thread::sleep_for(20ms);
  const auto start = Clock::now();
  h.cancel();
  h.cancel();  // twice: a no-op
  h2.cancel();
  CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
  CHECK(Clock::now() - start < 2s);
  auto rethrows = [&]() -> Task<void> { co_await h2; };
  CHECK_THROWS_AS(rt.block_on(rethrows()), sluice::cancelled_error);
}

TEST_CASE("a scope's request_stop wakes every sleeper in it", "[time]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt);
  std::vector<sluice::JoinHandle<void>> handles;
  for (int i = 0; i < 500; ++i) {
    handles.push_back(scope.spawn_with_handle(sleep_10s()));
  }
  std::this_thread::sleep_for(20ms);
  const auto start = Clock::now();
  scope.request_stop();
  for (auto& h : handles) {
    CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
  }
  CHECK(Clock::now() - start < 3s);
  const auto m = rt.metrics();
  CHECK(m.cancelled == 500);
  CHECK(m.spawned == m.completed + m.failed + m.cancelled + m.timed_out + m.rejected);
}

TEST_CASE("a parent scope's stop wakes sleepers in nested scopes, and later sleeps end at once",
          "[time]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope parent(rt);
  Scope child(parent);
  Scope grandchild(child);
  std::vector<sluice::JoinHandle<void>> handles;
  for (int i = 0; i < 100; ++i) {
    handles.push_back(child.spawn_with_handle(sleep_10s()));
    handles.push_back(grandchild.spawn_with_handle(sleep_10s()));
  }
  std::this_thread::sleep_for(20ms);
  const auto start = Clock::now();
  parent.request_stop();
  for (auto& h : handles) {
    CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
  }
  CHECK(Clock::now() - start < 3s);
  // A sleep that starts after the stop has fired: a task that catches the
  // stop error and sleeps again.
  std::atomic<bool> woke{false};
  auto stubborn = [&]() -> Task<void> {
    try {
      co_await sluice::sleep_for(10s);
    } catch (const sluice::cancelled_error&) {
    }
    try {
      co_await sluice::sleep_for(10s);
    } catch (const sluice::cancelled_error&) {
      woke.store(true);
    }
  };
  Scope other(rt);
  auto s = other.spawn_with_handle(stubborn());
  std::this_thread::sleep_for(20ms);
  const auto again = Clock::now();
  other.request_stop();
  CHECK(rt.block_on(outcome(s)) == std::error_code{});  // it caught both stops
  CHECK(woke.load());
  CHECK(Clock::now() - again < 3s);
}

TEST_CASE("a task timeout ends a sleep as timed_out", "[time]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt, ScopeOptions{.task_timeout = 30ms});
  const auto start = Clock::now();
  auto h = scope.spawn_with_handle(sleep_10s());
  CHECK(rt.block_on(outcome(h)) == sluice::errc::timed_out);
  CHECK(Clock::now() - start < 3s);
  Scope waits(rt);
  auto w = waits.spawn_with_handle(sleep_10s());
  auto waited = [&]() -> Task<std::error_code> {
    auto r = co_await w.await_timeout(20ms);
    co_return r.error();
  };
  CHECK(rt.block_on(waited()) == sluice::errc::timed_out);
  CHECK(rt.block_on(outcome(w)) == sluice::errc::timed_out);
}

TEST_CASE("a task stopped before it sleeps does not sleep", "[time]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt);
  std::atomic<bool> go{false};
  auto stalls_then_sleeps = [&]() -> Task<void> {
    while (!go.load()) {
      std::this_thread::yield();  // holds a worker; the test releases it
    }
    co_await sluice::sleep_for(10s);
  };
  auto h = scope.spawn_with_handle(stalls_then_sleeps());
  h.cancel();
  go.store(true);
  const auto start = Clock::now();
  CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
  CHECK(Clock::now() - start < 2s);
}

// Stops racing expiries: every task ends exactly once, as completed or as
// cancelled, and the counters add up.
TEST_CASE("cancels racing expiries end each sleep exactly once", "[time][stress]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  constexpr int kRounds = 40;
  constexpr int kTasks = 200;
  std::atomic<int> woke{0};
  auto sleeper = [&](int ms) -> Task<void> {
    co_await sluice::sleep_for(std::chrono::milliseconds(ms));
    woke.fetch_add(1);
  };
  int completed = 0;
  int cancelled = 0;
  for (int round = 0; round < kRounds; ++round) {
    Scope scope(rt);
    std::vector<sluice::JoinHandle<void>> handles;
    for (int i = 0; i < kTasks; ++i) {
      handles.push_back(scope.spawn_with_handle(sleeper(1 + i % 3)));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500 + 100 * (round % 20)));
    for (int i = 0; i < kTasks; i += 2) {
      handles[i].cancel();
    }
    if (round % 4 == 0) {
      scope.request_stop();
    }
    for (auto& h : handles) {
      const auto e = rt.block_on(outcome(h));
      if (!e) {
        ++completed;
      } else {
        REQUIRE(e == sluice::errc::cancelled);
        ++cancelled;
      }
    }
  }
  CHECK(completed + cancelled == kRounds * kTasks);
  CHECK(woke.load() == completed);
  const auto m = rt.metrics();
  CHECK(m.completed == static_cast<std::uint64_t>(completed));
  CHECK(m.cancelled == static_cast<std::uint64_t>(cancelled));
}

TEST_CASE("shutdown with a thousand sleepers cancels them within the deadline", "[time]") {
  sluice::Runtime rt(sluice::Config{.threads = 2});
  Scope scope(rt);
  for (int i = 0; i < 1000; ++i) {
    scope.spawn_detached(sleep_10s());
  }
  std::this_thread::sleep_for(50ms);  // asleep, mostly
  const auto start = Clock::now();
  CHECK_FALSE(rt.shutdown_timeout(50ms));
  CHECK(Clock::now() - start < 5s);
  const auto m = rt.metrics();
  CHECK(m.cancelled == 1000);
  CHECK(m.spawned == m.completed + m.failed + m.cancelled + m.timed_out + m.rejected);
}
