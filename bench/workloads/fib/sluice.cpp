// sluice: coroutine tasks, each fork spawning both children into one Scope
// with co_await scope.spawn and awaiting both handles (BENCH.md's variant);
// and `one_spawn`, the shape of the TBB peer: each fork spawns one child and
// awaits the other directly as a nested task (still a coroutine per call).
#include <sluice/sluice.hpp>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

sluice::Task<std::uint64_t> fib_task(sluice::Scope& scope, int n, int cutoff) {
  if (!fib::forks(n, cutoff)) co_return fib::sequential(n);
  auto a = co_await scope.spawn(fib_task(scope, n - 1, cutoff));
  auto b = co_await scope.spawn(fib_task(scope, n - 2, cutoff));
  std::uint64_t x = co_await std::move(a);
  std::uint64_t y = co_await std::move(b);
  co_return x + y;
}

sluice::Task<std::uint64_t> fib_one_spawn(sluice::Scope& scope, int n, int cutoff) {
  if (!fib::forks(n, cutoff)) co_return fib::sequential(n);
  auto a = co_await scope.spawn(fib_one_spawn(scope, n - 1, cutoff));
  std::uint64_t y = co_await fib_one_spawn(scope, n - 2, cutoff);
  std::uint64_t x = co_await std::move(a);
  co_return x + y;
}

using FibFn = sluice::Task<std::uint64_t> (*)(sluice::Scope&, int, int);

sluice::Task<std::uint64_t> fib_root(sluice::Runtime& rt, int n, int cutoff, FibFn fib) {
  sluice::Scope scope(rt);
  std::uint64_t result = co_await fib(scope, n, cutoff);
  co_await scope.join();
  co_return result;
}

Report run_coroutine(const Params& p, int cutoff, FibFn fib) {
  int n = fib::argument(p);
  sluice::Runtime rt(sluice::Config{.threads = p.threads});
  auto t =
      measure(p.reps, [&] { fib::check_result(n, rt.block_on(fib_root(rt, n, cutoff, fib))); });
  return fib::report(n, cutoff, t);
}

}  // namespace

void register_fib_sluice(Registry& r) {
  for (int cutoff : fib::cutoffs)
    r.add(
        "fib", "sluice", "coroutine",
        [cutoff](const Params& p) { return run_coroutine(p, cutoff, fib_task); },
        fib::tags(cutoff));
  for (int cutoff : fib::cutoffs)
    r.add(
        "fib", "sluice", "one_spawn",
        [cutoff](const Params& p) { return run_coroutine(p, cutoff, fib_one_spawn); },
        fib::tags(cutoff));
}

}  // namespace bench
