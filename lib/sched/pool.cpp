#include "pool.hpp"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <utility>

#include "sluice/detail/runtime_core.hpp"
#include "sluice/detail/scheduler.hpp"

namespace sluice::detail {
namespace {

constexpr std::uint32_t kInjectorInterval = 61;  // ticks between fairness checks
// The local queue runs newest first; its oldest node is taken out of turn
// once it has been at the front this long (checked every kInjectorInterval).
constexpr std::chrono::milliseconds kMaxFrontWait{2};
constexpr int kSearchRounds = 4;            // steal rounds before parking
constexpr int kSpinPerRound = 64;           // pauses between rounds
constexpr std::size_t kInjectorBatch = 32;  // nodes taken from the injector at once

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Owner-only counter: a plain increment visible to readers without a locked op.
void bump(sync::Atomic<std::uint64_t>& c, std::uint64_t by = 1) noexcept {
  // relaxed: monotonic statistic; readers tolerate staleness.
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace

struct alignas(sync::kFalseSharingRange) Pool::Worker {
  Worker(Queue::Owner owner, Queue::Owner yield_queue, std::size_t i)
      : local(std::move(owner)), yielded(std::move(yield_queue)), index(i), rng(i * 2 + 1) {}

  Queue::Owner local;
  // Nodes that yielded: popped oldest first by the owner, stolen like the
  // local queue.
  Queue::Owner yielded;
  // The node scheduled last. Written by the owner (exchange) and emptied by
  // thieves (exchange with null) once every queue is empty.
  sync::Atomic<TaskNode*> lifo{nullptr};

  // Futex word, 0 while parked. Set to 1 by a waker under Idle's lock; read
  // by the owner. Own line: wakers write it while the owner runs.
  alignas(sync::kFalseSharingRange) sync::Atomic<std::uint32_t> wake{0};

  // Owner-only state.
  alignas(sync::kFalseSharingRange) const std::size_t index;
  std::uint32_t tick = 0;
  TaskNode* front_seen = nullptr;  // the local queue's oldest node when last checked
  std::chrono::steady_clock::time_point front_since;
  bool searching = false;
  std::uint64_t rng;

  // Written by the owner (bump), read by counters().
  sync::Atomic<std::uint64_t> steals{0};
  sync::Atomic<std::uint64_t> stolen{0};
  sync::Atomic<std::uint64_t> parks{0};
  sync::Atomic<std::uint64_t> polled{0};
  sync::Atomic<std::uint64_t> parked_ns{0};
  // steady_clock nanoseconds when the current park began; 0 when running.
  sync::Atomic<std::int64_t> parked_since{0};
  // Reached from headers through tls_worker_id.events (count_event), so a
  // plain std::atomic.
  std::array<std::atomic<std::uint64_t>, kEventSlots> events{};
  bool yields_first = false;  // at the next fairness tick (owner-only)

  std::size_t random_below(std::size_t n) noexcept {  // xorshift64
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return static_cast<std::size_t>(rng % n);
  }
};

thread_local Pool::Worker* Pool::tls_worker_ = nullptr;
constinit thread_local WorkerId tls_worker_id{};

Pool::Pool(Options options)
    : work_stealing_(options.work_stealing), idle_(std::max<std::size_t>(options.threads, 1)) {
  const auto n = std::max<std::size_t>(options.threads, 1);
  workers_.reserve(n);
  stealers_.reserve(n);
  yield_stealers_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto [owner, stealer] = Queue::create();
    auto [yield_owner, yield_stealer] = Queue::create();
    workers_.push_back(std::make_unique<Worker>(std::move(owner), std::move(yield_owner), i));
    stealers_.push_back(std::move(stealer));
    yield_stealers_.push_back(std::move(yield_stealer));
  }
  threads_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    threads_.emplace_back([this, i] { run_worker(i); });
  }
}

Pool::~Pool() { stop(); }

Pool* Pool::current() noexcept { return tls_worker_id.pool; }

void Pool::schedule(TaskNode* node, Placement where) noexcept {
  if (tls_worker_id.pool == this) {
    push_local(*tls_worker_, node, where);
  } else {
    // Counted for stop(): `node` may run, and its owner destroy the pool,
    // before notify() returns here. relaxed: the increment is sequenced
    // before the push, whose release the running worker acquires, so a stop()
    // that follows the node sees it (write-read coherence). release on the
    // decrement: stop()'s acquire of zero follows our last access.
    external_scheduling_.fetch_add(1, std::memory_order_relaxed);
    injector_.push(node);
    notify();
    external_scheduling_.fetch_sub(1, std::memory_order_release);
  }
}

void Pool::push_local(Worker& w, TaskNode* node, Placement where) noexcept {
  if (where == Placement::yield) {
    // Its own queue, taken oldest first after the local one: behind
    // everything queued here, and thieves can take it.
    w.yielded.push(node, [this](std::span<TaskNode*> batch) { injector_.push_batch(batch); });
    notify();
    return;
  }
  if (where == Placement::shared) {
    push_queue(w, node);  // stealable at once, and idle workers are woken
    return;
  }
  // acq_rel: release publishes `node` to a thief; acquire takes the old one.
  node = w.lifo.exchange(node, std::memory_order_acq_rel);
  if (node == nullptr) {
    return;  // Runs next on this worker; no one else needs waking for it.
  }
  push_queue(w, node);
}

void Pool::push_queue(Worker& w, TaskNode* node) noexcept {
  w.local.push(node, [this](std::span<TaskNode*> batch) { injector_.push_batch(batch); });
  notify();
}

void Pool::notify() noexcept {
  // Pairs with the fence in park() (Idle's protocol).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (idle_.should_wake()) {
    idle_.unpark_one([this](std::size_t i) { wake(i); });
  }
}

