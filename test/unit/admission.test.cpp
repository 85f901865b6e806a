#include "sluice/detail/admission.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "deadline.hpp"
#include "in_flight.hpp"
#include "sluice/sluice.hpp"

using namespace std::chrono_literals;
using sluice::JoinHandle;
using sluice::Scope;
using sluice::ScopeOptions;
using sluice::Task;
using sluice::detail::Admission;
using sluice::detail::AdmissionWaiter;

namespace {

struct RecordingWaiter : AdmissionWaiter {
  std::vector<int>* order = nullptr;
  int id = 0;
  RecordingWaiter() {
    on_ready = [](AdmissionWaiter* w) noexcept {
      auto* self = static_cast<RecordingWaiter*>(w);
      self->order->push_back(self->error == sluice::errc{} ? self->id : -self->id);
    };
  }
};

sluice::Config workers(std::size_t n) { return sluice::Config{.threads = n}; }

Task<std::uint64_t> twice(std::uint64_t i) { co_return i * 2; }

}  // namespace

TEST_CASE("the gate hands slots to waiters in FIFO order", "[admission]") {
  Admission gate(2);
  CHECK(gate.try_acquire());
  CHECK(gate.try_acquire());
  CHECK_FALSE(gate.try_acquire());
  std::vector<int> order;
  std::vector<RecordingWaiter> waiters(3);
  for (int i = 0; i < 3; ++i) {
    waiters[i].order = &order;
    waiters[i].id = i + 1;
    CHECK(gate.acquire_or_wait(&waiters[i]));
  }
  CHECK(gate.waiting() == 3);
  CHECK_FALSE(gate.try_acquire());  // no overtaking while others wait
  gate.release();
  gate.release();
  CHECK(order == std::vector<int>{1, 2});
  CHECK(gate.in_use() == 2);  // handed over, never lowered
  gate.close(sluice::errc::shutting_down);
  CHECK(order == std::vector<int>{1, 2, -3});
  CHECK(gate.waiting() == 0);
  RecordingWaiter late;
  late.order = &order;
  CHECK_FALSE(gate.acquire_or_wait(&late));
  CHECK(late.error == sluice::errc::shutting_down);
}

TEST_CASE("waiters withdrawn one by one or by owner leave the rest in FIFO order", "[admission]") {
  Admission gate(1);
  REQUIRE(gate.try_acquire());
  std::vector<int> order;
  std::vector<RecordingWaiter> waiters(6);
  int owner_a = 0;
  int owner_b = 0;
  for (int i = 0; i < 6; ++i) {
    waiters[i].order = &order;
    waiters[i].id = i + 1;
    waiters[i].owner = i % 2 == 0 ? &owner_a : &owner_b;
    REQUIRE(gate.acquire_or_wait(&waiters[i]));
  }
  // The tail, the head and one in the middle, each alone.
  CHECK(gate.withdraw_one(&waiters[5], sluice::errc::cancelled));
  CHECK(gate.withdraw_one(&waiters[0], sluice::errc::cancelled));
  CHECK(gate.withdraw_one(&waiters[2], sluice::errc::cancelled));
  CHECK_FALSE(gate.withdraw_one(&waiters[2], sluice::errc::cancelled));  // twice: nothing
  CHECK(order == std::vector<int>{-6, -1, -3});
  CHECK(gate.waiting() == 3);                            // 2, 4, 5 wait, in that order
  gate.withdraw(&owner_a, sluice::errc::shutting_down);  // waiter 5
  CHECK(order == std::vector<int>{-6, -1, -3, -5});
  gate.release();  // to 2
  CHECK(order.back() == 2);
  CHECK_FALSE(gate.withdraw_one(&waiters[1], sluice::errc::cancelled));  // granted already
  gate.release();                                                        // to 4
  CHECK(order.back() == 4);
  CHECK(gate.waiting() == 0);
  gate.release();
  CHECK(gate.in_use() == 0);
  // Withdrawn after the gate closed: nothing (close woke it already).
  REQUIRE(gate.try_acquire());
  RecordingWaiter last;
  last.order = &order;
  last.id = 7;
  RecordingWaiter after;
  after.order = &order;
  after.id = 8;
  REQUIRE(gate.acquire_or_wait(&last));
  REQUIRE(gate.acquire_or_wait(&after));
  gate.close(sluice::errc::shutting_down);
  CHECK(order == std::vector<int>{-6, -1, -3, -5, 2, 4, -7, -8});
  CHECK_FALSE(gate.withdraw_one(&after, sluice::errc::cancelled));
  CHECK_FALSE(gate.withdraw_one(&last, sluice::errc::cancelled));
}

