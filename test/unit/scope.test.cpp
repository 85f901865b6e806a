#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
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

TEST_CASE("a handle gives back move-only values, references and each way a task can end",
          "[scope]") {
  sluice::Runtime rt(workers(2));
  int target = 7;
  auto body = [&]() -> Task<void> {
    // Both kinds of scope: one that counts spawn trees, one with a bound.
    for (const std::size_t bound : {std::size_t{0}, std::size_t{1000}}) {
      sluice::ScopeOptions options;
      if (bound != 0) {
        options.max_pending = bound;
      }
      Scope scope(rt, options);
      auto owned = co_await scope.spawn(
          []() -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(5); }());
      // A parameter, not a capture: the lambda is gone before the task runs.
      auto ref = co_await scope.spawn([](int& t) -> Task<int&> { co_return t; }(target));
      auto text = co_await scope.spawn([]() -> Task<std::string> {
        co_return std::string(100, 'x');  // not a small string
      }());
      auto fails = co_await scope.spawn(fails_with("boom"));
      auto fails_void = co_await scope.spawn([]() -> Task<void> {
        throw std::logic_error("void boom");
        co_return;
      }());
      auto stuck = co_await scope.spawn([]() -> Task<int> {
        co_await sluice::sleep_for(std::chrono::seconds(10));
        co_return 1;
      }());

      // Awaited outside the assertion macros, each once.
      auto p = co_await owned;
      REQUIRE(p != nullptr);
      CHECK(*p == 5);
      int& got = co_await ref;
      CHECK(&got == &target);
      auto s = co_await text;
      CHECK(s == std::string(100, 'x'));

      auto r = co_await fails.result();
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == sluice::errc::failed);
      try {
        std::rethrow_exception(r.exception());
      } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "boom");
      }
      auto rv = co_await fails_void.result();
      CHECK(rv.error() == sluice::errc::failed);
      CHECK_THROWS_AS(rv.value(), std::logic_error);

      stuck.cancel();
      auto rs = co_await stuck.result();
      CHECK(rs.error() == sluice::errc::cancelled);
      CHECK_THROWS_AS(rs.value(), sluice::cancelled_error);
      // Taken once: a second await is a clear error.
      bool second_refused = false;
      try {
        (void)co_await stuck.result();
      } catch (const std::logic_error&) {
        second_refused = true;
      }
      CHECK(second_refused);
      co_await scope.join();
    }
  };
  rt.block_on(body());
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

// Spawn trees: in a scope with no admission level, a child spawned by one of
// the scope's own tasks (co_await spawn) is counted in its spawner's tree.

namespace {

Task<void> hold_until(std::atomic<bool>& open) {
  while (!open.load()) {
    co_await sluice::yield();
  }
}

Task<std::uint64_t> fib_two(Scope& scope, int n) {
  if (n < 2) {
    co_return static_cast<std::uint64_t>(n);
  }
  auto a = co_await scope.spawn(fib_two(scope, n - 1));
  auto b = co_await scope.spawn(fib_two(scope, n - 2));
  const std::uint64_t x = co_await a;
  co_return x + co_await b;
}

Task<std::uint64_t> fib_one(Scope& scope, int n) {
  if (n < 2) {
    co_return static_cast<std::uint64_t>(n);
  }
  auto a = co_await scope.spawn(fib_one(scope, n - 1));
  const std::uint64_t y = co_await fib_one(scope, n - 2);  // nested: the same tree
  co_return y + co_await a;
}

void check_quiescent_counts(const sluice::Metrics& m) {
  CHECK(m.spawned == m.completed + m.failed + m.cancelled + m.timed_out + m.rejected);
  CHECK(m.pending == 0);
}

}  // namespace

