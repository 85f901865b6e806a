// asio::thread_pool: post.
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

Report run_post(const Params& p) {
  asio::thread_pool pool(p.threads);
  auto r =
      idle::measure(p.n, [&](idle::Probe& probe) { asio::post(pool, [&probe] { probe.mark(); }); });
  pool.join();
  return r;
}

}  // namespace

void register_idle_asio(Registry& r) { r.add("idle", "asio", "post", run_post); }

}  // namespace bench
