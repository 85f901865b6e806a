#include "registry.hpp"

#include "workloads/bounded/workload.hpp"
#include "workloads/fib/workload.hpp"
#include "workloads/idle/workload.hpp"
#include "workloads/microjobs/workload.hpp"
#include "workloads/spawn/workload.hpp"
#include "workloads/unbounded_memory/workload.hpp"

namespace bench {

void register_spawn_sluice(Registry&);
void register_spawn_asio(Registry&);
void register_microjobs_sluice(Registry&);
void register_microjobs_asio(Registry&);
void register_microjobs_seq(Registry&);
void register_fib_sluice(Registry&);
void register_fib_asio(Registry&);
void register_fib_seq(Registry&);
void register_idle_sluice(Registry&);
void register_idle_asio(Registry&);
void register_bounded_sluice(Registry&);
void register_bounded_asio(Registry&);
void register_unbounded_memory_sluice(Registry&);
void register_unbounded_memory_asio(Registry&);
#ifdef SLUICE_BENCH_HAVE_TBB
void register_spawn_tbb(Registry&);
void register_microjobs_tbb(Registry&);
void register_fib_tbb(Registry&);
void register_idle_tbb(Registry&);
#endif

const std::vector<Workload>& workloads() {
  static const std::vector<Workload> all{
      {"spawn", spawn::default_n},
      {"spawn10k", spawn::burst_n},
      {"microjobs", microjobs::job_count},
      {"fib", fib::default_n},
      {"idle", idle::default_samples},
      {"bounded", bounded::default_n},
      {"unbounded_memory", unbounded_memory::default_n, unbounded_memory::default_reps},
  };
  return all;
}

Registry make_registry() {
  Registry r;
  register_spawn_sluice(r);
  register_spawn_asio(r);
  register_microjobs_sluice(r);
  register_microjobs_asio(r);
  register_microjobs_seq(r);
  register_fib_sluice(r);
  register_fib_asio(r);
  register_fib_seq(r);
  register_idle_sluice(r);
  register_idle_asio(r);
  register_bounded_sluice(r);
  register_bounded_asio(r);
  register_unbounded_memory_sluice(r);
  register_unbounded_memory_asio(r);
#ifdef SLUICE_BENCH_HAVE_TBB
  register_spawn_tbb(r);
  register_microjobs_tbb(r);
  register_fib_tbb(r);
  register_idle_tbb(r);
#endif
  return r;
}

}  // namespace bench
