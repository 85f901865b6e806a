#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace serve {

/// How a connection ended.
enum class ConnectionEnd {
  closed,     ///< the peer closed, asked for close, sent garbage, or the network failed
  drained,    ///< closed while idle because the server was shutting down
  cancelled,  ///< still busy at the shutdown deadline
};

/// The server's own counters, for /metrics and the shutdown summary.
///
/// Every counter is written by connection tasks on any worker and read by
/// /metrics and the summary. relaxed throughout: each is an independent
/// tally, and no reader infers anything about other memory from it (the
/// summary reads them after joining every connection, which orders them).
///
/// Thread safety: every member may be called from any thread.
class ServerStats {
 public:
  /// Status codes the server answers with, in /metrics order.
  static constexpr std::array<int, 5> kStatuses = {200, 400, 404, 405, 414};

  void connection_opened() noexcept;
  void connection_closed(ConnectionEnd end) noexcept;
  /// Responses with these statuses, `bytes` in all, reached the socket.
  void responses_sent(std::span<const int> statuses, std::size_t bytes) noexcept;

  struct Snapshot {
    std::array<std::uint64_t, kStatuses.size()> requests{};  ///< by kStatuses index
    std::uint64_t connections = 0;
    std::uint64_t open = 0;
    std::uint64_t drained = 0;
    std::uint64_t cancelled = 0;
    std::uint64_t bytes_sent = 0;

    [[nodiscard]] std::uint64_t requests_total() const noexcept;
  };
  [[nodiscard]] Snapshot snapshot() const noexcept;

  /// The counters in the Prometheus text format (version 0.0.4).
  [[nodiscard]] std::string to_prometheus(const std::string& prefix = "sluice_serve") const;

 private:
  std::array<std::atomic<std::uint64_t>, kStatuses.size()> requests_{};
  std::atomic<std::uint64_t> connections_{0};
  std::atomic<std::uint64_t> open_{0};
  std::atomic<std::uint64_t> drained_{0};
  std::atomic<std::uint64_t> cancelled_{0};
  std::atomic<std::uint64_t> bytes_sent_{0};
};

}  // namespace serve
