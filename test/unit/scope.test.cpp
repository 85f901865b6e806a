#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "deadline.hpp"
#include "sluice/sluice.hpp"

using sluice::JoinHandle;
using sluice::Scope;
using sluice::Task;

namespace {

Task<std::uint64_t> twice(std::uint64_t i) { co_return i * 2; }

Task<int> fails_with(const char* what) {
  throw std::runtime_error(what);
  co_return 0;
}

Task<void> bump(std::atomic<int>& n) {
  n.fetch_add(1, std::memory_order_relaxed);
  co_return;
}

sluice::Config workers(std::size_t n) { return sluice::Config{.threads = n}; }

}  // namespace

TEST_CASE("a hundred thousand spawns are joined with their results", "[scope][stress]") {
  sluice::Runtime rt(workers(4));
  auto body = [&rt]() -> Task<std::uint64_t> {
    Scope scope(rt);
    std::vector<JoinHandle<std::uint64_t>> handles;
    constexpr std::uint64_t n = 100'000;
    handles.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      handles.push_back(co_await scope.spawn(twice(i)));
    }
    std::uint64_t sum = 0;
    for (auto& h : handles) {
      sum += co_await h;
    }
    co_await scope.join();
    co_return sum;
  };
  constexpr std::uint64_t n = 100'000;
  CHECK(rt.block_on(body()) == n * (n - 1));
}

TEST_CASE("join waits for every child, including grandchildren", "[scope]") {
  sluice::Runtime rt(workers(4));
  std::atomic<int> ran{0};
  auto body = [&]() -> Task<int> {
    Scope scope(rt);
    for (int i = 0; i < 100; ++i) {
      scope.spawn_detached([](Scope& s, std::atomic<int>& n) -> Task<void> {
        for (int k = 0; k < 10; ++k) {
          s.spawn_detached(bump(n));
        }
        n.fetch_add(1, std::memory_order_relaxed);
        co_return;
      }(scope, ran));
    }
    co_await scope.join();
    co_return ran.load();
  };
  CHECK(rt.block_on(body()) == 100 * 11);
}

TEST_CASE("a child's exception surfaces at co_await handle", "[scope]") {
  sluice::Runtime rt(workers(2));
  auto body = [&rt]() -> Task<std::string> {
    Scope scope(rt);
    auto h = co_await scope.spawn(fails_with("child failed"));
    try {
      co_await h;
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "no exception";
  };
  CHECK(rt.block_on(body()) == "child failed");
}

TEST_CASE("result() returns the outcome without throwing", "[scope]") {
  sluice::Runtime rt(workers(2));
  auto body = [&rt]() -> Task<bool> {
    Scope scope(rt);
    auto ok = scope.spawn_with_handle(twice(21));
    auto bad = scope.spawn_with_handle(fails_with("bad"));
    auto r1 = co_await ok.result();
    auto r2 = co_await bad.result();
    co_return r1.has_value() && r1.value() == 42 && !r2.has_value() &&
        r2.error() == sluice::errc::failed;
  };
  CHECK(rt.block_on(body()));
}

TEST_CASE("spawning from a thread outside the pool", "[scope]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::vector<JoinHandle<std::uint64_t>> handles;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    handles.push_back(scope.spawn_with_handle(twice(i)));
  }
  auto collect = [&]() -> Task<std::uint64_t> {
    std::uint64_t sum = 0;
    for (auto& h : handles) {
      sum += co_await h;
    }
    co_return sum;
  };
  CHECK(rt.block_on(collect()) == 999 * 1000);
  rt.block_on(scope.join());
  CHECK(scope.pending() == 0);
}

TEST_CASE("a dropped handle detaches: the task still runs and is counted", "[scope]") {
  sluice::Runtime rt(workers(2));
  std::atomic<int> ran{0};
  {
    Scope scope(rt);
    for (int i = 0; i < 1000; ++i) {
      (void)scope.spawn_with_handle(bump(ran));
    }
    rt.block_on(scope.join());
    CHECK(scope.pending() == 0);
  }
  CHECK(ran.load() == 1000);
}

TEST_CASE("a scope destroyed outside the pool stops its children and waits for them", "[scope]") {
  sluice::Runtime rt(workers(2));
  std::atomic<int> started{0};
  std::atomic<int> ended{0};
  std::atomic<int> finished_loop{0};
  {
    Scope scope(rt);
    for (int i = 0; i < 100; ++i) {
      scope.spawn_detached(
          [](std::atomic<int>& start, std::atomic<int>& end, std::atomic<int>& loop) -> Task<void> {
            start.fetch_add(1);
            struct OnExit {
              std::atomic<int>& n;
              ~OnExit() { n.fetch_add(1); }
            } on_exit{end};
            for (int k = 0; k < 1'000'000; ++k) {
              co_await sluice::yield();  // throws cancelled_error once stopped
            }
            loop.fetch_add(1);
          }(started, ended, finished_loop));
    }
  }
  // Every child that started had ended before the destructor returned; the
  // others were stopped before they ran.
  CHECK(ended.load() == started.load());
  CHECK(finished_loop.load() < 100);
  const auto m = rt.metrics();
  CHECK(m.pending == 0);
  CHECK(m.cancelled + static_cast<std::uint64_t>(finished_loop.load()) == 100);
}

TEST_CASE("done() turns true once the child finished", "[scope]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  auto h = scope.spawn_with_handle(twice(1));
  REQUIRE(sluice::test::eventually([&] { return h.done(); }));
  CHECK(rt.block_on([](JoinHandle<std::uint64_t>& handle) -> Task<std::uint64_t> {
    co_return co_await handle;
  }(h)) == 2);
}
