#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "sha256.hpp"

namespace hash {

/// Where results go: checksum lines on stdout, errors on stderr in
/// sha256sum's words, and, on a terminal, a progress line on stderr (files
/// done / total, MB/s, errors) redrawn at most ten times a second and erased
/// at the end. Lines printed while the progress line shows erase it first.
///
/// Thread safety: checksum() and error() from one task at a time (the one
/// printing in input order); add_bytes() from any thread.
class Report {
 public:
  Report(bool progress, std::optional<std::uint64_t> total);
  ~Report();  // erases the progress line
  Report(const Report&) = delete;
  Report& operator=(const Report&) = delete;

  void checksum(const Digest& digest, std::string_view path);
  void error(std::string_view path, const std::string& message);
  void add_bytes(std::uint64_t n) noexcept { bytes_.fetch_add(n, std::memory_order_relaxed); }

  /// Erases the progress line for good (also done by the destructor).
  void stop_progress();
  /// Stops the progress line, flushes stdout: true if stdout could not be
  /// written (a full disk, a closed pipe).
  [[nodiscard]] bool write_failed();
  [[nodiscard]] bool any_error() const noexcept { return errors_.load() != 0; }

 private:
  void draw();  // under mutex_

  const bool progress_;
  const bool stdout_shared_;  // stdout is the same terminal as the progress line
  const std::optional<std::uint64_t> total_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  // Counters: written by the printing task and the hashers, read by draw();
  // relaxed, they only feed the progress line and the exit status.
  std::atomic<std::uint64_t> done_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::mutex mutex_;  // the terminal: the progress line and lines printed over it
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  bool shown_ = false;     // guarded by mutex_: the progress line is on screen
  std::thread thread_;
};

}  // namespace hash
