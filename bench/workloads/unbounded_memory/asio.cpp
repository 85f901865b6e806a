// asio::thread_pool: a producer coroutine co_spawns N coroutines that each
// sleep on a steady_timer on the pool; (a) each spawn first takes a slot of
// a concurrent_channel<void()> of capacity 10,000 (async_send),
// freed by try_receive at the task's end; (b) no bound.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <latch>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

using unbounded_memory::Alive;
using Slots = asio::experimental::concurrent_channel<void()>;  // Asio 1.22: void(error_code) is
                                                               // ambiguous in channel_traits

asio::awaitable<void> sleeper(Alive& a, Slots* slots, std::latch& done) {
  a.enter();
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(unbounded_memory::sleep);
  co_await t.async_wait(asio::use_awaitable);
  a.leave();
  if (slots) slots->try_receive([](auto&&...) {});
  done.count_down();
}

asio::awaitable<void> produce(Alive& a, Slots* slots, std::latch& done, std::uint64_t n) {
  auto ex = co_await asio::this_coro::executor;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (slots) co_await slots->async_send(asio::use_awaitable);
    asio::co_spawn(ex, sleeper(a, slots, done), asio::detached);
  }
}

Report run(const Params& p, bool bounded) {
  asio::thread_pool pool(p.threads);
  const auto baseline = unbounded_memory::rss_kb();
  std::uint64_t max_alive = 0;
  auto t = measure(p.reps, [&] {
    Alive a;
    Slots slots(pool, unbounded_memory::bound);
    std::latch done(static_cast<std::ptrdiff_t>(p.n));
    asio::co_spawn(pool, produce(a, bounded ? &slots : nullptr, done, p.n), asio::detached);
    done.wait();
    unbounded_memory::check_run(p.n, a, bounded);
    max_alive = std::max(max_alive, a.max.load());
  });
  pool.join();
  return unbounded_memory::report(p.n, t, max_alive, baseline, bounded);
}

Report run_bounded(const Params& p) { return run(p, true); }
Report run_unbounded(const Params& p) { return run(p, false); }

}  // namespace

void register_unbounded_memory_asio(Registry& r) {
  r.add("unbounded_memory", "asio", "channel_semaphore", run_bounded);
  r.add("unbounded_memory", "asio", "unbounded", run_unbounded);
}

}  // namespace bench
