// oneTBB: task_arena::enqueue.
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

Report run_enqueue(const Params& p) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, p.threads);
  tbb::task_arena arena(static_cast<int>(p.threads));
  return idle::measure(p.n, [&](idle::Probe& probe) { arena.enqueue([&probe] { probe.mark(); }); });
}

}  // namespace

void register_idle_tbb(Registry& r) { r.add("idle", "tbb", "enqueue", run_enqueue); }

}  // namespace bench
