#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <iterator>
#include <ranges>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "deadline.hpp"
#include "in_flight.hpp"
#include "sleep.hpp"
#include "sluice/sluice.hpp"

using namespace std::chrono_literals;
using sluice::Scope;
using sluice::Task;
using sluice::test::InFlight;
using sluice::test::sleep_for;

namespace {

sluice::Config workers(std::size_t n) { return sluice::Config{.threads = n}; }

// An input range of 0, 1, ..., size - 1 that calls `on_advance(i)` each
// time it moves past element i.
template <class OnAdvance>
struct HookedInput {
  int size;
  OnAdvance on_advance;

  struct iterator {
    using iterator_category = std::input_iterator_tag;
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    int i = 0;
    const HookedInput* input = nullptr;
    int operator*() const { return i; }
    iterator& operator++() {
      input->on_advance(i);
      ++i;
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(const iterator& o) const { return i == o.i; }
  };
  iterator begin() const { return {0, this}; }
  iterator end() const { return {size, this}; }
};

template <class OnAdvance>
HookedInput(int, OnAdvance) -> HookedInput<OnAdvance>;  // clang 16: no aggregate CTAD

// An input that counts how far it has been pulled.
auto counting_input(int size, std::atomic<int>& pulled) {
  return HookedInput{size, [&pulled](int) { pulled.fetch_add(1); }};
}

// An input of two whose second element comes only once the first has run,
// like a pipe whose writer waits for the first answer. Gives up after 10 s.
auto gated_input(std::atomic<bool>& first_ran) {
  return HookedInput{
      2, [&first_ran](int i) {
        const auto give_up = std::chrono::steady_clock::now() + 10s;
        while (i == 0 && !first_ran.load() && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::sleep_for(1ms);
        }
      }};
}

}  // namespace

TEST_CASE("stream_process returns results in input order", "[stream]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::vector<int> inputs(500);
  for (int i = 0; i < 500; ++i) {
    inputs[i] = i;
  }
  auto body = [&]() -> Task<bool> {
    auto results = co_await scope.stream_process(inputs, 16, [&](int i) -> Task<int> {
      co_await sleep_for(rt, std::chrono::microseconds((i * 7919) % 2000));  // finish out of order
      co_return i * 3;
    });
    bool ok = results.size() == 500;
    for (int i = 0; ok && i < 500; ++i) {
      ok = results[i].has_value() && results[i].value() == i * 3;
    }
    co_return ok;
  };
  CHECK(rt.block_on(body()));
}

TEST_CASE("stream_process reaches max_concurrency and never exceeds it, pulling lazily",
          "[stream]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  InFlight flight;
  std::atomic<int> pulled{0};
  std::atomic<int> finished{0};
  std::atomic<int> max_ahead{0};
  constexpr int bound = 32;
  auto body = [&]() -> Task<std::size_t> {
    auto results =
        co_await scope.stream_process(counting_input(2000, pulled), bound, [&](int) -> Task<void> {
          flight.enter();
          // Pulled (the iterator's position) minus finished: what is ahead.
          const int ahead = pulled.load() - finished.load();
          int m = max_ahead.load();
          while (ahead > m && !max_ahead.compare_exchange_weak(m, ahead)) {
          }
          co_await sleep_for(rt, 300us);
          flight.leave();
          finished.fetch_add(1);
        });
    co_return results.size();
  };
  CHECK(rt.block_on(body()) == 2000);
  CHECK(flight.max.load() == bound);  // reached, and not exceeded
  CHECK(max_ahead.load() <= bound);   // the iterator never ran ahead of the bound
}

TEST_CASE("a failing item is a failed Result, the others complete", "[stream]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::vector<int> inputs{0, 1, 2, 3, 4, 5};
  auto body = [&]() -> Task<std::vector<sluice::Result<int>>> {
    co_return co_await scope.stream_process(inputs, 3, [](int i) -> Task<int> {
      if (i % 2 == 1) {
        throw std::runtime_error("odd " + std::to_string(i));
      }
      co_return i;
    });
  };
  auto results = rt.block_on(body());
  REQUIRE(results.size() == 6);
  for (int i = 0; i < 6; ++i) {
    if (i % 2 == 0) {
      CHECK(results[i].value() == i);
    } else {
      CHECK(results[i].error() == sluice::errc::failed);
      CHECK_THROWS_WITH(results[i].value(), "odd " + std::to_string(i));
    }
  }
  const auto m = rt.metrics();
  CHECK(m.failed == 3);
  CHECK(m.completed == 3);  // the items; block_on's own task is not spawned
}

TEST_CASE("stopping the scope mid-stream cancels in flight and unpulled items", "[stream]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::vector<int> inputs(1000, 0);
  std::atomic<int> started{0};
  std::thread stopper([&] {
    sluice::test::eventually([&] { return started.load() >= 8; });
    scope.request_stop();
  });
  auto body = [&]() -> Task<std::vector<sluice::Result<void>>> {
    co_return co_await scope.stream_process(inputs, 8, [&](int) -> Task<void> {
      started.fetch_add(1);
      co_await sleep_for(rt, 10s);
    });
  };
  const auto begin = std::chrono::steady_clock::now();
  auto results = rt.block_on(body());
  stopper.join();
  CHECK(std::chrono::steady_clock::now() - begin < 5s);
  REQUIRE(results.size() == 1000);
  for (const auto& r : results) {
    CHECK(r.error() == sluice::errc::cancelled);
  }
  CHECK(started.load() == 8);  // pulling stopped at the bound
}

TEST_CASE("cancelling the task that runs a stream stops the stream", "[stream]") {
  sluice::Runtime rt(workers(2));
  Scope outer(rt);
  Scope work(rt);
  std::atomic<int> started{0};
  auto h = outer.spawn_with_handle(
      [](Scope& s, sluice::Runtime& r, std::atomic<int>& n) -> Task<std::size_t> {
        std::vector<int> inputs(100, 0);
        auto results = co_await s.stream_process(inputs, 4, [&](int) -> Task<void> {
          n.fetch_add(1);
          co_await sleep_for(r, 10s);
        });
        co_return results.size();
      }(work, rt, started));
  REQUIRE(sluice::test::eventually([&] { return started.load() == 4; }));
  h.cancel();
  auto value = [&]() -> Task<std::size_t> { co_return co_await h; };
  CHECK(rt.block_on(value()) == 100);  // it returned, reporting every item
}

TEST_CASE("the sink overload hands each outcome over once, one call at a time", "[stream]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::set<std::size_t> seen;
  std::atomic<bool> inside{false};
  std::atomic<int> overlaps{0};
  long long sum = 0;
  auto body = [&]() -> Task<void> {
    std::istringstream in;
    std::string text;
    for (int i = 0; i < 10'000; ++i) {
      text += std::to_string(i) + "\n";
    }
    in.str(text);
    co_await scope.stream_process(
        sluice::lines(in), 64,
        [](std::string line) -> Task<long long> { co_return std::stoll(line); },
        [&](std::size_t index, sluice::Result<long long> r) {
          if (inside.exchange(true)) {
            overlaps.fetch_add(1);
          }
          seen.insert(index);
          sum += r.value();
          inside.store(false);
        });
  };
  rt.block_on(body());
  CHECK(overlaps.load() == 0);
  CHECK(seen.size() == 10'000);
  CHECK(*seen.rbegin() == 9'999);
  CHECK(sum == 9'999LL * 10'000 / 2);
}

TEST_CASE("batch_process runs one task per batch, results per item in order", "[stream]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::vector<int> inputs(1003);
  for (int i = 0; i < 1003; ++i) {
    inputs[i] = i;
  }
  auto body = [&]() -> Task<bool> {
    auto results = co_await scope.batch_process(inputs, 100, 3, [](int i) -> Task<int> {
      if (i == 500) {
        throw std::runtime_error("bad item");
      }
      co_return i + 1;
    });
    bool ok = results.size() == 1003;
    for (int i = 0; ok && i < 1003; ++i) {
      ok = i == 500 ? results[i].error() == sluice::errc::failed : results[i].value() == i + 1;
    }
    co_return ok;
  };
  CHECK(rt.block_on(body()));
  CHECK(rt.metrics().spawned == 11);  // ceil(1003 / 100) batch tasks
}

TEST_CASE("par_map_async maps everything", "[stream]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  auto body = [&]() -> Task<long> {
    std::vector<int> inputs(10'000, 2);
    auto results = co_await scope.par_map_async(inputs, [](int x) -> Task<long> { co_return x; });
    long s = 0;
    for (auto& r : results) {
      s += r.value();
    }
    co_return s;
  };
  CHECK(rt.block_on(body()) == 20'000);
}

TEST_CASE("par_map_async over an unsized range, and bounds beyond what a scope counts",
          "[stream]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  auto body = [&]() -> Task<long> {
    std::vector<int> inputs(1'000, 3);
    auto odd_positions = inputs | std::views::filter([](int x) { return x == 3; });
    auto results =
        co_await scope.par_map_async(odd_positions, [](int x) -> Task<long> { co_return x; });
    auto streamed = co_await scope.stream_process(inputs, std::size_t{1} << 40,
                                                  [](int x) -> Task<long> { co_return x; });
    long s = 0;
    for (auto& r : results) {
      s += r.value();
    }
    for (auto& r : streamed) {
      s += r.value();
    }
    co_return s;
  };
  CHECK(rt.block_on(body()) == 6'000);
}

// An input whose pull throws at item `fail_at`.
struct ThrowingInput {
  int fail_at;

  struct iterator {
    using iterator_category = std::input_iterator_tag;
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    int i = 0;
    int fail_at = 0;
    int operator*() const {
      if (i == fail_at) {
        throw std::runtime_error("input broke");
      }
      return i;
    }
    iterator& operator++() {
      ++i;
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(const iterator& o) const { return i == o.i; }
  };
  iterator begin() const { return {0, fail_at}; }
  iterator end() const { return {1'000'000, fail_at}; }
};

TEST_CASE("an input that throws stops the items in flight, then the error surfaces", "[stream]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  auto slow = [&](int) -> Task<int> {
    started.fetch_add(1);
    try {
      co_await sleep_for(rt, 10s);
    } catch (...) {
      finished.fetch_add(1);
      throw;
    }
    co_return 0;
  };
  const auto start = std::chrono::steady_clock::now();
  // Items 0-4 start (and sleep); pulling item 5 throws.
  CHECK_THROWS_WITH(rt.block_on(scope.stream_process(ThrowingInput{5}, 8, slow)),
                    Catch::Contains("input broke"));
  // Every item in flight ended before the error came back (those stopped
  // before they started never ran).
  CHECK(finished.load() == started.load());
  CHECK(rt.metrics().cancelled == 5);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK_THROWS_WITH(rt.block_on(scope.batch_process(ThrowingInput{5}, 4, 2, slow)),
                    Catch::Contains("input broke"));
  rt.block_on(scope.join());
  const auto m = rt.metrics();
  CHECK(m.spawned == m.completed + m.failed + m.cancelled + m.timed_out + m.rejected);
}

TEST_CASE("invalid stream arguments are refused", "[stream]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::vector<int> inputs{1};
  auto f = [](int x) -> Task<int> { co_return x; };
  CHECK_THROWS_AS(rt.block_on(scope.stream_process(inputs, 0, f)), std::invalid_argument);
  CHECK_THROWS_AS(rt.block_on(scope.batch_process(inputs, 0, 1, f)), std::invalid_argument);
  CHECK_THROWS_AS(rt.block_on(scope.batch_process(inputs, 1, 0, f)), std::invalid_argument);
}

TEST_CASE("an item runs while stream_process waits for the input's next one", "[stream]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::atomic<bool> first_ran{false};
  const auto started = std::chrono::steady_clock::now();
  auto results =
      rt.block_on(scope.stream_process(gated_input(first_ran), 4, [&](int i) -> Task<int> {
        if (i == 0) {
          first_ran.store(true);
        }
        co_return i * 10;
      }));
  CHECK(std::chrono::steady_clock::now() - started < 5s);  // not the input's 10 s give-up
  REQUIRE(results.size() == 2);
  CHECK(results[0].value() == 0);
  CHECK(results[1].value() == 10);
  rt.block_on(scope.join());
}
