// oneTBB: parallel_for over the jobs with grain 1, in an arena.
#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

Report run_parallel_for(const Params& p) {
  auto jobs = microjobs::jobs(p.n);
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, p.threads);
  tbb::task_arena arena(static_cast<int>(p.threads));
  auto t = measure(p.reps, [&] {
    arena.execute([&] {
      tbb::parallel_for(
          tbb::blocked_range<std::size_t>(0, jobs.size(), 1),
          [&](const tbb::blocked_range<std::size_t>& r) {
            for (auto i = r.begin(); i != r.end(); ++i) microjobs::run_job(jobs[i]);
          },
          tbb::simple_partitioner());
    });
  });
  return microjobs::report(jobs, p.threads, t);
}

}  // namespace

void register_microjobs_tbb(Registry& r) {
  r.add("microjobs", "tbb", "parallel_for", run_parallel_for);
}

}  // namespace bench
