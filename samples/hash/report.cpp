#include "report.hpp"

#include <unistd.h>

#include <cstdio>

#include "sha256sum_format.hpp"

namespace hash {
namespace {

constexpr const char* kErase = "\r\033[K";

}  // namespace

Report::Report(bool progress, std::optional<std::uint64_t> total)
    : progress_(progress), stdout_shared_(progress && isatty(STDOUT_FILENO) != 0), total_(total) {
  if (!progress_) {
    return;
  }
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    do {
      draw();  // at once, then every 100 ms
    } while (!wake_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stopping_; }));
  });
}

Report::~Report() { stop_progress(); }

void Report::stop_progress() {
  if (!thread_.joinable()) {
    return;
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  std::fputs(kErase, stderr);
  std::fflush(stderr);
}

void Report::checksum(const Digest& digest, std::string_view path) {
  const std::string line = checksum_line(digest, path);
  if (stdout_shared_) {
    std::lock_guard lock(mutex_);
    if (shown_) {
      std::fputs(kErase, stderr);
      shown_ = false;
    }
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  } else {
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  done_.fetch_add(1, std::memory_order_relaxed);
}

void Report::error(std::string_view path, const std::string& message) {
  std::lock_guard lock(mutex_);
  if (shown_) {
    std::fputs(kErase, stderr);
    shown_ = false;
  }
  std::fprintf(stderr, "sluice-hash: %s: %s\n", quote_path(path).c_str(), message.c_str());
  done_.fetch_add(1, std::memory_order_relaxed);
  errors_.fetch_add(1, std::memory_order_relaxed);
}

bool Report::write_failed() {
  stop_progress();
  return std::fflush(stdout) != 0 || std::ferror(stdout) != 0;
}

void Report::draw() {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  const auto done = done_.load(std::memory_order_relaxed);
  const double mb_per_s =
      seconds > 0 ? static_cast<double>(bytes_.load(std::memory_order_relaxed)) / seconds / 1e6
                  : 0.0;
  std::fputs(kErase, stderr);
  // A list naming directories makes the total a lower bound: drop it then.
  if (total_ && done <= *total_) {
    std::fprintf(stderr, "%llu/%llu files", static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(*total_));
  } else {
    std::fprintf(stderr, "%llu files", static_cast<unsigned long long>(done));
  }
  std::fprintf(stderr, "  %.1f MB/s  %llu errors", mb_per_s,
               static_cast<unsigned long long>(errors_.load(std::memory_order_relaxed)));
  std::fflush(stderr);
  shown_ = true;
}

}  // namespace hash
