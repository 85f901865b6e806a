// sluice: spawning from a task on the pool (co_await scope.spawn, or
// spawn_with_handle and a co_await per handle) and from a non-worker thread.
#include <chrono>
#include <sluice/sluice.hpp>
#include <vector>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

sluice::Task<void> add_twice(std::atomic<std::uint64_t>& sum, std::uint64_t i) {
  sum.fetch_add(i * 2, std::memory_order_relaxed);  // published by join()
  co_return;
}

sluice::Task<std::uint64_t> twice(std::uint64_t i) { co_return i * 2; }

sluice::Task<std::uint64_t> co_await_spawn(sluice::Runtime& rt, std::uint64_t n,
                                           sluice::ScopeOptions options = {}) {
  std::atomic<std::uint64_t> sum{0};
  sluice::Scope scope(rt, std::move(options));
  for (std::uint64_t i = 0; i < n; ++i) (void)co_await scope.spawn(add_twice(sum, i));
  co_await scope.join();
  co_return sum.load();
}

sluice::Task<std::uint64_t> with_handles(sluice::Runtime& rt, std::uint64_t n) {
  sluice::Scope scope(rt);
  std::vector<sluice::JoinHandle<std::uint64_t>> handles;
  handles.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) handles.push_back(scope.spawn_with_handle(twice(i)));
  std::uint64_t sum = 0;
  for (auto& h : handles) sum += co_await std::move(h);
  co_await scope.join();
  co_return sum;
}

std::uint64_t from_outside(sluice::Runtime& rt, std::uint64_t n) {
  std::atomic<std::uint64_t> sum{0};
  sluice::Scope scope(rt);
  for (std::uint64_t i = 0; i < n; ++i) scope.spawn_detached(add_twice(sum, i));
  rt.block_on(scope.join());
  return sum.load();
}

template <class Once>
Report run(const Params& p, Once once) {
  sluice::Runtime rt(sluice::Config{.threads = p.threads});
  auto t = measure(p.reps, [&] { spawn::check_sum(p.n, once(rt)); });
  return spawn::report(p.n, t);
}

Report run_co_await_spawn(const Params& p) {
  return run(p, [&](sluice::Runtime& rt) { return rt.block_on(co_await_spawn(rt, p.n)); });
}

// Admission on every spawn (a bound of n is never reached): its pure cost.
Report run_admission(const Params& p) {
  return run(p, [&](sluice::Runtime& rt) {
    return rt.block_on(co_await_spawn(rt, p.n, sluice::ScopeOptions{.max_pending = p.n}));
  });
}

// A timeout registered for every task (none fires).
Report run_timeout(const Params& p) {
  return run(p, [&](sluice::Runtime& rt) {
    return rt.block_on(
        co_await_spawn(rt, p.n, sluice::ScopeOptions{.task_timeout = std::chrono::seconds(60)}));
  });
}

Report run_spawn_with_handle(const Params& p) {
  return run(p, [&](sluice::Runtime& rt) { return rt.block_on(with_handles(rt, p.n)); });
}

Report run_external(const Params& p) {
  return run(p, [&](sluice::Runtime& rt) { return from_outside(rt, p.n); });
}

}  // namespace

void register_spawn_sluice(Registry& r) {
  for (const char* name : spawn::names) {
    r.add(name, "sluice", "co_await_spawn", run_co_await_spawn);
    r.add(name, "sluice", "co_await_spawn_admission", run_admission);
    r.add(name, "sluice", "co_await_spawn_timeout", run_timeout);
    r.add(name, "sluice", "spawn_with_handle", run_spawn_with_handle);
    r.add(name, "sluice", "external", run_external);
  }
}

}  // namespace bench