TEST_CASE("a spawn tree keeps its scope pending until its last descendant ends", "[scope][tree]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::atomic<bool> open{false};
  // The parent spawns two grandchildren that wait, drops their handles and
  // ends; its own handle is done, its tree is not.
  auto parent = scope.spawn_with_handle([](Scope& s, std::atomic<bool>& o) -> Task<int> {
    (void)co_await s.spawn(hold_until(o));
    (void)co_await s.spawn(hold_until(o));
    co_return 7;
  }(scope, open));
  REQUIRE(sluice::test::eventually([&] { return parent.done(); }));
  CHECK(scope.pending() == 2);  // the grandchildren

  Scope joiners(rt);
  auto joined = joiners.spawn_with_handle(scope.join());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_FALSE(joined.done());
  CHECK(scope.pending() == 2);

  open.store(true);
  REQUIRE(sluice::test::eventually([&] { return joined.done(); }));
  CHECK(scope.pending() == 0);
  CHECK(rt.block_on([](JoinHandle<int>& h) -> Task<int> { co_return co_await h; }(parent)) == 7);
  rt.block_on(joiners.join());
  const auto m = rt.metrics();
  CHECK(m.completed == 4);  // parent, two grandchildren, the join
  check_quiescent_counts(m);
}

TEST_CASE("a child spawned from another scope's task counts in its own scope", "[scope][tree]") {
  sluice::Runtime rt(workers(2));
  Scope target(rt);
  Scope spawners(rt);
  std::atomic<bool> open{false};
  auto spawner = spawners.spawn_with_handle([](Scope& s, std::atomic<bool>& o) -> Task<void> {
    (void)co_await s.spawn(hold_until(o));
  }(target, open));
  REQUIRE(sluice::test::eventually([&] { return spawner.done(); }));
  rt.block_on(spawners.join());  // the child is not in the spawner's scope
  CHECK(spawners.pending() == 0);
  CHECK(target.pending() == 1);
  open.store(true);
  rt.block_on(target.join());
  CHECK(target.pending() == 0);
}

namespace {

struct Chain {
  static constexpr int depth = 100'000;
  Scope& scope;
  std::atomic<int> bodies_ended{0};
};

Task<void> chain_link(Chain& c, int left) {
  if (left == 0) {
    while (c.bodies_ended.load() != Chain::depth) {
      co_await sluice::yield();
    }
    co_return;
  }
  (void)co_await c.scope.spawn(chain_link(c, left - 1));
  c.bodies_ended.fetch_add(1);
}

}  // namespace

TEST_CASE("a chain of 100,000 spawns ends its trees without recursion", "[scope][tree]") {
  // Each task spawns the next and ends; the last waits until every body has
  // ended, so its end finishes 100,000 trees in one walk up the chain.
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  Chain chain{scope};
  scope.spawn_detached(chain_link(chain, Chain::depth));
  rt.block_on(scope.join());
  CHECK(scope.pending() == 0);
  const auto m = rt.metrics();
  CHECK(m.completed == Chain::depth + 1);  // block_on's own task is not spawned
  check_quiescent_counts(m);
}

