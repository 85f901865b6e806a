#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <sluice/sluice.hpp>
#include <string>
#include <thread>

#include "http_client.hpp"
#include "options.hpp"

namespace fetch {

/// One URL's final answer.
struct Outcome {
  std::string url;
  Response response;
  int attempts = 0;
};

/// URLs pulled and not yet written, by index: a URL cancelled before its
/// task ran still gets its line with its URL. Bounded by what is in flight.
class Pulled {
 public:
  void add(std::string url) {
    std::lock_guard lock(mutex_);
    urls_.emplace(next_++, std::move(url));
  }
  std::string take(std::size_t index) {
    std::lock_guard lock(mutex_);
    auto it = urls_.find(index);
    if (it == urls_.end()) {
      return {};
    }
    std::string url = std::move(it->second);
    urls_.erase(it);
    return url;
  }

 private:
  std::mutex mutex_;
  std::size_t next_ = 0;                     // guarded by mutex_
  std::map<std::size_t, std::string> urls_;  // guarded by mutex_
};

/// JSON lines out, plus the counts the progress line and summary show.
/// write() is called one at a time (stream_process serialises its sink).
class Output {
 public:
  explicit Output(const Options& opt);
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  [[nodiscard]] bool ok() const { return out_ != nullptr; }
  void write(std::size_t index, const sluice::Result<Outcome>& r);
  /// Hands the lines written so far to the system (stdio serialises this
  /// with write()).
  void flush() { std::fflush(out_); }
  Pulled& pulled() { return pulled_; }
  void summary(const sluice::Metrics& m, int signal) const;
  [[nodiscard]] bool all_ok() const { return failed_.load() == 0; }

  [[nodiscard]] std::uint64_t done() const { return done_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  std::FILE* out_;
  bool owned_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::atomic<std::uint64_t> done_{0};
  std::atomic<std::uint64_t> failed_{0};  // transport errors, >= 400, cancelled
  std::atomic<std::uint64_t> cancelled_{0};
  std::atomic<std::uint64_t> bytes_{0};
  Pulled pulled_;
};

/// A progress line on stderr, refreshed ten times a second, erased at the
/// end. Does nothing when disabled (stderr not a terminal, or --quiet).
class Progress {
 public:
  Progress(const Output& out, std::optional<std::uint64_t> total, bool enabled);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

 private:
  void draw() const;

  const Output& out_;
  std::optional<std::uint64_t> total_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace fetch