void Pool::wake(std::size_t index) noexcept {
  auto& word = workers_[index]->wake;
  // release: the sleeper's acquire sees everything published before the wake.
  word.store(1, std::memory_order_release);
  word.notify_one();
}

void Pool::run_worker(std::size_t index) noexcept {
  Worker& w = *workers_[index];
  tls_worker_ = &w;
  tls_worker_id = WorkerId{this, w.index, w.events.data()};
  const std::string name = "sluice-w" + std::to_string(index);
  pthread_setname_np(pthread_self(), name.c_str());

  for (;;) {
    TaskNode* node = next_local(w);
    if (node == nullptr) {
      node = search(w);
    }
    if (node == nullptr) {
      // relaxed suffices on the exit test: stop() joins after setting it, and
      // has_visible_work() re-reads the queues.
      if (stopping_.load(std::memory_order_acquire) && !has_visible_work()) {
        if (w.searching) {
          w.searching = false;
          idle_.stop_searching();
        }
        break;
      }
      park(w);
      continue;
    }
    if (w.searching) {
      found_work(w);  // however it was found: woken workers start out searching
    }
    bump(w.polled);
    node->run(node);
  }
  tls_worker_ = nullptr;
  tls_worker_id = WorkerId{};
}

TaskNode* Pool::next_local(Worker& w) noexcept {
  if (++w.tick % kInjectorInterval == 0) {
    // The overdue node first: a task yielding in a loop keeps the injector
    // non-empty, and would otherwise hide the local queue's oldest node for
    // good. It fires at most once per kMaxFrontWait, so the injector keeps
    // its turn.
    if (TaskNode* n = overdue_front(w)) {
      return n;
    }
    // The injector and the yielded nodes take turns going first, so neither
    // starves the other while the local queue never empties.
    w.yields_first = !w.yields_first;
    if (w.yields_first) {
      if (auto n = w.yielded.pop_front()) {
        return *n;
      }
    }
    if (TaskNode* n = pop_injector(w)) {
      return n;
    }
  }
  // relaxed load: skip the locked exchange when the slot is empty.
  if (w.lifo.load(std::memory_order_relaxed) != nullptr) {
    if (TaskNode* n = w.lifo.exchange(nullptr, std::memory_order_acq_rel)) {
      return n;
    }
  }
  if (auto n = w.local.pop_back()) {
    // A backlog of nodes spawned long ago is cold: start loading the third
    // node ahead while this one runs (the second ahead gave it too little
    // time: 3% slower on a backlog of a million). A spawned task's join
    // state sits in the two lines in front of its node (JoinRoom); a
    // prefetch never faults, so for nodes of other kinds those two only
    // waste the hint.
    if (auto later = w.local.peek_back(2)) {
      const auto at = reinterpret_cast<std::uintptr_t>(*later);
      __builtin_prefetch(*later);
      __builtin_prefetch(reinterpret_cast<const void*>(at - 64));
      __builtin_prefetch(reinterpret_cast<const void*>(at - 128));
    }
    return *n;
  }
  if (auto n = w.yielded.pop_front()) {
    return *n;
  }
  return pop_injector(w);
}

