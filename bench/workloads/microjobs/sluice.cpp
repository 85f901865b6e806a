// sluice: one task per job, spawned in a Scope from a task on the pool.
#include <sluice/sluice.hpp>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

sluice::Task<void> job(std::uint32_t us) {
  microjobs::run_job(us);
  co_return;
}

sluice::Task<void> run_all(sluice::Runtime& rt, std::span<const std::uint32_t> jobs) {
  sluice::Scope scope(rt);
  for (auto us : jobs) (void)co_await scope.spawn(job(us));
  co_await scope.join();
}

Report run_spawn(const Params& p) {
  auto jobs = microjobs::jobs(p.n);
  sluice::Runtime rt(sluice::Config{.threads = p.threads});
  auto t = measure(p.reps, [&] { rt.block_on(run_all(rt, jobs)); });
  return microjobs::report(jobs, p.threads, t);
}

}  // namespace

void register_microjobs_sluice(Registry& r) { r.add("microjobs", "sluice", "spawn", run_spawn); }

}  // namespace bench