TEST_CASE("fork-join trees give every result on one and several workers", "[scope][tree]") {
  for (std::size_t threads : {1, 2, 4}) {
    sluice::Runtime rt(workers(threads));
    for (int round = 0; round < 5; ++round) {
      auto body = [&rt]() -> Task<std::uint64_t> {
        Scope scope(rt);
        const std::uint64_t two = co_await fib_two(scope, 18);
        const std::uint64_t one = co_await fib_one(scope, 18);
        co_await scope.join();
        co_return two * 10'000 + one;
      };
      CHECK(rt.block_on(body()) == 2584 * 10'000 + 2584);
    }
    check_quiescent_counts(rt.metrics());
  }
}

TEST_CASE("a scope's stop reaches the children of an ended spawner", "[scope][tree]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::atomic<bool> never{false};
  auto parent = scope.spawn_with_handle([](Scope& s, std::atomic<bool>& o) -> Task<void> {
    for (int i = 0; i < 10; ++i) {
      (void)co_await s.spawn(hold_until(o));
    }
  }(scope, never));
  REQUIRE(sluice::test::eventually([&] { return parent.done(); }));
  CHECK(scope.pending() == 10);
  scope.request_stop();
  rt.block_on(scope.join());
  const auto m = rt.metrics();
  CHECK(m.cancelled == 10);
  CHECK(m.completed == 1);  // the parent
  check_quiescent_counts(m);
}

TEST_CASE("a task spawning into its stopped scope gets shutting_down", "[scope][tree]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::atomic<bool> waiting{false};
  auto child = scope.spawn_with_handle([](Scope& s, std::atomic<bool>& w) -> Task<int> {
    w.store(true);
    while (!s.stop_token().stop_requested()) {
      std::this_thread::yield();  // no await: the task itself is not stopped here
    }
    try {
      (void)co_await s.spawn(twice(1));
    } catch (const sluice::shutting_down_error&) {
      co_return 1;
    }
    co_return 0;
  }(scope, waiting));
  REQUIRE(sluice::test::eventually([&] { return waiting.load(); }));
  scope.request_stop();
  rt.block_on(scope.join());
  auto r = rt.block_on([](JoinHandle<int>& h) -> Task<sluice::Result<int>> {
    co_return co_await h.result();
  }(child));
  // The child ends at its co_return (a stopped task that ignores its stop
  // still finishes): its outcome is its value or cancelled.
  if (r.has_value()) {
    CHECK(r.value() == 1);
  } else {
    CHECK(r.error() == sluice::errc::cancelled);
  }
  const auto m = rt.metrics();
  CHECK(m.rejected == 1);
  check_quiescent_counts(m);
}

namespace {

struct Forest {
  Scope& scope;
  std::atomic<bool>& open;
  std::atomic<int> leaves_started{0};
};

// A binary tree of spawns `depth` levels below this task; leaves wait for
// `open`. `await_children`: inner tasks wait for their children, or end at once.
Task<void> grow(Forest& f, int depth, bool await_children) {
  if (depth == 0) {
    f.leaves_started.fetch_add(1);
    co_await hold_until(f.open);
    co_return;
  }
  auto left = co_await f.scope.spawn(grow(f, depth - 1, await_children));
  auto right = co_await f.scope.spawn(grow(f, depth - 1, await_children));
  if (await_children) {
    co_await left;
    co_await right;
  }
}

}  // namespace

TEST_CASE("pending() counts every task of a spawn tree", "[scope][tree]") {
  sluice::Runtime rt(workers(2));
  for (const bool await_children : {true, false}) {
    INFO("inner tasks await their children: " << await_children);
    Scope scope(rt);
    std::atomic<bool> open{false};
    Forest forest{scope, open};
    scope.spawn_detached(grow(forest, 6, await_children));  // 64 leaves, 63 inner tasks
    REQUIRE(sluice::test::eventually([&] { return forest.leaves_started.load() == 64; }));
    const std::size_t expected = await_children ? 127 : 64;
    REQUIRE(sluice::test::eventually([&] { return scope.pending() == expected; }));
    open.store(true);
    rt.block_on(scope.join());
    CHECK(scope.pending() == 0);
  }
  check_quiescent_counts(rt.metrics());
}

namespace {

// A tree whose leaves either finish at once or sleep past the scope's task
// timeout; inner tasks await their children or end at once (by depth).
Task<void> timed_tree(Scope& scope, int depth, std::atomic<int>& leaves) {
  if (depth == 0) {
    if (leaves.fetch_add(1) % 3 == 0) {
      co_await sluice::sleep_for(std::chrono::seconds(30));  // ends timed_out
    }
    co_return;
  }
  auto left = co_await scope.spawn(timed_tree(scope, depth - 1, leaves));
  auto right = co_await scope.spawn(timed_tree(scope, depth - 1, leaves));
  if (depth % 2 == 0) {
    (void)co_await left.result();
    (void)co_await right.result();
  }
}

}  // namespace

TEST_CASE("spawn trees with timeouts and a shutdown keep every count", "[scope][tree]") {
  sluice::Runtime rt(workers(2));
  std::atomic<int> leaves{0};
  {
    Scope scope(rt, sluice::ScopeOptions{.task_timeout = std::chrono::milliseconds(50)});
    REQUIRE(scope.max_pending() == std::nullopt);        // counts trees
    scope.spawn_detached(timed_tree(scope, 8, leaves));  // 511 tasks, 256 leaves
    rt.block_on(scope.join());
    CHECK(scope.pending() == 0);
    const auto m = rt.metrics();
    CHECK(m.timed_out >= 86);  // the sleeping leaves, and inner tasks awaiting them
    check_quiescent_counts(m);
  }
  // Trees still running at shutdown: cancelled, and every task accounted for.
  Scope scope(rt);
  std::atomic<bool> never{false};
  std::atomic<int> more_leaves{0};
  scope.spawn_detached([](Scope& s, std::atomic<int>& l, std::atomic<bool>& o) -> Task<void> {
    (void)co_await s.spawn(timed_tree(s, 6, l));
    (void)co_await s.spawn(hold_until(o));
  }(scope, more_leaves, never));
  REQUIRE(sluice::test::eventually([&] { return more_leaves.load() == 64; }));
  CHECK_FALSE(rt.shutdown_timeout(std::chrono::milliseconds(20)));
  CHECK(scope.pending() == 0);
  check_quiescent_counts(rt.metrics());
}

namespace {

using Big = std::array<std::uint64_t, 64>;  // too large for a join state's room

Task<Big> big(std::uint64_t i) {
  Big b{};
  b.fill(i);
  co_return b;
}

// A frame too large for a room: its join state is allocated on its own.
Task<std::uint64_t> heavy(std::uint64_t i) {
  std::array<std::uint64_t, 128> buf{};  // lives across the yield: in the frame
  buf.fill(i);
  co_await sluice::yield();
  std::uint64_t sum = 0;
  for (auto v : buf) {
    sum += v;
  }
  co_return sum / buf.size();
}

Task<std::string> text(std::uint64_t i) {
  co_return std::string(100, static_cast<char>('a' + i % 26));  // owns heap memory
}

template <class T, class Make, class Check>
void handles_outlive_frames(sluice::Runtime& rt, sluice::ScopeOptions options, Make make,
                            Check check) {
  constexpr std::uint64_t n = 2000;
  Scope scope(rt, std::move(options));
  std::vector<JoinHandle<T>> kept;
  auto produce = [&]() -> Task<void> {
    for (std::uint64_t i = 0; i < n; ++i) {
      auto h = co_await scope.spawn(make(i));
      if (i % 2 == 0) {
        kept.push_back(std::move(h));  // read after its frame is gone
      }                                // else dropped at once, maybe before the task ran
    }
    co_await scope.join();
  };
  rt.block_on(produce());
  auto read = [&]() -> Task<void> {
    for (std::size_t k = 0; k < kept.size(); ++k) {
      check(2 * k, co_await std::move(kept[k]));
    }
  };
  rt.block_on(read());
}

}  // namespace

TEST_CASE("a join state lives in its task's frame block and outlives the frame", "[scope]") {
  using sluice::detail::JoinRoom;
  STATIC_REQUIRE(JoinRoom<void>::kFits);
  STATIC_REQUIRE(JoinRoom<std::string>::kFits);
  STATIC_REQUIRE(!JoinRoom<Big>::kFits);

  sluice::Runtime rt(workers(2));
  const auto check_text = [](std::uint64_t i, const std::string& s) {
    REQUIRE(s == std::string(100, static_cast<char>('a' + i % 26)));
  };
  const auto check_big = [](std::uint64_t i, const Big& b) {
    REQUIRE(b.front() == i);
    REQUIRE(b.back() == i);
  };
  // Spawn trees (no bound) and bounded scopes make different join states.
  handles_outlive_frames<std::string>(rt, {}, text, check_text);
  handles_outlive_frames<std::string>(rt, {.max_pending = 64}, text, check_text);
  handles_outlive_frames<Big>(rt, {}, big, check_big);
  handles_outlive_frames<Big>(rt, {.max_pending = 64}, big, check_big);
  const auto check_heavy = [](std::uint64_t i, std::uint64_t v) { REQUIRE(v == i); };
  handles_outlive_frames<std::uint64_t>(rt, {}, heavy, check_heavy);
  handles_outlive_frames<std::uint64_t>(rt, {.max_pending = 64}, heavy, check_heavy);
  const auto m = rt.metrics();
  CHECK(m.spawned == m.completed);
}

namespace {

Task<void> wait_for_gate(const std::atomic<bool>& gate, std::atomic<int>& ran) {
  while (!gate.load(std::memory_order_acquire)) {
    co_await sluice::yield();
  }
  ran.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

// A worker spawning many roots into a busy unbounded scope takes slots of
// the scope's word ahead (credits): none of that may show in pending(),
// hold up a join, or keep a scope from being destroyed.
TEST_CASE("slots a producer takes ahead are not tasks", "[scope]") {
  // Unbounded, and bounded far above what is spawned (credits are taken
  // while a bounded scope's word stays at most half full).
  const std::optional<std::size_t> bound =
      GENERATE(std::optional<std::size_t>{}, std::optional<std::size_t>{4000});
  INFO("max_pending " << bound.value_or(0));
  const sluice::ScopeOptions options{.max_pending = bound};
  sluice::Runtime rt(workers(2));
  constexpr int n = 500;
  std::atomic<bool> gate{false};
  std::atomic<int> ran{0};
  std::uint64_t pending_while_blocked = 0;
  std::uint64_t pending_after_join = 1;
  auto body = [&]() -> Task<void> {
    Scope scope(rt, options);
    for (int i = 0; i < n; ++i) {
      (void)co_await scope.spawn(wait_for_gate(gate, ran));
    }
    pending_while_blocked = scope.pending();
    gate.store(true, std::memory_order_release);
    co_await scope.join();
    pending_after_join = scope.pending();
  };
  rt.block_on(body());
  CHECK(pending_while_blocked == n);
  CHECK(pending_after_join == 0);
  CHECK(ran.load() == n);

  // Destroyed on a worker with no child left, never joined: fine (a scope
  // with children pending there is a fatal error).
  std::atomic<int> done{0};
  auto unjoined = [&]() -> Task<void> {
    Scope scope(rt, options);
    for (int i = 0; i < n; ++i) {
      (void)co_await scope.spawn(bump(done));
    }
    while (done.load(std::memory_order_acquire) < n || scope.pending() != 0) {
      co_await sluice::yield();
    }
  };
  rt.block_on(unjoined());
  CHECK(done.load() == n);
}

TEST_CASE("joins racing producers that take slots ahead never hang", "[scope][stress]") {
  // Unbounded; bounded and never full; bounded and full, so that producers
  // also wait (and take what workers hold ahead) while others join.
  const std::optional<std::size_t> bound =
      GENERATE(std::optional<std::size_t>{}, std::optional<std::size_t>{200000},
               std::optional<std::size_t>{1000});
  INFO("max_pending " << bound.value_or(0));
  sluice::Runtime rt(workers(2));
  constexpr int producers = 4;
  constexpr int per_producer = 20000;
  std::atomic<int> ran{0};
  auto run = [&]() -> Task<void> {
    Scope target(rt, sluice::ScopeOptions{.max_pending = bound});
    Scope producing(rt);
    std::atomic<int> producers_done{0};
    auto produce = [&]() -> Task<void> {
      for (int i = 0; i < per_producer; ++i) {
        (void)co_await target.spawn(bump(ran));
        if (i % 1000 == 0) {
          co_await sluice::yield();  // move between workers now and then
        }
      }
      producers_done.fetch_add(1, std::memory_order_release);
    };
    for (int p = 0; p < producers; ++p) {
      (void)co_await producing.spawn(produce());
    }
    // Joins while the producers run: each returns once nothing is pending
    // at that moment, whatever the workers hold ahead.
    while (producers_done.load(std::memory_order_acquire) < producers) {
      co_await target.join();
    }
    co_await producing.join();
    co_await target.join();
    CHECK(target.pending() == 0);
  };
  rt.block_on(run());
  CHECK(ran.load() == producers * per_producer);
  const auto m = rt.metrics();
  CHECK(m.spawned == m.completed);
}
