// asio::thread_pool: co_spawn(..., detached) or post of a lambda, issued from
// a coroutine (or handler) already running on the pool.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

using spawn::Tally;

asio::awaitable<void> trivial(Tally& tally, std::uint64_t i) {
  tally.add(i * 2);
  co_return;
}

asio::awaitable<void> spawn_all(Tally& tally, std::uint64_t n) {
  auto ex = co_await asio::this_coro::executor;
  for (std::uint64_t i = 0; i < n; ++i) asio::co_spawn(ex, trivial(tally, i), asio::detached);
}

void post_all(asio::thread_pool& pool, Tally& tally, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) asio::post(pool, [&tally, i] { tally.add(i * 2); });
}

template <class Start>
Report run(const Params& p, Start start) {
  asio::thread_pool pool(p.threads);
  auto t = measure(p.reps, [&] {
    Tally tally(p.n);
    start(pool, tally);
    tally.left.wait();
    spawn::check_sum(p.n, tally.sum.load());
  });
  pool.join();
  return spawn::report(p.n, t);
}

Report run_co_spawn(const Params& p) {
  return run(p, [&](asio::thread_pool& pool, Tally& tally) {
    asio::co_spawn(pool, spawn_all(tally, p.n), asio::detached);
  });
}

Report run_post(const Params& p) {
  return run(p, [&](asio::thread_pool& pool, Tally& tally) {
    asio::post(pool, [&pool, &tally, n = p.n] { post_all(pool, tally, n); });
  });
}

}  // namespace

void register_spawn_asio(Registry& r) {
  for (const char* name : spawn::names) {
    r.add(name, "asio", "co_spawn", run_co_spawn);
    r.add(name, "asio", "post", run_post);
  }
}

}  // namespace bench
