// oneTBB: recursive task_group, one run() per fork (the other half inline).
#include <tbb/global_control.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

std::uint64_t fib_tasks(int n, int cutoff) {
  if (!fib::forks(n, cutoff)) return fib::sequential(n);
  std::uint64_t a = 0;
  tbb::task_group group;
  group.run([&] { a = fib_tasks(n - 1, cutoff); });
  std::uint64_t b = fib_tasks(n - 2, cutoff);
  group.wait();
  return a + b;
}

Report run_task_group(const Params& p, int cutoff) {
  int n = fib::argument(p);
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, p.threads);
  tbb::task_arena arena(static_cast<int>(p.threads));
  auto t = measure(
      p.reps, [&] { fib::check_result(n, arena.execute([&] { return fib_tasks(n, cutoff); })); });
  return fib::report(n, cutoff, t);
}

}  // namespace

void register_fib_tbb(Registry& r) {
  for (int cutoff : fib::cutoffs)
    r.add(
        "fib", "tbb", "task_group", [cutoff](const Params& p) { return run_task_group(p, cutoff); },
        fib::tags(cutoff));
}

}  // namespace bench
