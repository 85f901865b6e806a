// BENCH.md workload 5, the parallel_task benchmark: 1,000 CPU-bound jobs,
// 900 of 50–500 µs and 100 of 500–1000 µs, shuffled, each busy-spinning on
// arithmetic until its duration has elapsed (steady_clock read every 64 steps).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "../../harness.hpp"

namespace bench::microjobs {

inline constexpr std::uint64_t job_count = 1000;

/// The durations in µs, from raw mt19937_64 outputs only, checked against
/// BENCH.md (Σ (i+1)·d[i] = 156825609, Σ d = 314.449 ms) on first use.
inline const std::vector<std::uint32_t>& durations_us() {
  static const auto d = [] {
    std::mt19937_64 rng(42);
    std::vector<std::uint32_t> v(job_count);
    for (std::size_t i = 0; i < job_count; ++i)
      v[i] = static_cast<std::uint32_t>(i < 900 ? 50 + rng() % 451 : 500 + rng() % 501);
    for (std::size_t i = job_count - 1; i >= 1; --i) std::swap(v[i], v[rng() % (i + 1)]);
    std::uint64_t weighted = 0;
    for (std::size_t i = 0; i < job_count; ++i) weighted += (i + 1) * v[i];
    check(weighted == 156825609, "microjobs weighted sum " + std::to_string(weighted));
    check(std::accumulate(v.begin(), v.end(), std::uint64_t{0}) == 314449, "microjobs total");
    return v;
  }();
  return d;
}

/// The first n jobs (all 1,000 unless --n asks for fewer).
inline std::span<const std::uint32_t> jobs(std::uint64_t n) {
  auto& d = durations_us();
  return std::span(d).first(std::min<std::size_t>(n, d.size()));
}

/// Spins on arithmetic for `us` microseconds; returns the arithmetic's result
/// so that it cannot be optimised away.
inline std::uint64_t spin_for(std::uint32_t us) noexcept {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + std::chrono::microseconds(us);
  std::uint64_t x = us;
  do {
    for (int step = 0; step < 64; ++step) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  } while (Clock::now() < deadline);
  return x;
}

/// Where the jobs leave their results.
inline std::atomic<std::uint64_t> sink{0};

inline void run_job(std::uint32_t us) noexcept {
  sink.fetch_xor(spin_for(us), std::memory_order_relaxed);
}

/// efficiency = (Σ d / threads) / wall.
inline Report report(std::span<const std::uint32_t> jobs, std::size_t threads, Timing t) {
  double work_ms = std::accumulate(jobs.begin(), jobs.end(), 0.0) / 1000.0;
  double efficiency = work_ms / static_cast<double>(threads) / t.median_ms;
  return {jobs.size(), t, {{"efficiency", fmt(efficiency)}, {"work_ms", fmt(work_ms)}}, {}};
}

}  // namespace bench::microjobs
