// BENCH.md workload 3: N items with at most `bound` in flight, each item's
// task doing one yield (re-schedule). Reports the maximum in flight actually
// reached, counted from task start to task end.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>

#include "../../harness.hpp"

namespace bench::bounded {

inline constexpr std::uint64_t default_n = 100'000;
inline constexpr std::uint64_t bound = 1'000;

/// Tasks between their start and their end, and the most seen at once.
struct InFlight {
  void enter() noexcept {
    auto now = current.fetch_add(1, std::memory_order_relaxed) + 1;
    auto seen = max.load(std::memory_order_relaxed);
    while (now > seen && !max.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
  }
  void leave() noexcept { current.fetch_sub(1, std::memory_order_relaxed); }
  /// Where the implementation can tell: its own count of admitted tasks
  /// (spawned and not finished, started or not), sampled at each task start.
  void admitted(std::uint64_t now) noexcept {
    auto seen = max_admitted.load(std::memory_order_relaxed);
    while (now > seen &&
           !max_admitted.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
  }
  std::atomic<std::uint64_t> current{0};
  std::atomic<std::uint64_t> max{0};
  std::atomic<std::uint64_t> max_admitted{0};
};

/// The bound a run can reach with n items.
constexpr std::uint64_t reachable(std::uint64_t n) { return std::min(n, bound); }

/// Every item delivered, and the bound never exceeded. Whether it was
/// reached (BENCH.md: it must be) is reported as reached_bound=yes|no rather
/// than failing the case, so that the figures still come out.
inline void check_run(std::uint64_t n, std::uint64_t delivered, std::uint64_t max_in_flight) {
  check(delivered == n, "delivered " + std::to_string(delivered) + " of " + std::to_string(n));
  check(max_in_flight <= bound, "max_in_flight " + std::to_string(max_in_flight) +
                                    " exceeds the bound " + std::to_string(bound));
}

/// max_in_flight: the highest of the runs' maxima (warm-up included), and
/// max_in_flight_low the lowest; max_admitted where the implementation has
/// its own count (0: not measured).
inline Report report(std::uint64_t n, Timing t, std::uint64_t lowest, std::uint64_t highest,
                     std::uint64_t max_admitted = 0) {
  Fields extra{{"bound", std::to_string(bound)},
               {"max_in_flight", std::to_string(highest)},
               {"max_in_flight_low", std::to_string(lowest)},
               {"reached_bound", lowest == reachable(n) ? "yes" : "no"}};
  if (max_admitted) extra.emplace_back("max_admitted", std::to_string(max_admitted));
  return {n, t, std::move(extra), {}};
}

/// Collects each run's maximum.
struct Maxima {
  void add(std::uint64_t m) {
    lowest = std::min(lowest, m);
    highest = std::max(highest, m);
  }
  std::uint64_t lowest = ~std::uint64_t{0};
  std::uint64_t highest = 0;
};

}  // namespace bench::bounded