TEST_CASE("a million spawns through max_pending = 1000: the bound holds, nothing is lost",
          "[admission][stress]") {
  sluice::Runtime rt(workers(4));
  constexpr std::uint64_t n = 1'000'000;
  constexpr std::size_t bound = 1000;
  Scope scope(rt, ScopeOptions{.max_pending = bound});
  std::atomic<bool> sampling{true};
  std::atomic<std::uint64_t> max_seen{0};
  std::atomic<std::uint64_t> samples{0};
  std::thread sampler([&] {
    while (sampling.load(std::memory_order_relaxed)) {
      const auto p = scope.pending();
      if (p > max_seen.load(std::memory_order_relaxed)) {
        max_seen.store(p, std::memory_order_relaxed);
      }
      samples.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::atomic<std::uint64_t> sum{0};
  // The co_await spawn path: the producer suspends at the bound.
  auto bounded = [&]() -> Task<void> {
    for (std::uint64_t i = 0; i < n; ++i) {
      auto h =
          co_await scope.spawn([](std::uint64_t v, std::atomic<std::uint64_t>& s) -> Task<void> {
            s.fetch_add(v * 2, std::memory_order_relaxed);
            co_return;
          }(i, sum));
      (void)h;  // dropped: detached, still counted by the scope
    }
    co_await scope.join();
  };
  rt.block_on(bounded());
  sampling.store(false);
  sampler.join();
  INFO("pending sampled " << samples.load() << " times");
  CHECK(max_seen.load() <= bound);
  CHECK(max_seen.load() >= bound / 2);  // the bound was actually reached
  CHECK(sum.load() == n * (n - 1));
  const auto m = rt.metrics();
  CHECK(m.spawned == n);
  CHECK(m.completed == n);
  CHECK(m.rejected == 0);
}

TEST_CASE("waiting producers resume in FIFO order", "[admission]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt, ScopeOptions{.max_pending = 1});
  // A gate task holds the only slot until released.
  std::atomic<bool> open{false};
  auto gate = [](std::atomic<bool>& o) -> Task<void> {
    while (!o.load()) {
      co_await sluice::yield();
    }
  };
  auto holder = scope.spawn_with_handle(gate(open));
  REQUIRE(holder.valid());
  std::mutex m;
  std::vector<int> order;
  Scope producers(rt);
  for (int id = 0; id < 8; ++id) {
    producers.spawn_detached([](Scope& s, int me, std::mutex& mu,
                                std::vector<int>& out) -> Task<void> {
      auto h = co_await s.spawn([](std::mutex& mu2, std::vector<int>& out2, int who) -> Task<void> {
        std::lock_guard lock(mu2);
        out2.push_back(who);
        co_return;
      }(mu, out, me));
      co_await h;
    }(scope, id, m, order));
    // Let producer `id` queue at the gate before the next one starts.
    REQUIRE(sluice::test::eventually(
        [&] { return scope.waiting() == static_cast<std::size_t>(id) + 1; }));
  }
  open.store(true);
  rt.block_on(producers.join());
  rt.block_on(scope.join());
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("spawn_with_handle at the bound returns a handle already rejected", "[admission]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt, ScopeOptions{.max_pending = 1});
  std::atomic<bool> open{false};
  auto held = scope.spawn_with_handle([](std::atomic<bool>& o) -> Task<void> {
    while (!o.load()) {
      co_await sluice::yield();
    }
  }(open));
  auto refused = scope.spawn_with_handle(twice(1));
  CHECK(refused.done());
  auto check = [&]() -> Task<bool> {
    auto r = co_await refused.result();
    co_return !r.has_value() && r.error() == sluice::errc::rejected;
  };
  CHECK(rt.block_on(check()));
  auto awaiting = [&]() -> Task<void> { co_await refused; };
  CHECK_THROWS_AS(rt.block_on(awaiting()), std::logic_error);  // taken by result()
  auto refused_again = scope.spawn_with_handle(twice(2));
  auto awaiting_again = [&]() -> Task<void> { co_await refused_again; };
  CHECK_THROWS_AS(rt.block_on(awaiting_again()), sluice::rejected_error);
  open.store(true);
  rt.block_on(scope.join());
  const auto m = rt.metrics();
  CHECK(m.rejected == 2);
  CHECK(m.spawned == m.completed + m.rejected);
}

TEST_CASE("nested scopes count toward the parent's bound and the runtime's", "[admission]") {
  sluice::Runtime rt(sluice::Config{.threads = 2, .max_pending = 3});
  Scope outer(rt, ScopeOptions{.max_pending = 2});
  Scope inner(outer);
  std::atomic<bool> open{false};
  auto hold = [](std::atomic<bool>& o) -> Task<void> {
    while (!o.load()) {
      co_await sluice::yield();
    }
  };
  auto a = inner.spawn_with_handle(hold(open));
  auto b = outer.spawn_with_handle(hold(open));
  auto c = inner.spawn_with_handle(hold(open));  // outer is full
  CHECK_FALSE(a.done());
  CHECK(c.done());
  Scope other(rt);
  auto d = other.spawn_with_handle(hold(open));  // runtime: 3rd slot
  auto e = other.spawn_with_handle(hold(open));  // runtime full
  CHECK_FALSE(d.done());
  CHECK(e.done());
  open.store(true);
  rt.block_on(inner.join());
  rt.block_on(outer.join());
  rt.block_on(other.join());
  CHECK(rt.metrics().rejected == 2);
}

TEST_CASE("stopping a scope wakes waiting producers with shutting_down", "[admission]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt, ScopeOptions{.max_pending = 1});
  std::atomic<bool> open{false};
  auto held = scope.spawn_with_handle([](std::atomic<bool>& o) -> Task<void> {
    while (!o.load()) {
      co_await sluice::yield();
    }
  }(open));
  std::atomic<int> refused{0};
  Scope producers(rt);
  for (int i = 0; i < 4; ++i) {
    producers.spawn_detached([](Scope& s, std::atomic<int>& r) -> Task<void> {
      try {
        auto h = co_await s.spawn(twice(1));
        (void)h;
      } catch (const sluice::shutting_down_error&) {
        r.fetch_add(1);
      }
    }(scope, refused));
  }
  REQUIRE(sluice::test::eventually([&] { return scope.waiting() == 4; }));
  scope.request_stop();  // also stops `held`: yield throws
  rt.block_on(producers.join());
  rt.block_on(scope.join());
  CHECK(refused.load() == 4);
  auto late = scope.spawn_with_handle(twice(2));
  auto check = [&]() -> Task<std::error_code> {
    auto r = co_await late.result();
    co_return r.error();
  };
  CHECK(rt.block_on(check()) == sluice::errc::shutting_down);
  const auto m = rt.metrics();
  CHECK(m.spawned == m.completed + m.failed + m.cancelled + m.timed_out + m.rejected);
}

TEST_CASE("a task spawning into its own full scope waits, without blocking the pool",
          "[admission]") {
  // Both slots are held by parents waiting for a slot for their child: those
  // tasks wait on each other. The pool keeps running other work, and a stop
  // resolves it (the waiting spawns fail with shutting_down).
  sluice::Runtime rt(workers(2));
  Scope scope(rt, ScopeOptions{.max_pending = 2});
  std::atomic<int> parents_waiting{0};
  std::atomic<bool> go{false};  // both parents admitted before either spawns
  for (int i = 0; i < 2; ++i) {
    REQUIRE(scope.spawn_detached(
        [](Scope& s, std::atomic<int>& w, const std::atomic<bool>& both_in) -> Task<void> {
          while (!both_in.load()) {
            co_await sluice::yield();
          }
          w.fetch_add(1);
          auto h = co_await s.spawn(twice(3));
          co_await h;
        }(scope, parents_waiting, go)));
  }
  go.store(true);
  REQUIRE(sluice::test::eventually(
      [&] { return parents_waiting.load() == 2 && scope.waiting() == 2; }));
  CHECK(scope.pending() == 2);
  Scope elsewhere(rt);
  auto other = elsewhere.spawn_with_handle(twice(21));
  auto get = [&]() -> Task<std::uint64_t> { co_return co_await other; };
  CHECK(rt.block_on(get()) == 42);  // the pool is not blocked
  scope.request_stop();
  rt.block_on(scope.join());
  CHECK(scope.pending() == 0);
}

TEST_CASE("a finishing child hands its slot to a nested scope's waiting producer", "[admission]") {
  // The outer bound is 1. Its child holds the slot; a producer spawning into
  // a nested scope waits at the outer level. When the child finishes, the
  // slot passes straight to that producer (a newcomer cannot take it), and
  // the outer scope's join completes although the nested child still holds
  // the slot: join waits for the scope's own children only.
  sluice::Runtime rt(workers(2));
  Scope outer(rt, ScopeOptions{.max_pending = 1});
  Scope inner(outer);
  std::atomic<bool> first_open{false};
  std::atomic<bool> second_open{false};
  auto hold = [](std::atomic<bool>& o) -> Task<void> {
    while (!o.load()) {
      co_await sluice::yield();
    }
  };
  auto first = outer.spawn_with_handle(hold(first_open));
  Scope producers(rt);
  std::atomic<bool> spawned{false};
  producers.spawn_detached([](Scope& s, Task<void> t, std::atomic<bool>& done) -> Task<void> {
    (void)co_await s.spawn(std::move(t));
    done.store(true);
  }(inner, hold(second_open), spawned));
  REQUIRE(sluice::test::eventually([&] { return outer.waiting() == 1; }));
  auto refused = outer.spawn_with_handle(twice(1));  // full, and someone waits
  CHECK(refused.done());
  first_open.store(true);
  REQUIRE(sluice::test::eventually([&] { return spawned.load(); }));
  CHECK(outer.waiting() == 0);
  rt.block_on(outer.join());  // the nested child still runs
  CHECK(outer.pending() == 0);
  CHECK(inner.pending() == 1);
  auto late = outer.spawn_with_handle(twice(2));  // the nested child holds the slot
  CHECK(late.done());
  second_open.store(true);
  rt.block_on(inner.join());
  rt.block_on(producers.join());
  auto after = outer.spawn_with_handle(twice(3));
  auto get = [&]() -> Task<std::uint64_t> { co_return co_await after; };
  CHECK(rt.block_on(get()) == 6);
  rt.block_on(outer.join());
  const auto m = rt.metrics();
  CHECK(m.rejected == 2);
  CHECK(m.spawned == m.completed + m.failed + m.cancelled + m.timed_out + m.rejected);
}

// Producers of the outer scope and of two nested ones (one bounded) compete
// for the outer bound: slots pass between own and nested children, and no
// bound is ever exceeded by running tasks.
TEST_CASE("nested and own producers share a parent's bound under load", "[admission][stress]") {
  sluice::Runtime rt(workers(2));
  constexpr int kPerProducer = 20'000;
  // Tight bounds; and an outer bound wide enough for its workers to take
  // slots ahead (credits), which nested scopes' producers then wait behind.
  const auto [kOuterBound, kInnerBound] = GENERATE(std::pair<std::size_t, std::size_t>{8, 3},
                                                   std::pair<std::size_t, std::size_t>{400, 150});
  INFO("outer bound " << kOuterBound << ", inner " << kInnerBound);
  Scope outer(rt, ScopeOptions{.max_pending = kOuterBound});
  Scope free_inner(outer);
  Scope tight_inner(outer, ScopeOptions{.max_pending = kInnerBound});
  using Gauge = sluice::test::InFlight;
  Gauge all;
  Gauge tight;
  std::atomic<int> ran{0};
  auto work = [](Gauge& a, Gauge* t, std::atomic<int>& r, int i) -> Task<void> {
    a.enter();
    if (t != nullptr) {
      t->enter();
    }
    if (i % 3 == 0) {
      co_await sluice::yield();
    }
    r.fetch_add(1);
    if (t != nullptr) {
      t->leave();
    }
    a.leave();
  };
  auto produce = [&](Scope& into, Gauge* t) -> Task<void> {
    for (int i = 0; i < kPerProducer; ++i) {
      (void)co_await into.spawn(work(all, t, ran, i));
    }
  };
  Scope producers(rt);
  producers.spawn_detached(produce(outer, nullptr));
  producers.spawn_detached(produce(free_inner, nullptr));
  producers.spawn_detached(produce(tight_inner, &tight));
  rt.block_on(producers.join());
  rt.block_on(free_inner.join());
  rt.block_on(tight_inner.join());
  rt.block_on(outer.join());
  CHECK(ran.load() == 3 * kPerProducer);
  CHECK(all.max.load() <= static_cast<int>(kOuterBound));
  CHECK(tight.max.load() <= static_cast<int>(kInnerBound));
  CHECK(outer.pending() == 0);
  CHECK(outer.waiting() == 0);
  CHECK(tight_inner.waiting() == 0);
  const auto m = rt.metrics();
  CHECK(m.rejected == 0);
  CHECK(m.spawned == m.completed + m.failed + m.cancelled + m.timed_out + m.rejected);
}

TEST_CASE("stopping a nested scope wakes its producers waiting at an outer level", "[admission]") {
  // The outer bound (and the runtime's) is held by a task that does not end
  // by itself. Producers of nested scopes queue at those levels; stopping
  // their own scope must wake them with shutting_down (their join would
  // otherwise wait for an outer slot), and leave other producers queued.
  for (const bool runtime_level : {false, true}) {
    // At the runtime level, 4 slots: the holder and the three producers
    // below; the producers' children wait.
    sluice::Runtime rt(sluice::Config{
        .threads = 2, .max_pending = runtime_level ? std::optional<std::size_t>(4) : std::nullopt});
    Scope outer(rt, ScopeOptions{.max_pending =
                                     runtime_level ? std::nullopt : std::optional<std::size_t>(1)});
    std::atomic<bool> open{false};
    auto holder = outer.spawn_with_handle([](std::atomic<bool>& o) -> Task<void> {
      while (!o.load()) {
        co_await sluice::yield();
      }
    }(open));
    Scope stopped(outer);
    Scope kept(outer);
    std::atomic<int> refused{0};
    std::atomic<int> admitted{0};
    std::atomic<bool> go{false};  // all three producers hold their own slots first
    auto produce = [&go](Scope& s, std::atomic<int>& r, std::atomic<int>& a) -> Task<void> {
      while (!go.load()) {
        co_await sluice::yield();
      }
      try {
        (void)co_await s.spawn(twice(1));
        a.fetch_add(1);
      } catch (const sluice::shutting_down_error&) {
        r.fetch_add(1);
      }
    };
    Scope producers(rt);
    producers.spawn_detached(produce(stopped, refused, admitted));
    producers.spawn_detached(produce(stopped, refused, admitted));
    producers.spawn_detached(produce(kept, refused, admitted));
    go.store(true);
    const bool queued = sluice::test::eventually([&] {
      return stopped.pending() == 2 && kept.pending() == 1 &&
             (runtime_level || outer.waiting() == 3);
    });
    INFO("runtime level: " << runtime_level << ", stopped.pending " << stopped.pending()
                           << ", kept.pending " << kept.pending() << ", outer.waiting "
                           << outer.waiting() << ", refused " << refused.load() << ", admitted "
                           << admitted.load() << ", holder done " << holder.done());
    REQUIRE(queued);
    stopped.request_stop();
    REQUIRE(sluice::test::eventually([&] { return refused.load() == 2; }));
    rt.block_on(stopped.join());  // does not wait for an outer slot
    CHECK(stopped.pending() == 0);
    if (!runtime_level) {
      // (At the runtime level the refused producers' own slots free up as
      // they end, and the kept one may be admitted now.)
      CHECK(admitted.load() == 0);
      CHECK(outer.waiting() == 1);
    }
    open.store(true);  // the kept producer gets the slot
    rt.block_on(producers.join());
    CHECK(admitted.load() == 1);
    rt.block_on(kept.join());
    rt.block_on(outer.join());
    const auto m = rt.metrics();
    CHECK(m.spawned == m.completed + m.failed + m.cancelled + m.timed_out + m.rejected);
  }
}

namespace {

// Holds a slot until `open`, suspended (polling on a timer), not spinning.
Task<void> held_until(const std::atomic<bool>& open, std::atomic<int>& ended) {
  while (!open.load(std::memory_order_acquire)) {
    co_await sluice::sleep_for(1ms);
  }
  ended.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

// A worker spawning into a bounded scope that is far from its bound takes
// slots ahead (credits). Where its producer stops spawning, they sit in that
// worker's slot: a producer that then finds the bound reached gets them
// instead of waiting, so the bound is still reached exactly.
TEST_CASE("slots a worker took ahead go to the producer that waits", "[admission]") {
  // The second producer spawns into the bounded scope itself and waits at
  // the bound; or into a nested scope whose children take slots of its
  // bound; or it is a plain thread whose spawn_detached is refused at the
  // bound (it must not be refused below it).
  enum class Second { own, nested, refused };
  const Second mode = GENERATE(Second::own, Second::nested, Second::refused);
  const bool nested = mode == Second::nested;
  INFO((mode == Second::own      ? "the scope's own producer"
        : mode == Second::nested ? "a nested scope's producer"
                                 : "spawn_detached from a plain thread"));
  sluice::Runtime rt(workers(2));
  constexpr int bound = 400;
  constexpr int first = 150;  // leaves credits on the first producer's worker
  Scope scope(rt, ScopeOptions{.max_pending = bound});
  Scope inner(scope);
  Scope& second_into = nested ? inner : scope;
  Scope producers(rt);
  std::atomic<bool> open{false};
  std::atomic<int> ended{0};
  std::atomic<bool> first_done{false};
  std::atomic<bool> release_first{false};
  std::atomic<int> second_spawned{0};
  // Named: a coroutine lambda's captures live in the closure, not the frame.
  auto first_producer = [&]() -> Task<void> {
    for (int i = 0; i < first; ++i) {
      (void)co_await scope.spawn(held_until(open, ended));
    }
    first_done.store(true, std::memory_order_release);
    // Keeps this worker busy, so the second producer runs on the other one
    // and finds none of these credits in its own slot.
    while (!release_first.load(std::memory_order_acquire)) {
      std::this_thread::sleep_for(100us);
    }
  };
  auto second_producer = [&]() -> Task<void> {
    for (;;) {
      auto h = co_await second_into.spawn(held_until(open, ended));
      (void)h;
      if (second_spawned.fetch_add(1, std::memory_order_relaxed) + 1 + first > bound) {
        break;
      }
    }
  };
  producers.spawn_detached(first_producer());
  REQUIRE(sluice::test::eventually([&] { return first_done.load(); }));
  CHECK(scope.pending() == first);  // credits are not tasks
  if (mode == Second::refused) {
    while (scope.spawn_detached(held_until(open, ended))) {
      second_spawned.fetch_add(1, std::memory_order_relaxed);
    }
    CHECK(second_spawned.load() == bound - first);
    CHECK(scope.pending() == static_cast<std::size_t>(bound));
  } else {
    producers.spawn_detached(second_producer());
    // Every slot of the bound in use, and the second producer waiting for
    // the next one: with the credits left idle it would wait at bound -
    // credits.
    const bool full = sluice::test::eventually(
        [&] { return second_spawned.load() == bound - first && scope.waiting() == 1; });
    INFO("spawned " << second_spawned.load() << ", waiting " << scope.waiting());
    CHECK(full);
    if (!nested) {
      CHECK(scope.pending() == static_cast<std::size_t>(bound));
    }
  }
  release_first.store(true, std::memory_order_release);
  open.store(true, std::memory_order_release);
  rt.block_on(producers.join());
  rt.block_on(inner.join());
  rt.block_on(scope.join());
  CHECK(ended.load() == (mode == Second::refused ? bound : bound + 1));
  CHECK(scope.pending() == 0);
  const auto m = rt.metrics();
  CHECK(m.rejected == (mode == Second::refused ? 1U : 0U));
  CHECK(m.spawned == m.completed + m.rejected);
}
