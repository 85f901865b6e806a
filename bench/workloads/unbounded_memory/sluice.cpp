// sluice: a producer task spawns N timer sleeps with `co_await scope.spawn`,
// into a Scope with max_pending = 10,000 (a) or with no bound (b).
#include <asio/steady_timer.hpp>
#include <sluice/sluice.hpp>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

using unbounded_memory::Alive;

sluice::Task<void> sleeper(sluice::Runtime& rt, Alive& a) {
  a.enter();
  asio::steady_timer t(rt.io_context());
  t.expires_after(unbounded_memory::sleep);
  co_await t.async_wait(sluice::use_task);
  a.leave();
}

sluice::Task<void> spawn_all(sluice::Runtime& rt, Alive& a, std::uint64_t n,
                             sluice::ScopeOptions options) {
  sluice::Scope scope(rt, std::move(options));
  for (std::uint64_t i = 0; i < n; ++i) (void)co_await scope.spawn(sleeper(rt, a));
  co_await scope.join();
}

Report run(const Params& p, bool bounded) {
  sluice::Runtime rt(sluice::Config{.threads = p.threads});
  const auto baseline = unbounded_memory::rss_kb();
  sluice::ScopeOptions options;
  if (bounded) options.max_pending = unbounded_memory::bound;
  std::uint64_t max_alive = 0;
  auto t = measure(p.reps, [&] {
    Alive a;
    rt.block_on(spawn_all(rt, a, p.n, options));
    unbounded_memory::check_run(p.n, a, bounded);
    max_alive = std::max(max_alive, a.max.load());
  });
  return unbounded_memory::report(p.n, t, max_alive, baseline, bounded);
}

Report run_bounded(const Params& p) { return run(p, true); }
Report run_unbounded(const Params& p) { return run(p, false); }

}  // namespace

void register_unbounded_memory_sluice(Registry& r) {
  r.add("unbounded_memory", "sluice", "max_pending", run_bounded);
  r.add("unbounded_memory", "sluice", "unbounded", run_unbounded);
}

}  // namespace bench