// Fairness within a worker. Newest-first keeps fork-join work depth first
// (taking the oldest node regularly would open a new subtree each time and
// multiply the live frames), so the oldest node is taken only when it has
// sat at the front for kMaxFrontWait: nodes waking each other through the
// LIFO slot, or a stream of newer spawns, then cannot starve it.
TaskNode* Pool::overdue_front(Worker& w) noexcept {
  const auto front = w.local.peek_front();
  if (!front) {
    w.front_seen = nullptr;
    return nullptr;
  }
  const auto now = std::chrono::steady_clock::now();
  if (*front != w.front_seen) {
    w.front_seen = *front;
    w.front_since = now;
    return nullptr;
  }
  if (now - w.front_since < kMaxFrontWait) {
    return nullptr;
  }
  w.front_seen = nullptr;
  auto oldest = w.local.pop_front();  // a thief may have taken it meanwhile
  return oldest ? *oldest : nullptr;
}

TaskNode* Pool::pop_injector(Worker& w) noexcept {
  if (injector_.is_empty()) {
    return nullptr;
  }
  const auto want = std::min(kInjectorBatch, injector_.len() / workers_.size() + 1);
  std::array<TaskNode*, kInjectorBatch> batch{};
  const auto got = injector_.pop_batch(std::span<TaskNode*>(batch.data(), want));
  if (got == 0) {
    return nullptr;
  }
  for (std::size_t i = 1; i < got; ++i) {
    w.local.push(batch[i], [this](std::span<TaskNode*> b) { injector_.push_batch(b); });
  }
  if (got > 1) {
    notify();
  }
  return batch[0];
}

TaskNode* Pool::search(Worker& w) noexcept {
  if (!w.searching) {
    if (!idle_.try_start_searching()) {
      return nullptr;
    }
    w.searching = true;
  }
  for (int round = 0; round < kSearchRounds; ++round) {
    TaskNode* n = steal(w);
    if (n == nullptr) {
      n = pop_injector(w);
    }
    if (n != nullptr) {
      return n;
    }
    if (stopping_.load(std::memory_order_relaxed)) {
      break;
    }
    for (int i = 0; i < kSpinPerRound; ++i) {
      sync::cpu_relax();
    }
  }
  return nullptr;
}

void Pool::found_work(Worker& w) noexcept {
  w.searching = false;
  // The last searcher leaving with work still visible passes the baton: some
  // of that work may have been published while publishers saw us searching.
  if (idle_.stop_searching() && has_visible_work()) {
    idle_.unpark_one([this](std::size_t i) { wake(i); });
  }
}

TaskNode* Pool::steal(Worker& w) noexcept {
  const auto n = workers_.size();
  if (!work_stealing_ || n < 2) {
    return nullptr;
  }
  // Guided: read the load vector, steal half from the heaviest queue.
  const auto start = w.random_below(n);
  std::size_t best = n;
  std::size_t best_len = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const auto i = (start + k) % n;
    if (i == w.index) {
      continue;
    }
    const auto len = stealers_[i].approx_len();
    if (len > best_len) {
      best = i;
      best_len = len;
    }
  }
  auto take = [&](Queue::Stealer& victim) -> TaskNode* {
    if (auto t = victim.steal_half_into(w.local)) {
      bump(w.steals);
      bump(w.stolen, w.local.len() + 1);
      return *t;
    }
    return nullptr;
  };
  if (best != n) {
    if (TaskNode* t = take(stealers_[best])) {
      return t;
    }
  }
  // The heaviest was raced away or the queues are empty: sweep everyone,
  // including yielded nodes and the LIFO slots of workers busy with a long
  // node.
  for (std::size_t k = 0; k < n; ++k) {
    const auto i = (start + k) % n;
    if (i == w.index) {
      continue;
    }
    if (stealers_[i].approx_len() != 0) {
      if (TaskNode* t = take(stealers_[i])) {
        return t;
      }
    }
    if (yield_stealers_[i].approx_len() != 0) {
      if (TaskNode* t = take(yield_stealers_[i])) {
        return t;
      }
    }
    auto& slot = workers_[i]->lifo;
    if (slot.load(std::memory_order_relaxed) != nullptr) {
      if (TaskNode* t = slot.exchange(nullptr, std::memory_order_acq_rel)) {
        bump(w.steals);
        bump(w.stolen);
        return t;
      }
    }
  }
  return nullptr;
}

