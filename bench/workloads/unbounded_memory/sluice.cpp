// sluice: a producer task spawns N timer sleeps with `co_await scope.spawn`,
// into a Scope with max_pending = 10,000 (a) or with no bound (b). Each
// sleeps on sluice's own timer (sluice::sleep_for: a timer wheel, the node
// in the frame) or, in the `asio_timer` variants, on an asio::steady_timer
// awaited through use_task.
#include <asio/steady_timer.hpp>
#include <sluice/sluice.hpp>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

using unbounded_memory::Alive;

enum class Timer { sluice, asio };

// Two coroutines, not one with a branch: a frame holds every branch's locals.
sluice::Task<void> sleeper(Alive& a) {
  a.enter();
  co_await sluice::sleep_for(unbounded_memory::sleep);
  a.leave();
}

sluice::Task<void> asio_sleeper(sluice::Runtime& rt, Alive& a) {
  a.enter();
  asio::steady_timer t(rt.io_context());
  t.expires_after(unbounded_memory::sleep);
  co_await t.async_wait(sluice::use_task);
  a.leave();
}

sluice::Task<void> spawn_all(sluice::Runtime& rt, Alive& a, std::uint64_t n,
                             sluice::ScopeOptions options, Timer timer) {
  sluice::Scope scope(rt, std::move(options));
  for (std::uint64_t i = 0; i < n; ++i) {
    if (timer == Timer::sluice) {
      (void)co_await scope.spawn(sleeper(a));
    } else {
      (void)co_await scope.spawn(asio_sleeper(rt, a));
    }
  }
  co_await scope.join();
}

Report run(const Params& p, bool bounded, Timer timer) {
  sluice::Runtime rt(sluice::Config{.threads = p.threads});
  const auto baseline = unbounded_memory::rss_kb();
  sluice::ScopeOptions options;
  if (bounded) options.max_pending = unbounded_memory::bound;
  std::uint64_t max_alive = 0;
  auto t = measure(p.reps, [&] {
    Alive a;
    rt.block_on(spawn_all(rt, a, p.n, options, timer));
    unbounded_memory::check_run(p.n, a, bounded);
    max_alive = std::max(max_alive, a.max.load());
  });
  return unbounded_memory::report(p.n, t, max_alive, baseline, bounded);
}

Report run_bounded(const Params& p) { return run(p, true, Timer::sluice); }
Report run_unbounded(const Params& p) { return run(p, false, Timer::sluice); }
Report run_bounded_asio_timer(const Params& p) { return run(p, true, Timer::asio); }
Report run_unbounded_asio_timer(const Params& p) { return run(p, false, Timer::asio); }

}  // namespace

void register_unbounded_memory_sluice(Registry& r) {
  r.add("unbounded_memory", "sluice", "max_pending", run_bounded);
  r.add("unbounded_memory", "sluice", "unbounded", run_unbounded);
  r.add("unbounded_memory", "sluice", "max_pending_asio_timer", run_bounded_asio_timer);
  r.add("unbounded_memory", "sluice", "unbounded_asio_timer", run_unbounded_asio_timer);
}

}  // namespace bench
