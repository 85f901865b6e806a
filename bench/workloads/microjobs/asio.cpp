// asio::thread_pool: one post per job.
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>
#include <latch>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

Report run_post(const Params& p) {
  auto jobs = microjobs::jobs(p.n);
  asio::thread_pool pool(p.threads);
  auto t = measure(p.reps, [&] {
    std::latch done(static_cast<std::ptrdiff_t>(jobs.size()));
    for (auto us : jobs)
      asio::post(pool, [us, &done] {
        microjobs::run_job(us);
        done.count_down();
      });
    done.wait();
  });
  pool.join();
  return microjobs::report(jobs, p.threads, t);
}

}  // namespace

void register_microjobs_asio(Registry& r) { r.add("microjobs", "asio", "post", run_post); }

}  // namespace bench
