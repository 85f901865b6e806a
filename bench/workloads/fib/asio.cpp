// asio::thread_pool: co_spawn-based recursion, both children spawned and
// awaited together through awaitable_operators' `&&` (a parallel_group of two
// co_spawns). A task at every call is very slow here, so cutoff=0 runs only
// with --slow or an explicit --n.
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_future.hpp>
#include <tuple>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

using namespace asio::experimental::awaitable_operators;

asio::awaitable<std::uint64_t> fib_co(int n, int cutoff) {
  if (!fib::forks(n, cutoff)) co_return fib::sequential(n);
  auto [a, b] = co_await (fib_co(n - 1, cutoff) && fib_co(n - 2, cutoff));
  co_return a + b;
}

Report run_co_spawn(const Params& p, int cutoff) {
  int n = fib::argument(p);
  if (cutoff == 0 && !p.slow && !p.n_given) return {p.n, {}, fib::tags(0), "slow(run_with_--slow)"};
  asio::thread_pool pool(p.threads);
  auto t = measure(p.reps, [&] {
    fib::check_result(n, asio::co_spawn(pool, fib_co(n, cutoff), asio::use_future).get());
  });
  pool.join();
  return fib::report(n, cutoff, t);
}

}  // namespace

void register_fib_asio(Registry& r) {
  for (int cutoff : fib::cutoffs)
    r.add(
        "fib", "asio", "co_spawn", [cutoff](const Params& p) { return run_co_spawn(p, cutoff); },
        fib::tags(cutoff));
}

}  // namespace bench
