#include "timer_wheel.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <deque>
#include <random>
#include <set>
#include <utility>
#include <vector>

using sluice::detail::TimerLink;
using sluice::detail::TimerWheel;

namespace {

struct Timer : TimerLink {
  std::size_t id = 0;
  bool linked = false;
};

// Advances `wheel` to `now`; returns the ticks reported due, in order.
std::vector<std::uint64_t> advance(TimerWheel& wheel, std::uint64_t now) {
  std::vector<std::uint64_t> due;
  wheel.advance(now, [&](TimerLink& t) {
    auto& timer = static_cast<Timer&>(t);
    CHECK(timer.linked);
    timer.linked = false;
    due.push_back(t.tick);
  });
  return due;
}

}  // namespace

TEST_CASE("timers fire once, in tick order, when the wheel reaches them", "[timer_wheel]") {
  TimerWheel wheel(1000);
  std::deque<Timer> timers(6);
  const std::uint64_t ticks[] = {1001, 1063, 1064, 1000 + 4096, 1000 + 300000, 1001};
  for (std::size_t i = 0; i < timers.size(); ++i) {
    timers[i].tick = ticks[i];
    timers[i].linked = true;
    wheel.insert(timers[i]);
  }
  CHECK(wheel.size() == 6);
  CHECK(wheel.next_expiration() == 1001);
  CHECK(advance(wheel, 1000).empty());
  CHECK(advance(wheel, 1001) == std::vector<std::uint64_t>{1001, 1001});
  CHECK(advance(wheel, 1062).empty());
  CHECK(wheel.elapsed() == 1062);
  CHECK(advance(wheel, 5000) == std::vector<std::uint64_t>{1063, 1064});
  CHECK(advance(wheel, 5096) == std::vector<std::uint64_t>{5096});
  CHECK(wheel.size() == 1);
  CHECK(wheel.next_expiration() <= 301000);
  CHECK(advance(wheel, 1'000'000) == std::vector<std::uint64_t>{301000});
  CHECK(wheel.size() == 0);
  CHECK(wheel.next_expiration() == TimerWheel::kNever);
}

TEST_CASE("ticks at the far end of the 64-bit range are neither clamped nor early",
          "[timer_wheel]") {
  TimerWheel wheel(5);
  Timer far;
  far.tick = TimerWheel::kNever - 1;
  far.linked = true;
  wheel.insert(far);
  Timer near;
  near.tick = 6;
  near.linked = true;
  wheel.insert(near);
  CHECK(advance(wheel, 6) == std::vector<std::uint64_t>{6});
  CHECK(advance(wheel, std::uint64_t{1} << 62).empty());
  CHECK(advance(wheel, TimerWheel::kNever - 2).empty());
  CHECK(advance(wheel, TimerWheel::kNever - 1) ==
        std::vector<std::uint64_t>{TimerWheel::kNever - 1});
}

TEST_CASE("a removed timer never fires, and removal keeps its neighbours", "[timer_wheel]") {
  TimerWheel wheel(0);
  std::deque<Timer> timers(3);
  for (auto& t : timers) {
    t.tick = 10;  // one slot, three links
    t.linked = true;
    wheel.insert(t);
  }
  wheel.remove(timers[1]);
  timers[1].linked = false;
  CHECK(advance(wheel, 10) == std::vector<std::uint64_t>{10, 10});
  CHECK_FALSE(timers[0].linked);
  CHECK_FALSE(timers[2].linked);
}

// Random inserts (spans from 1 tick to 2^40), removals and advances, checked
// against a sorted reference after every step.
TEST_CASE("random operations match a sorted reference", "[timer_wheel]") {
  std::mt19937_64 rng(20261123);
  std::uint64_t now = rng() >> 20;
  TimerWheel wheel(now);
  std::deque<Timer> timers;
  std::multiset<std::pair<std::uint64_t, std::size_t>> reference;
  std::vector<std::size_t> live;
  for (int step = 0; step < 200'000; ++step) {
    const auto op = rng() % 10;
    if (op < 5) {
      const unsigned scale = static_cast<unsigned>(rng() % 41);
      const std::uint64_t span = 1 + rng() % (std::uint64_t{1} << scale);
      auto& t = timers.emplace_back();
      t.id = timers.size() - 1;
      t.tick = wheel.elapsed() + span;
      t.linked = true;
      wheel.insert(t);
      reference.emplace(t.tick, t.id);
      live.push_back(t.id);
    } else if (op < 7 && !live.empty()) {
      const std::size_t k = rng() % live.size();
      Timer& t = timers[live[k]];
      live[k] = live.back();
      live.pop_back();
      if (t.linked) {
        wheel.remove(t);
        t.linked = false;
        reference.erase(reference.find({t.tick, t.id}));
      }
    } else {
      // Mostly short steps, sometimes straight to the next expiration or far.
      const auto kind = rng() % 8;
      std::uint64_t to = now + rng() % 128;
      if (kind == 0) {
        to = std::max(now, std::min(wheel.next_expiration(), now + (std::uint64_t{1} << 41)));
      } else if (kind == 1) {
        to = now + (rng() % (std::uint64_t{1} << 36));
      }
      std::vector<std::uint64_t> expected;
      while (!reference.empty() && reference.begin()->first <= to) {
        expected.push_back(reference.begin()->first);
        reference.erase(reference.begin());
      }
      const auto due = advance(wheel, to);
      REQUIRE(due == expected);
      now = to;
      REQUIRE(wheel.elapsed() == now);
    }
    REQUIRE(wheel.size() == reference.size());
    if (!reference.empty()) {
      const auto next = wheel.next_expiration();
      REQUIRE(next <= reference.begin()->first);
      REQUIRE(next > wheel.elapsed());
    } else {
      REQUIRE(wheel.next_expiration() == TimerWheel::kNever);
    }
  }
}
