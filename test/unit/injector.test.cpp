#include "sched/injector.hpp"

#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <thread>
#include <vector>

using sluice::detail::Injector;
using sluice::detail::TaskNode;

namespace {

struct Item : TaskNode {
  std::uint64_t id = 0;
};

std::vector<Item> make_items(std::size_t n) {
  std::vector<Item> items(n);
  for (std::size_t i = 0; i < n; ++i) {
    items[i].id = i;
  }
  return items;
}

// Random batches in and out, checked against a std::deque.
void check_fifo(Injector& q, std::size_t n, std::uint64_t seed) {
  auto items = make_items(n);
  std::deque<TaskNode*> model;
  std::mt19937_64 rng(seed);
  std::size_t next = 0;
  std::array<TaskNode*, 64> out{};
  while (next < n || !model.empty()) {
    if (next < n && rng() % 3 != 0) {
      const std::size_t k = std::min<std::size_t>(1 + rng() % 40, n - next);
      std::vector<TaskNode*> batch;
      for (std::size_t i = 0; i < k; ++i) {
        batch.push_back(&items[next + i]);
        model.push_back(&items[next + i]);
      }
      next += k;
      q.push_batch(batch);
    } else {
      const std::size_t want = 1 + rng() % out.size();
      const std::size_t got = q.pop_batch(std::span<TaskNode*>(out.data(), want));
      REQUIRE(got == std::min(want, model.size()));
      for (std::size_t i = 0; i < got; ++i) {
        REQUIRE(out[i] == model.front());
        model.pop_front();
      }
    }
    REQUIRE(q.len() == model.size());
  }
  CHECK(q.is_empty());
  CHECK(q.pop() == nullptr);
}

}  // namespace

TEST_CASE("the injector is FIFO across its blocks", "[injector]") {
  Injector q;
  check_fifo(q, 200'000, 1);
}

TEST_CASE("past its last block the injector queues on its list, still FIFO", "[injector]") {
  // Two blocks at most: longer backlogs spill onto the list behind them
  // (the path taken when memory runs out), and pushes keep going there
  // until it drains.
  Injector q(2);
  check_fifo(q, 200'000, 2);
}

TEST_CASE("the injector loses nothing under concurrent pushers and poppers", "[injector][stress]") {
  constexpr std::size_t per_pusher = 200'000;
  constexpr int pushers = 2;
  constexpr int poppers = 2;
  for (const std::size_t max_blocks : {std::size_t{1} << 20, std::size_t{2}}) {
    INFO("blocks at most: " << max_blocks);
    Injector q(max_blocks);
    std::vector<std::vector<Item>> items;
    for (int p = 0; p < pushers; ++p) {
      items.push_back(make_items(per_pusher));
    }
    std::atomic<std::uint64_t> popped{0};
    std::atomic<std::uint64_t> sum{0};
    std::vector<std::thread> threads;
    for (int p = 0; p < pushers; ++p) {
      threads.emplace_back([&, p] {
        auto& mine = items[static_cast<std::size_t>(p)];
        std::vector<TaskNode*> batch;
        for (std::size_t i = 0; i < per_pusher; ++i) {
          batch.push_back(&mine[i]);
          if (batch.size() == 1 + i % 17) {
            q.push_batch(batch);
            batch.clear();
          }
        }
        q.push_batch(batch);
      });
    }
    for (int c = 0; c < poppers; ++c) {
      threads.emplace_back([&] {
        std::array<TaskNode*, 32> out{};
        while (popped.load() < per_pusher * pushers) {
          const std::size_t got = q.pop_batch(out);
          std::uint64_t s = 0;
          for (std::size_t i = 0; i < got; ++i) {
            s += static_cast<Item*>(out[i])->id + 1;
          }
          sum.fetch_add(s);
          popped.fetch_add(got);
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    CHECK(popped.load() == per_pusher * pushers);
    CHECK(sum.load() == pushers * per_pusher * (per_pusher + 1) / 2);
    CHECK(q.is_empty());
  }
}
