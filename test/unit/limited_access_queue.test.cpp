#include "sched/limited_access_queue.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <mutex>
#include <numeric>
#include <thread>
#include <vector>

using sluice::detail::LimitedAccessQueue;

namespace {

struct Sink {
  std::vector<std::uint64_t> items;
  int calls = 0;
  void operator()(std::span<std::uint64_t> batch) {
    ++calls;
    items.insert(items.end(), batch.begin(), batch.end());
  }
};

void drain(LimitedAccessQueue<std::uint64_t, 16>::Owner& q, std::vector<std::uint64_t>& out) {
  while (auto v = q.pop_front()) {
    out.push_back(*v);
  }
}

}  // namespace

TEST_CASE("pop_front is oldest first, pop_back newest first", "[queue]") {
  auto [owner, stealer] = LimitedAccessQueue<std::uint64_t, 16>::create();
  Sink sink;
  CHECK(owner.is_empty());
  CHECK_FALSE(owner.pop_front().has_value());
  CHECK_FALSE(owner.pop_back().has_value());
  for (std::uint64_t i = 0; i < 10; ++i) {
    owner.push(i, std::ref(sink));
  }
  CHECK(owner.len() == 10);
  CHECK(stealer.approx_len() == 10);
  for (std::uint64_t i = 0; i < 5; ++i) {
    auto front = owner.pop_front();
    REQUIRE(front.has_value());
    CHECK(*front == i);
    auto back = owner.pop_back();
    REQUIRE(back.has_value());
    CHECK(*back == 9 - i);
  }
  CHECK(owner.is_empty());
  CHECK_FALSE(owner.pop_back().has_value());
  CHECK(sink.calls == 0);
}

TEST_CASE("pop_back after a steal never returns a stolen item", "[queue]") {
  auto [victim, victim_stealer] = LimitedAccessQueue<std::uint64_t, 16>::create();
  auto [thief, thief_stealer] = LimitedAccessQueue<std::uint64_t, 16>::create();
  Sink sink;
  victim.push(1, std::ref(sink));
  auto got = victim_stealer.steal_half_into(thief);
  REQUIRE(got.has_value());
  CHECK(*got == 1);
  CHECK_FALSE(victim.pop_back().has_value());
  victim.push(2, std::ref(sink));
  victim.push(3, std::ref(sink));
  CHECK(victim.pop_back() == std::optional<std::uint64_t>(3));
  CHECK(victim.pop_back() == std::optional<std::uint64_t>(2));
  CHECK(thief.is_empty());
}

TEST_CASE("peek_back names what pop_back takes next and the items below it across wrap-around",
          "[queue]") {
  auto [owner, stealer] = LimitedAccessQueue<std::uint64_t, 16>::create();
  auto [thief, thief_stealer] = LimitedAccessQueue<std::uint64_t, 16>::create();
  Sink sink;
  CHECK_FALSE(owner.peek_back().has_value());
  // Move the indices near the end of the ring first.
  for (std::uint64_t i = 0; i < 14; ++i) {
    owner.push(i, std::ref(sink));
  }
  std::vector<std::uint64_t> out;
  drain(owner, out);
  for (std::uint64_t i = 100; i < 106; ++i) {
    owner.push(i, std::ref(sink));
  }
  CHECK(*owner.peek_back() == 105);
  CHECK(*owner.peek_back(1) == 104);
  CHECK(*owner.peek_back(5) == 100);
  CHECK_FALSE(owner.peek_back(6).has_value());
  // A steal takes the oldest half: peeking never reaches a stolen item.
  REQUIRE(stealer.steal_half_into(thief).has_value());
  const auto left = owner.len();
  CHECK_FALSE(owner.peek_back(left).has_value());
  for (std::size_t depth = 0; depth < left; ++depth) {
    CHECK(*owner.peek_back(static_cast<std::uint16_t>(depth)) == 105 - depth);
  }
  while (auto peeked = owner.peek_back()) {
    CHECK(owner.pop_back() == peeked);
  }
  CHECK(owner.is_empty());
  drain(thief, out);  // the rest of the steal
  CHECK(sink.calls == 0);
}

TEST_CASE("indices wrap around the ring", "[queue]") {
  auto [owner, stealer] = LimitedAccessQueue<std::uint64_t, 16>::create();
  Sink sink;
  std::uint64_t next_in = 0;
  std::uint64_t next_out = 0;
  for (int round = 0; round < 1000; ++round) {
    for (int k = 0; k < 11; ++k) {
      owner.push(next_in++, std::ref(sink));
    }
    for (int k = 0; k < 11; ++k) {
      auto v = owner.pop_front();
      REQUIRE(v.has_value());
      REQUIRE(*v == next_out++);
    }
  }
  CHECK(sink.calls == 0);
  CHECK(owner.is_empty());
}

