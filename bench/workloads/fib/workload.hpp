// BENCH.md workload 6: fib(32) = 2178309, fork-join with a task at every call
// (cutoff=0) or sequential below n < 20 (cutoff=20).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "../../harness.hpp"

namespace bench::fib {

inline constexpr std::uint64_t default_n = 32;
inline constexpr int cutoffs[] = {0, 20};

/// Plain recursion: the sequential baseline and the leaves below the cutoff.
inline std::uint64_t sequential(int n) noexcept {
  return n < 2 ? static_cast<std::uint64_t>(n) : sequential(n - 1) + sequential(n - 2);
}

/// True where a call forks instead of recursing sequentially.
constexpr bool forks(int n, int cutoff) noexcept { return n >= std::max(cutoff, 2); }

/// The number of forking calls: 3,524,577 for fib(32) at cutoff 0 (BENCH.md's
/// task count: one fork point, i.e. one join of two halves, per task).
constexpr std::uint64_t fork_count(int n, int cutoff) noexcept {
  std::uint64_t prev = 0, cur = 0;  // fork_count(k - 1), fork_count(k)
  for (int k = 1; k <= n; ++k) {
    std::uint64_t next = forks(k, cutoff) ? 1 + cur + prev : 0;
    prev = cur;
    cur = next;
  }
  return cur;
}
static_assert(fork_count(32, 0) == 3'524'577);

constexpr std::uint64_t expected(int n) noexcept {
  std::uint64_t a = 0, b = 1;
  for (int k = 0; k < n; ++k) b = std::exchange(a, b) + b;
  return a;
}
static_assert(expected(32) == 2'178'309);

inline int argument(const Params& p) {
  check(p.n <= 60, "fib argument " + std::to_string(p.n) + " is too large (use --n 60 or less)");
  return static_cast<int>(p.n);
}

inline void check_result(int n, std::uint64_t got) {
  check(got == expected(n), "fib(" + std::to_string(n) + ") = " + std::to_string(got));
}

/// What tells apart the two cases of one variant.
inline Fields tags(int cutoff) { return {{"cutoff", std::to_string(cutoff)}}; }

inline Report report(int n, int cutoff, Timing t) {
  auto tasks = fork_count(n, cutoff);
  double per_task = tasks ? t.median_ms * 1e6 / static_cast<double>(tasks) : 0;
  Fields extra = tags(cutoff);
  extra.emplace_back("tasks", std::to_string(tasks));
  extra.emplace_back("per_task_ns", fmt(per_task));
  return {static_cast<std::uint64_t>(n), t, extra, {}};
}

}  // namespace bench::fib
