// asio::thread_pool: a producer coroutine takes a slot of a
// concurrent_channel<void()> of capacity 1000 (async_send) before
// each co_spawn; each task yields (post) and frees its slot (try_receive) at
// its end.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <latch>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

using bounded::InFlight;
using Slots = asio::experimental::concurrent_channel<void()>;  // Asio 1.22: void(error_code) is
                                                               // ambiguous in channel_traits

asio::awaitable<void> item(Slots& slots, InFlight& f, std::latch& done) {
  f.enter();
  co_await asio::post(asio::use_awaitable);
  f.leave();
  slots.try_receive([](auto&&...) {});
  done.count_down();
}

asio::awaitable<void> produce(Slots& slots, InFlight& f, std::latch& done, std::uint64_t n) {
  auto ex = co_await asio::this_coro::executor;
  for (std::uint64_t i = 0; i < n; ++i) {
    co_await slots.async_send(asio::use_awaitable);
    asio::co_spawn(ex, item(slots, f, done), asio::detached);
  }
}

Report run_channel(const Params& p) {
  asio::thread_pool pool(p.threads);
  bounded::Maxima maxima;
  auto t = measure(p.reps, [&] {
    InFlight f;
    Slots slots(pool, bounded::bound);
    std::latch done(static_cast<std::ptrdiff_t>(p.n));
    asio::co_spawn(pool, produce(slots, f, done, p.n), asio::detached);
    done.wait();
    bounded::check_run(p.n, p.n, f.max.load());
    maxima.add(f.max.load());
  });
  pool.join();
  return bounded::report(p.n, t, maxima.lowest, maxima.highest);
}

}  // namespace

void register_bounded_asio(Registry& r) {
  r.add("bounded", "asio", "channel_semaphore", run_channel);
}

}  // namespace bench
