// sluice: stream_process over iota(0, N) with max_concurrency = 1000 (sink
// overload), and a Scope with max_pending = 1000 fed by `co_await spawn`.
#include <ranges>
#include <sluice/sluice.hpp>

#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

using bounded::InFlight;

// stream_process bounds its items in a nested scope of its own, which the
// caller cannot see: the in-flight count is the check here.
sluice::Task<std::uint64_t> item(InFlight& f, std::uint64_t i) {
  f.enter();
  co_await sluice::yield();
  f.leave();
  co_return i;
}

sluice::Task<void> counted_item(const sluice::Scope& scope, InFlight& f,
                                std::atomic<std::uint64_t>& done) {
  f.admitted(scope.pending());
  f.enter();
  co_await sluice::yield();
  f.leave();
  done.fetch_add(1, std::memory_order_relaxed);  // published by join()
}

sluice::Task<std::uint64_t> via_stream(sluice::Runtime& rt, InFlight& f, std::uint64_t n) {
  sluice::Scope scope(rt);
  std::uint64_t delivered = 0, sum = 0;  // the sink's calls are serialised
  co_await scope.stream_process(
      std::views::iota(std::uint64_t{0}, n), bounded::bound,
      [&f](std::uint64_t i) { return item(f, i); },
      [&](std::size_t, sluice::Result<std::uint64_t> r) {
        if (!r.has_value()) {  // the message only on failure: strerror takes a lock
          check(false, "stream_process item failed: " + r.error().message());
        }
        ++delivered;
        sum += r.value();
      });
  co_await scope.join();
  check(n == 0 || sum == n * (n - 1) / 2, "stream_process results do not add up");
  co_return delivered;
}

sluice::Task<std::uint64_t> via_spawn(sluice::Runtime& rt, InFlight& f, std::uint64_t n) {
  std::atomic<std::uint64_t> done{0};
  sluice::Scope scope(rt, sluice::ScopeOptions{.max_pending = bounded::bound});
  for (std::uint64_t i = 0; i < n; ++i) (void)co_await scope.spawn(counted_item(scope, f, done));
  co_await scope.join();
  co_return done.load();
}

template <class Body>
Report run(const Params& p, Body body) {
  sluice::Runtime rt(sluice::Config{.threads = p.threads});
  bounded::Maxima maxima;
  std::uint64_t max_admitted = 0;
  auto t = measure(p.reps, [&] {
    InFlight f;
    auto delivered = rt.block_on(body(rt, f, p.n));
    bounded::check_run(p.n, delivered, f.max.load());
    check(f.max_admitted.load() <= bounded::bound,
          "scope.pending() " + std::to_string(f.max_admitted.load()) + " above the bound");
    maxima.add(f.max.load());
    max_admitted = std::max(max_admitted, f.max_admitted.load());
  });
  return bounded::report(p.n, t, maxima.lowest, maxima.highest, max_admitted);
}

Report run_stream(const Params& p) { return run(p, via_stream); }
Report run_spawn(const Params& p) { return run(p, via_spawn); }

}  // namespace

void register_bounded_sluice(Registry& r) {
  r.add("bounded", "sluice", "stream_process", run_stream);
  r.add("bounded", "sluice", "spawn_bounded", run_spawn);
}

}  // namespace bench