TEST_CASE("a full ring moves half of itself plus the new item to the overflow", "[queue]") {
  auto [owner, stealer] = LimitedAccessQueue<std::uint64_t, 16>::create();
  Sink sink;
  for (std::uint64_t i = 0; i < 16; ++i) {
    owner.push(i, std::ref(sink));
  }
  CHECK(sink.calls == 0);
  owner.push(16, std::ref(sink));
  REQUIRE(sink.calls == 1);
  // The oldest half, in order, then the new item.
  CHECK(sink.items == std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 16});
  std::vector<std::uint64_t> rest;
  drain(owner, rest);
  CHECK(rest == std::vector<std::uint64_t>{8, 9, 10, 11, 12, 13, 14, 15});
}

TEST_CASE("steal_half_into takes half, rounded up, and returns one to run", "[queue]") {
  auto [victim, victim_stealer] = LimitedAccessQueue<std::uint64_t, 16>::create();
  auto [thief, thief_stealer] = LimitedAccessQueue<std::uint64_t, 16>::create();
  Sink sink;
  for (std::uint64_t i = 0; i < 7; ++i) {
    victim.push(i, std::ref(sink));
  }
  auto got = victim_stealer.steal_half_into(thief);
  REQUIRE(got.has_value());
  CHECK(*got == 0);         // the oldest of the 4 taken
  CHECK(thief.len() == 3);  // the other 3 went to the thief's ring
  CHECK(victim.len() == 3);
  std::vector<std::uint64_t> stolen;
  drain(thief, stolen);
  CHECK(stolen == std::vector<std::uint64_t>{1, 2, 3});
  std::vector<std::uint64_t> left;
  drain(victim, left);
  CHECK(left == std::vector<std::uint64_t>{4, 5, 6});
  CHECK_FALSE(victim_stealer.steal_half_into(thief).has_value());  // empty
}

TEST_CASE("a thief with a ring over half full does not steal", "[queue]") {
  auto [victim, victim_stealer] = LimitedAccessQueue<std::uint64_t, 16>::create();
  auto [thief, thief_stealer] = LimitedAccessQueue<std::uint64_t, 16>::create();
  Sink sink;
  for (std::uint64_t i = 0; i < 9; ++i) {
    thief.push(i, std::ref(sink));
    victim.push(100 + i, std::ref(sink));
  }
  CHECK_FALSE(victim_stealer.steal_half_into(thief).has_value());
  CHECK(victim.len() == 9);
  std::vector<std::uint64_t> sink_out;
  drain(thief, sink_out);
  drain(victim, sink_out);
}

namespace {

// One owner pushes 1..n, popping now and then; `thieves` threads steal into
// their own rings and pop from them; overflow goes to a locked vector. Every
// item must be seen exactly once.
template <std::size_t Capacity>
void owner_and_thieves(std::uint64_t n, int thieves) {
  using Q = LimitedAccessQueue<std::uint64_t, Capacity>;
  auto [owner, stealer] = Q::create();
  std::vector<std::vector<std::uint64_t>> seen(thieves + 2);
  std::mutex overflow_mutex;
  std::atomic<bool> done{false};

  std::vector<std::thread> threads;
  for (int t = 0; t < thieves; ++t) {
    threads.emplace_back([&, t] {
      auto [mine, mine_stealer] = Q::create();
      auto& out = seen[t];
      for (;;) {
        const bool finished = done.load(std::memory_order_acquire);
        if (auto v = stealer.steal_half_into(mine)) {
          out.push_back(*v);
        }
        while (auto v = (out.size() % 2 == 0 ? mine.pop_back() : mine.pop_front())) {
          out.push_back(*v);
        }
        if (finished && stealer.approx_len() == 0) {
          break;
        }
      }
    });
  }

  auto& owner_seen = seen[thieves];
  auto& overflowed = seen[thieves + 1];
  auto overflow = [&](std::span<std::uint64_t> batch) {
    std::lock_guard lock(overflow_mutex);
    overflowed.insert(overflowed.end(), batch.begin(), batch.end());
  };
  for (std::uint64_t i = 1; i <= n; ++i) {
    owner.push(i, overflow);
    if (i % 3 == 0) {
      if (auto v = owner.pop_back()) {
        owner_seen.push_back(*v);
      }
    }
    if (i % 7 == 0) {
      if (auto v = owner.pop_front()) {
        owner_seen.push_back(*v);
      }
    }
  }
  while (auto v = owner.pop_back()) {
    owner_seen.push_back(*v);
  }
  done.store(true, std::memory_order_release);
  for (auto& t : threads) {
    t.join();
  }

  std::vector<std::uint8_t> hits(n + 1, 0);
  std::uint64_t count = 0;
  std::uint64_t sum = 0;
  for (const auto& v : seen) {
    for (auto x : v) {
      REQUIRE(x >= 1);
      REQUIRE(x <= n);
      REQUIRE(hits[x] == 0);  // never twice
      hits[x] = 1;
      ++count;
      sum += x;
    }
  }
  CHECK(count == n);
  CHECK(sum == n * (n + 1) / 2);
}

}  // namespace

TEST_CASE("one owner and several thieves see every item exactly once", "[queue][stress]") {
  owner_and_thieves<256>(10'000'000, 3);
}

TEST_CASE("a tiny ring under thieves: wrap-around and overflow under contention",
          "[queue][stress]") {
  owner_and_thieves<8>(2'000'000, 3);
}
