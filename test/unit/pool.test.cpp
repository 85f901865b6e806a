#include "sched/pool.hpp"

#include <sys/resource.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "deadline.hpp"

using sluice::detail::Pool;
using sluice::detail::TaskNode;
using namespace std::chrono_literals;

namespace {

struct Counter {
  std::atomic<std::uint64_t> runs{0};
  std::atomic<std::uint64_t> sum{0};
  std::atomic<std::uint64_t> off_pool{0};
};

// A plain job: adds its value, checks it runs on a worker.
struct Job : TaskNode {
  Counter* counter = nullptr;
  Pool* pool = nullptr;
  std::uint64_t value = 0;

  Job() { run = &Job::execute; }
  static void execute(TaskNode* n) noexcept {
    auto* self = static_cast<Job*>(n);
    if (Pool::current() != self->pool) {
      self->counter->off_pool.fetch_add(1, std::memory_order_relaxed);
    }
    self->counter->sum.fetch_add(self->value, std::memory_order_relaxed);
    self->counter->runs.fetch_add(1, std::memory_order_release);
  }
};

std::vector<Job> make_jobs(std::size_t n, Counter& c, Pool& pool) {
  std::vector<Job> jobs(n);
  for (std::size_t i = 0; i < n; ++i) {
    jobs[i].counter = &c;
    jobs[i].pool = &pool;
    jobs[i].value = i + 1;
  }
  return jobs;
}

bool all_ran(Counter& c, std::uint64_t n, std::chrono::milliseconds limit = 60s) {
  return sluice::test::eventually([&] { return c.runs.load(std::memory_order_acquire) == n; },
                                  limit);
}

// A job that schedules every job of a list from inside the pool.
struct Spawner : TaskNode {
  std::vector<Job>* jobs = nullptr;
  Pool* pool = nullptr;
  Spawner() { run = &Spawner::execute; }
  static void execute(TaskNode* n) noexcept {
    auto* self = static_cast<Spawner*>(n);
    for (auto& j : *self->jobs) {
      self->pool->schedule(&j);
    }
  }
};

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

TEST_CASE("a million jobs submitted from outside all run once, on workers", "[pool][stress]") {
  Pool pool({.threads = 4});
  Counter c;
  constexpr std::uint64_t n = 1'000'000;
  auto jobs = make_jobs(n, c, pool);
  for (auto& j : jobs) {
    pool.schedule(&j);
  }
  REQUIRE(all_ran(c, n));
  CHECK(c.sum.load() == n * (n + 1) / 2);
  CHECK(c.off_pool.load() == 0);
}

TEST_CASE("a million jobs submitted from a worker all run once", "[pool][stress]") {
  Pool pool({.threads = 4});
  Counter c;
  constexpr std::uint64_t n = 1'000'000;
  auto jobs = make_jobs(n, c, pool);
  Spawner spawner;
  spawner.jobs = &jobs;
  spawner.pool = &pool;
  pool.schedule(&spawner);
  REQUIRE(all_ran(c, n));
  CHECK(c.sum.load() == n * (n + 1) / 2);
  CHECK(c.off_pool.load() == 0);
}

// A job that keeps its worker busy for a while.
struct SlowJob : TaskNode {
  std::atomic<int>* done = nullptr;
  SlowJob() { run = &SlowJob::execute; }
  static void execute(TaskNode* n) noexcept {
    const auto until = std::chrono::steady_clock::now() + 200us;
    while (std::chrono::steady_clock::now() < until) {
    }
    static_cast<SlowJob*>(n)->done->fetch_add(1, std::memory_order_release);
  }
};

struct SlowSpawner : TaskNode {
  std::vector<SlowJob>* jobs = nullptr;
  Pool* pool = nullptr;
  SlowSpawner() { run = &SlowSpawner::execute; }
  static void execute(TaskNode* n) noexcept {
    auto* self = static_cast<SlowSpawner*>(n);
    for (auto& j : *self->jobs) {
      self->pool->schedule(&j);
    }
  }
};

TEST_CASE("idle workers steal from a busy one", "[pool]") {
  // Fewer jobs than a ring holds, all pushed by one worker: nothing overflows
  // into the injector, so other workers can only get them by stealing.
  Pool pool({.threads = 4});
  std::atomic<int> done{0};
  std::vector<SlowJob> jobs(200);
  for (auto& j : jobs) {
    j.done = &done;
  }
  SlowSpawner spawner;
  spawner.jobs = &jobs;
  spawner.pool = &pool;
  pool.schedule(&spawner);
  REQUIRE(sluice::test::eventually([&] { return done.load() == 200; }));
  CHECK(pool.counters().steals > 0);
}

TEST_CASE("without work stealing every job still runs", "[pool]") {
  Pool pool({.threads = 3, .work_stealing = false});
  Counter c;
  constexpr std::uint64_t n = 100'000;
  auto jobs = make_jobs(n, c, pool);
  Spawner spawner;
  spawner.jobs = &jobs;
  spawner.pool = &pool;
  pool.schedule(&spawner);
  REQUIRE(all_ran(c, n));
  CHECK(pool.counters().steals == 0);
}

TEST_CASE("a burst after the pool has gone idle is always run", "[pool][stress]") {
  Pool pool({.threads = 4});
  Counter c;
  std::uint64_t expected = 0;
  std::vector<Job> jobs;
  for (int round = 0; round < 1000; ++round) {
    // Wait until every worker is parked, then submit a small burst, half the
    // time from outside and half the time from a worker.
    REQUIRE(sluice::test::eventually([&] { return pool.sleeping() == pool.size(); }));
    const std::size_t burst = 1 + round % 8;
    jobs = make_jobs(burst, c, pool);
    expected += burst;
    Spawner spawner;
    spawner.jobs = &jobs;
    spawner.pool = &pool;
    if (round % 2 == 0) {
      for (auto& j : jobs) {
        pool.schedule(&j);
      }
    } else {
      pool.schedule(&spawner);
    }
    REQUIRE(all_ran(c, expected, 20s));
  }
}

TEST_CASE("an idle pool uses no CPU", "[pool]") {
  Pool pool({.threads = 4});
  Counter c;
  auto jobs = make_jobs(10'000, c, pool);
  for (auto& j : jobs) {
    pool.schedule(&j);
  }
  REQUIRE(all_ran(c, jobs.size()));
  REQUIRE(sluice::test::eventually([&] { return pool.sleeping() == pool.size(); }));
  const double before = cpu_seconds();
  std::this_thread::sleep_for(1s);
  const double used_ms = (cpu_seconds() - before) * 1e3;
  INFO("CPU used by an idle pool over 1 s: " << used_ms << " ms");
  CHECK(used_ms < 20.0);
}

TEST_CASE("stop runs what is already queued, then joins", "[pool]") {
  Counter c;
  constexpr std::uint64_t n = 50'000;
  std::vector<Job> jobs;
  {
    Pool pool({.threads = 2});
    jobs = make_jobs(n, c, pool);
    for (auto& j : jobs) {
      pool.schedule(&j);
    }
    pool.stop();
    CHECK(c.runs.load() == n);
    pool.stop();  // a second stop is harmless
  }
  CHECK(c.runs.load() == n);
}

// A thread outside the pool whose job lets the owner destroy the pool can
// still be inside schedule() (waking a worker) when the job has run; the
// destructor must wait for it rather than free what it touches.
TEST_CASE("a pool destroyed right after an outside job ran outlives the scheduling call",
          "[pool][stress]") {
  struct Release : TaskNode {
    std::atomic<bool> ran{false};
    Release() { run = &Release::execute; }
    static void execute(TaskNode* n) noexcept {
      static_cast<Release*>(n)->ran.store(true, std::memory_order_release);
    }
  };
  for (int round = 0; round < 300; ++round) {
    Release job;
    auto pool = std::make_unique<Pool>(Pool::Options{.threads = 2});
    Pool* raw = pool.get();
    std::thread outside([raw, &job] { raw->schedule(&job); });
    REQUIRE(sluice::test::eventually([&] { return job.ran.load(std::memory_order_acquire); }));
    pool.reset();  // may overlap the end of schedule() on `outside`
    outside.join();
  }
}

// Two nodes that keep waking each other through the LIFO slot, and a third
// that keeps yielding (through the injector), must not starve a node waiting
// in the local queue (the pool runs newest first).
TEST_CASE("nodes waking each other do not starve the oldest queued node", "[pool]") {
  struct Yielder : TaskNode {
    Pool* pool = nullptr;
    std::atomic<bool>* stop = nullptr;
    Yielder() { run = &Yielder::execute; }
    static void execute(TaskNode* n) noexcept {
      auto* self = static_cast<Yielder*>(n);
      if (!self->stop->load(std::memory_order_acquire)) {
        self->pool->schedule(self, sluice::detail::Placement::yield);
      }
    }
  };
  struct PingPong : TaskNode {
    Pool* pool = nullptr;
    PingPong* other = nullptr;
    std::atomic<bool>* stop = nullptr;
    PingPong() { run = &PingPong::execute; }
    static void execute(TaskNode* n) noexcept {
      auto* self = static_cast<PingPong*>(n);
      if (!self->stop->load(std::memory_order_acquire)) {
        self->pool->schedule(self->other);
      }
    }
  };
  struct Flag : TaskNode {
    std::atomic<bool>* set = nullptr;
    Flag() { run = &Flag::execute; }
    static void execute(TaskNode* n) noexcept {
      static_cast<Flag*>(n)->set->store(true, std::memory_order_release);
    }
  };
  struct Starter : TaskNode {
    Pool* pool = nullptr;
    TaskNode* waiting = nullptr;
    TaskNode* first = nullptr;
    TaskNode* yielder = nullptr;
    Starter() { run = &Starter::execute; }
    static void execute(TaskNode* n) noexcept {
      auto* self = static_cast<Starter*>(n);
      self->pool->schedule(self->yielder, sluice::detail::Placement::yield);
      self->pool->schedule(self->waiting);  // into the LIFO slot...
      self->pool->schedule(self->first);    // ...and on into the queue
    }
  };
  std::atomic<bool> stop{false};
  std::atomic<bool> ran{false};
  Pool pool({.threads = 1});
  PingPong a;
  PingPong b;
  a.pool = b.pool = &pool;
  a.other = &b;
  b.other = &a;
  a.stop = b.stop = &stop;
  Flag waiting;
  waiting.set = &ran;
  Yielder yielder;
  yielder.pool = &pool;
  yielder.stop = &stop;
  Starter starter;
  starter.pool = &pool;
  starter.waiting = &waiting;
  starter.first = &a;
  starter.yielder = &yielder;
  pool.schedule(&starter);
  const bool waited_run = sluice::test::eventually([&] { return ran.load(); }, 30s);
  stop.store(true, std::memory_order_release);
  pool.stop();
  CHECK(waited_run);
}

// Yielded nodes wait in their worker's yielded queue, where thieves can take
// them: nodes yielded by a worker that then stays busy run elsewhere.
TEST_CASE("yielded nodes run on other workers while theirs is busy", "[pool]") {
  struct Yielded : TaskNode {
    Pool* pool = nullptr;
    std::atomic<int>* ran = nullptr;
    std::atomic<int>* elsewhere = nullptr;
    std::atomic<bool>* busy = nullptr;
    int yields_left = 1;
    Yielded() { run = &Yielded::execute; }
    static void execute(TaskNode* n) noexcept {
      auto* self = static_cast<Yielded*>(n);
      if (self->yields_left-- > 0) {
        self->pool->schedule(self, sluice::detail::Placement::yield);
        return;
      }
      if (self->busy->load(std::memory_order_acquire)) {
        self->elsewhere->fetch_add(1, std::memory_order_relaxed);
      }
      self->ran->fetch_add(1, std::memory_order_release);
    }
  };
  struct Busy : TaskNode {
    std::atomic<bool>* busy = nullptr;
    std::atomic<int>* ran = nullptr;
    int total = 0;
    Busy() { run = &Busy::execute; }
    static void execute(TaskNode* n) noexcept {
      auto* self = static_cast<Busy*>(n);
      // Holds this worker until the yielded nodes ran elsewhere (or 20 s).
      const auto limit = std::chrono::steady_clock::now() + 20s;
      while (self->ran->load(std::memory_order_acquire) < self->total &&
             std::chrono::steady_clock::now() < limit) {
      }
      self->busy->store(false, std::memory_order_release);
    }
  };
  struct Starter : TaskNode {
    Pool* pool = nullptr;
    std::vector<Yielded>* yielded = nullptr;
    Busy* busy = nullptr;
    Starter() { run = &Starter::execute; }
    static void execute(TaskNode* n) noexcept {
      auto* self = static_cast<Starter*>(n);
      for (auto& y : *self->yielded) {
        self->pool->schedule(&y, sluice::detail::Placement::yield);
      }
      self->pool->schedule(self->busy);  // runs next here, holding the worker
    }
  };
  constexpr int total = 50;
  Pool pool({.threads = 2});
  std::atomic<int> ran{0};
  std::atomic<int> elsewhere{0};
  std::atomic<bool> busy{true};
  std::vector<Yielded> yielded(total);
  for (auto& y : yielded) {
    y.pool = &pool;
    y.ran = &ran;
    y.elsewhere = &elsewhere;
    y.busy = &busy;
  }
  Busy holder;
  holder.busy = &busy;
  holder.ran = &ran;
  holder.total = total;
  Starter starter;
  starter.pool = &pool;
  starter.yielded = &yielded;
  starter.busy = &holder;
  pool.schedule(&starter);
  const bool all = sluice::test::eventually([&] { return ran.load() == total; });
  INFO("ran " << ran.load() << ", elsewhere " << elsewhere.load() << ", sleeping "
              << pool.sleeping());
  pool.stop();  // the holder may still be storing to `busy`
  REQUIRE(all);
  CHECK(elsewhere.load() == total);  // all while the holder ran
}

// On one worker, yielded nodes run after the nodes it queued since (new work
// stays newest first), and among themselves oldest first.
TEST_CASE("yielded nodes run after newer work and oldest first", "[pool]") {
  struct Recorder : TaskNode {
    std::vector<int>* order = nullptr;
    std::atomic<int>* ran = nullptr;
    int id = 0;
    Recorder() { run = &Recorder::execute; }
    static void execute(TaskNode* n) noexcept {
      auto* self = static_cast<Recorder*>(n);
      self->order->push_back(self->id);  // one worker: no race
      self->ran->fetch_add(1, std::memory_order_release);
    }
  };
  struct Starter : TaskNode {
    Pool* pool = nullptr;
    std::vector<Recorder>* nodes = nullptr;
    Starter() { run = &Starter::execute; }
    static void execute(TaskNode* n) noexcept {
      auto* self = static_cast<Starter*>(n);
      auto& r = *self->nodes;
      for (int i = 0; i < 3; ++i) {
        self->pool->schedule(&r[static_cast<std::size_t>(i)],
                             sluice::detail::Placement::yield);  // ids 0, 1, 2
      }
      self->pool->schedule(&r[3]);  // newer work: ids 3, 4
      self->pool->schedule(&r[4]);
    }
  };
  Pool pool({.threads = 1});
  std::vector<int> order;
  std::atomic<int> ran{0};
  std::vector<Recorder> nodes(5);
  for (int i = 0; i < 5; ++i) {
    nodes[static_cast<std::size_t>(i)].order = &order;
    nodes[static_cast<std::size_t>(i)].ran = &ran;
    nodes[static_cast<std::size_t>(i)].id = i;
  }
  Starter starter;
  starter.pool = &pool;
  starter.nodes = &nodes;
  pool.schedule(&starter);
  REQUIRE(sluice::test::eventually([&] { return ran.load(std::memory_order_acquire) == 5; }));
  pool.stop();
  CHECK(order == std::vector<int>{4, 3, 0, 1, 2});
}
