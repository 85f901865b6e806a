// BENCH.md workload 8: CPU consumed by a pool whose workers sit idle for 1 s
// (getrusage), then the submit-to-start latency of a task posted to the idle
// pool, sampled after a 2 ms sleep each so that the workers park.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "../../harness.hpp"

namespace bench::idle {

inline constexpr std::uint64_t default_samples = 200;
inline constexpr std::chrono::seconds window{1};
inline constexpr std::chrono::milliseconds gap{2};

inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// User + system CPU time of the whole process, in ms.
inline double cpu_ms() noexcept {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto ms = [](timeval t) {
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
  };
  return ms(u.ru_utime) + ms(u.ru_stime);
}

/// The task a sample submits: it stamps when it started running.
/// Thread safety: mark() on a worker, reset() and wait() on the submitter.
class Probe {
 public:
  void mark() noexcept {
    started_ns_.store(now_ns(), std::memory_order_release);
    started_ns_.notify_one();
  }
  void reset() noexcept { started_ns_.store(0, std::memory_order_relaxed); }
  std::int64_t wait() noexcept {
    std::int64_t t;
    while ((t = started_ns_.load(std::memory_order_acquire)) == 0) started_ns_.wait(0);
    return t;
  }

 private:
  std::atomic<std::int64_t> started_ns_{0};  // written by mark(), read by wait()
};

inline double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

/// The whole measurement, the same for every competitor: `submit(probe)` must
/// arrange for probe.mark() to run on a worker. Reported as one run (reps=1)
/// with wall_ms the idle window.
template <class Submit>
Report measure(std::uint64_t samples, Submit&& submit) {
  Probe probe;
  submit(probe);  // every lazily started worker is up
  probe.wait();

  double cpu0 = cpu_ms();
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(window);
  double wall =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  double idle_cpu = cpu_ms() - cpu0;

  std::vector<double> latency_us;
  for (std::uint64_t s = 0; s < std::max<std::uint64_t>(samples, 1); ++s) {
    std::this_thread::sleep_for(gap);
    probe.reset();
    auto submitted = now_ns();
    submit(probe);
    latency_us.push_back(static_cast<double>(probe.wait() - submitted) / 1e3);
  }
  return {samples,
          {wall, wall, 1},
          {{"idle_cpu_ms", fmt(idle_cpu)},
           {"lat_p50_us", fmt(percentile(latency_us, 0.50))},
           {"lat_p99_us", fmt(percentile(latency_us, 0.99))}},
          {}};
}

}  // namespace bench::idle
