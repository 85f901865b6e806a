// sluice: asio::post to rt.get_executor(), and Scope::spawn_detached, both
// from the bench's main thread (not a worker).
#include <asio/post.hpp>
#include <sluice/sluice.hpp>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

sluice::Task<void> mark(idle::Probe& probe) {
  probe.mark();
  co_return;
}

Report run_post(const Params& p) {
  sluice::Runtime rt(sluice::Config{.threads = p.threads});
  return idle::measure(
      p.n, [&](idle::Probe& probe) { asio::post(rt.get_executor(), [&probe] { probe.mark(); }); });
}

Report run_spawn_detached(const Params& p) {
  sluice::Runtime rt(sluice::Config{.threads = p.threads});
  sluice::Scope scope(rt);
  auto r = idle::measure(p.n, [&](idle::Probe& probe) { scope.spawn_detached(mark(probe)); });
  rt.block_on(scope.join());
  return r;
}

}  // namespace

void register_idle_sluice(Registry& r) {
  r.add("idle", "sluice", "post", run_post);
  r.add("idle", "sluice", "spawn_detached", run_spawn_detached);
}

}  // namespace bench
