// BENCH.md workloads 1 and 2: N trivial tasks (each adds i*2 to a sum),
// spawned from one task running on the pool, then all joined.
#pragma once

#include <atomic>
#include <cstdint>
#include <latch>

#include "../../harness.hpp"

namespace bench::spawn {

inline constexpr std::uint64_t default_n = 1'000'000;  // "spawn"
inline constexpr std::uint64_t burst_n = 10'000;       // "spawn10k"
inline constexpr const char* names[] = {"spawn", "spawn10k"};

/// Σ i*2 over i < n: what every variant must add up to.
constexpr std::uint64_t expected_sum(std::uint64_t n) { return n * (n - 1); }

/// A sum and a countdown, for the peers that have no join of their own.
struct Tally {
  explicit Tally(std::uint64_t n) : left(static_cast<std::ptrdiff_t>(n)) {}
  void add(std::uint64_t v) noexcept {
    sum.fetch_add(v, std::memory_order_relaxed);  // published by the latch
    left.count_down();
  }
  std::atomic<std::uint64_t> sum{0};
  std::latch left;
};

inline void check_sum(std::uint64_t n, std::uint64_t sum) {
  check(sum == expected_sum(n),
        "spawn sum " + std::to_string(sum) + " != " + std::to_string(expected_sum(n)));
}

inline Report report(std::uint64_t n, Timing t) {
  return {n, t, {{"per_task_ns", fmt(t.median_ms * 1e6 / static_cast<double>(n))}}, {}};
}

}  // namespace bench::spawn
