// BENCH.md workload 4: N tasks that each sleep 50 ms on a timer, (a) with at
// most 10,000 pending, (b) unbounded. Reports the most alive at once (counted
// from task start to task end), VmHWM, and bytes per live task:
// (VmHWM - VmRSS before the runtime's first run) / max_alive.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "../../harness.hpp"

namespace bench::unbounded_memory {

inline constexpr std::uint64_t default_n = 1'000'000;
inline constexpr int default_reps = 1;          // a run of (a) is 1M x 50 ms / 10k = 5 s
inline constexpr std::uint64_t bound = 10'000;  // variant (a)
inline constexpr std::chrono::milliseconds sleep{50};

/// Tasks between their start and their end, and the most seen at once.
struct Alive {
  void enter() noexcept {
    auto now = current.fetch_add(1, std::memory_order_relaxed) + 1;
    auto seen = max.load(std::memory_order_relaxed);
    while (now > seen && !max.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
  }
  void leave() noexcept {
    current.fetch_sub(1, std::memory_order_relaxed);
    finished.fetch_add(1, std::memory_order_release);
  }
  std::atomic<std::uint64_t> current{0};
  std::atomic<std::uint64_t> max{0};
  std::atomic<std::uint64_t> finished{0};
};

/// VmRSS from /proc/self/status, in KiB (0 if unavailable).
inline std::uint64_t rss_kb() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  return 0;
}

/// Every task finished; a bounded run never above its bound.
inline void check_run(std::uint64_t n, const Alive& a, bool bounded) {
  check(a.finished.load() == n,
        "finished " + std::to_string(a.finished.load()) + " of " + std::to_string(n));
  if (bounded)
    check(a.max.load() <= bound, "max_alive " + std::to_string(a.max.load()) +
                                     " exceeds max_pending " + std::to_string(bound));
}

/// max_alive: the highest of the runs' maxima; bytes_per_task from it and
/// the VmHWM so far (the harness reset it when the case began).
inline Report report(std::uint64_t n, Timing t, std::uint64_t max_alive, std::uint64_t baseline_kb,
                     bool bounded) {
  auto hwm = peak_rss_kb();
  double per_task =
      max_alive == 0 || hwm < baseline_kb
          ? 0.0
          : static_cast<double>(hwm - baseline_kb) * 1024.0 / static_cast<double>(max_alive);
  Fields extra{{"max_pending", bounded ? std::to_string(bound) : "none"},
               {"max_alive", std::to_string(max_alive)},
               {"baseline_rss_kb", std::to_string(baseline_kb)},
               {"bytes_per_task", fmt(per_task)}};
  return {n, t, std::move(extra), {}};
}

}  // namespace bench::unbounded_memory
