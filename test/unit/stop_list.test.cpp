#include "sluice/detail/stop_list.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>
#include <vector>

#include "deadline.hpp"

using namespace std::chrono_literals;
using sluice::detail::StopEntry;
using sluice::detail::StopList;

namespace {

// An entry that counts its on_stop calls; `hold` keeps on_stop running
// until it is cleared.
struct Counted : StopEntry {
  Counted() noexcept : StopEntry(&on) {}
  static void on(StopEntry* e) noexcept {
    auto& self = *static_cast<Counted*>(e);
    self.running.store(true);
    while (self.hold.load()) {
      std::this_thread::yield();
    }
    self.runs.fetch_add(1);
  }
  std::atomic<int> runs{0};
  std::atomic<bool> running{false};
  std::atomic<bool> hold{false};
};

}  // namespace

TEST_CASE("a fired StopList runs each linked entry once, and later entries at once", "[stop]") {
  StopList list;
  std::vector<Counted> linked(5);
  for (auto& e : linked) {
    CHECK(list.add(e));
  }
  Counted removed;
  CHECK(list.add(removed));
  list.remove(removed);
  list.remove(removed);  // twice: nothing

  list.fire();
  for (auto& e : linked) {
    CHECK(e.runs.load() == 1);
  }
  CHECK(removed.runs.load() == 0);

  list.fire();  // again: nothing runs twice
  for (auto& e : linked) {
    CHECK(e.runs.load() == 1);
    list.remove(e);  // no longer linked: nothing
  }

  Counted late;
  CHECK_FALSE(list.add(late));  // runs here instead of being linked
  CHECK(late.runs.load() == 1);
  list.remove(late);
  list.fire();
  CHECK(late.runs.load() == 1);
}

TEST_CASE("removing an entry waits for its on_stop running on another thread", "[stop]") {
  StopList list;
  Counted e;
  e.hold.store(true);
  REQUIRE(list.add(e));
  std::thread firing([&] { list.fire(); });
  REQUIRE(sluice::test::eventually([&] { return e.running.load(); }, 10s));
  std::atomic<bool> removed{false};
  std::thread removing([&] {
    list.remove(e);
    removed.store(true);
  });
  std::this_thread::sleep_for(50ms);
  CHECK_FALSE(removed.load());  // on_stop still runs
  e.hold.store(false);
  removing.join();
  CHECK(removed.load());
  CHECK(e.runs.load() == 1);  // finished before remove returned
  firing.join();
}

TEST_CASE("entries added and removed while the list fires run at most once per add", "[stop]") {
  constexpr int kThreads = 4;
  constexpr int kRounds = 20'000;
  for (int trial = 0; trial < 20; ++trial) {
    StopList list;
    std::atomic<bool> fired{false};
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        Counted e;
        for (int i = 0; i < kRounds; ++i) {
          const int before = e.runs.load();
          const bool was_fired = fired.load();
          const bool linked = list.add(e);
          if (!linked && e.runs.load() != before + 1) {
            failures.fetch_add(1);  // refused, so its on_stop must have run here
          }
          if (was_fired && linked) {
            failures.fetch_add(1);  // added after fire() returned: must not link
          }
          list.remove(e);
          if (e.runs.load() > before + 1) {
            failures.fetch_add(1);  // ran twice for one add
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50 * trial));
    list.fire();
    fired.store(true);
    for (auto& t : threads) {
      t.join();
    }
    CHECK(failures.load() == 0);
  }
}

namespace {

// An entry whose on_stop removes itself and another entry of its list.
struct Remover : StopEntry {
  Remover(StopList& l, StopEntry& o) noexcept : StopEntry(&on), list(l), other(o) {}
  static void on(StopEntry* e) noexcept {
    auto& self = *static_cast<Remover*>(e);
    self.list.remove(self);        // its own: on fire()'s thread, no wait
    self.list.remove(self.other);  // another, still linked: unlinked, never run
    self.ran = true;
  }
  StopList& list;
  StopEntry& other;
  bool ran = false;
};

}  // namespace

TEST_CASE("an on_stop may remove entries of its own list", "[stop]") {
  StopList list;
  Counted other;
  Remover remover(list, other);
  REQUIRE(list.add(remover));
  REQUIRE(list.add(other));
  list.fire();  // would hang if on_stop ran under the list's lock
  CHECK(remover.ran);
  CHECK(other.runs.load() == 0);
}
