// The sequential baseline: a plain loop on the calling thread.
#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

Report run_loop(const Params& p) {
  auto jobs = microjobs::jobs(p.n);
  auto t = measure(p.reps, [&] {
    for (auto us : jobs) microjobs::run_job(us);
  });
  return microjobs::report(jobs, 1, t);
}

}  // namespace

void register_microjobs_seq(Registry& r) { r.add_sequential("microjobs", "seq", "loop", run_loop); }

}  // namespace bench