void Pool::park(Worker& w) noexcept {
  // relaxed: the registration below (under Idle's lock) orders this store
  // before any waker's store of 1.
  w.wake.store(0, std::memory_order_relaxed);
  idle_.register_sleeper(w.index);
  if (w.searching) {
    w.searching = false;
    idle_.stop_searching();  // includes the seq_cst fence
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  if (stopping_.load(std::memory_order_relaxed) || has_visible_work()) {
    if (!idle_.unregister_sleeper(w.index)) {
      w.searching = true;  // a waker took us and counted us as searching
    }
    return;
  }
  bump(w.parks);
  const auto parked_at = now_ns();
  w.parked_since.store(parked_at, std::memory_order_relaxed);
  while (w.wake.load(std::memory_order_acquire) == 0) {
    w.wake.wait(0, std::memory_order_acquire);
  }
  w.parked_since.store(0, std::memory_order_relaxed);
  bump(w.parked_ns, static_cast<std::uint64_t>(now_ns() - parked_at));
  // Woken by notify() (counted as searching) or by stop() (not counted).
  w.searching = !stopping_.load(std::memory_order_acquire);
}

bool Pool::has_visible_work() const noexcept {
  if (!injector_.is_empty()) {
    return true;
  }
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    if (stealers_[i].approx_len() != 0 || yield_stealers_[i].approx_len() != 0 ||
        workers_[i]->lifo.load(std::memory_order_relaxed) != nullptr) {
      return true;
    }
  }
  return false;
}

void Pool::stop() noexcept {
  stopping_.store(true, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  idle_.unpark_all([this](std::size_t i) { wake(i); });
  for (auto& t : threads_) {
    if (!t.joinable()) {
      continue;  // a second stop(), or the destructor after stop()
    }
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();  // stopping from one of our own nodes: that worker exits after it
    } else {
      t.join();
    }
  }
  // An outside thread may still be inside schedule() for a node that ran
  // already; it is a few instructions from done.
  while (external_scheduling_.load(std::memory_order_acquire) != 0) {
    std::this_thread::yield();
  }
}

std::size_t Pool::queued() const noexcept {
  std::size_t n = injector_.len();
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    n += stealers_[i].approx_len() + yield_stealers_[i].approx_len();
    n += workers_[i]->lifo.load(std::memory_order_relaxed) != nullptr ? 1 : 0;
  }
  return n;
}

void Pool::count_shared(std::size_t slot) noexcept {
  // release: as in count_event, with several writers.
  external_events_[slot].fetch_add(1, std::memory_order_release);
}

Pool::Counters Pool::counters() const noexcept {
  Counters c;
  for (const auto& w : workers_) {
    c.steals += w->steals.load(std::memory_order_relaxed);
    c.stolen += w->stolen.load(std::memory_order_relaxed);
    c.parks += w->parks.load(std::memory_order_relaxed);
    c.polled += w->polled.load(std::memory_order_relaxed);
    c.parked_ns += w->parked_ns.load(std::memory_order_relaxed);
    // A worker parked right now has not added its current park yet.
    if (const auto since = w->parked_since.load(std::memory_order_relaxed); since != 0) {
      c.parked_ns += static_cast<std::uint64_t>(std::max<std::int64_t>(now_ns() - since, 0));
    }
  }
  // Outcome slots before the spawned slot (slot 0), each with acquire: a
  // task seen finished is then seen spawned, so spawned - finished >= 0.
  for (std::size_t s = kEventSlots; s-- > 0;) {
    for (const auto& w : workers_) {
      c.events[s] += w->events[s].load(std::memory_order_acquire);
    }
    c.events[s] += external_events_[s].load(std::memory_order_acquire);
  }
  return c;
}

}  // namespace sluice::detail

namespace sluice::detail {

void schedule(Pool& pool, TaskNode* node, Placement where) noexcept { pool.schedule(node, where); }

static_assert(Pool::kEventSlots >= kEventCount);

void count_shared_event(Pool& pool, Event e) noexcept {
  pool.count_shared(static_cast<std::size_t>(e));
}

Pool* current_pool() noexcept { return Pool::current(); }

}  // namespace sluice::detail
