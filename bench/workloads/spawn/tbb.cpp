// oneTBB: task_group::run of N lambdas from inside a task_arena with the
// thread count, then wait.
#include <tbb/global_control.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <atomic>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

Report run_task_group(const Params& p) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, p.threads);
  tbb::task_arena arena(static_cast<int>(p.threads));
  auto t = measure(p.reps, [&] {
    std::atomic<std::uint64_t> sum{0};
    arena.execute([&] {
      tbb::task_group group;
      for (std::uint64_t i = 0; i < p.n; ++i)
        group.run([&sum, i] { sum.fetch_add(i * 2, std::memory_order_relaxed); });
      group.wait();
    });
    spawn::check_sum(p.n, sum.load());
  });
  return spawn::report(p.n, t);
}

}  // namespace

void register_spawn_tbb(Registry& r) {
  for (const char* name : spawn::names) r.add(name, "tbb", "task_group", run_task_group);
}

}  // namespace bench
