#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace sluice {

/// A snapshot of a Runtime's counters (Runtime::metrics()).
///
/// Counters are cumulative since the runtime started. Once the runtime is
/// quiescent, spawned == completed + failed + cancelled + timed_out +
/// rejected. `pending` = spawned and not finished (queued, running or
/// suspended); `queued` = ready to run, waiting in a queue; `active` =
/// pending and not queued.
struct Metrics {
  std::uint64_t spawned = 0;
  std::uint64_t completed = 0;
  std::uint64_t failed = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t timed_out = 0;
  std::uint64_t rejected = 0;
  std::uint64_t active = 0;
  std::uint64_t queued = 0;
  std::uint64_t pending = 0;
  std::uint64_t steals = 0;
  std::uint64_t parks = 0;
  std::size_t workers = 0;
  std::optional<std::size_t> max_pending;
  /// Over the interval since the previous snapshot: worker time not parked,
  /// and the interval's length.
  std::uint64_t busy_ns = 0;
  std::uint64_t interval_ns = 0;

  /// busy / (workers * elapsed) over the last interval, in [0, 1].
  [[nodiscard]] double utilization() const noexcept;
  /// pending / max_pending; 0 when unbounded.
  [[nodiscard]] double queue_pressure() const noexcept;
  /// completed / (completed + failed + cancelled + timed_out); 1 when none.
  [[nodiscard]] double success_rate() const noexcept;
  /// The Prometheus text exposition format (version 0.0.4).
  [[nodiscard]] std::string to_prometheus(const std::string& prefix = "sluice") const;
};

}  // namespace sluice
