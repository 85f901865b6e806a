#include "io/io_uring_probe.hpp"

#include <liburing.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "io/blocking_pool.hpp"
#include "log.hpp"
#include "sync.hpp"

namespace sluice {
namespace detail {
namespace {

// Written by force_file_backend (tests), read by every open: relaxed is
// enough, a test sets it before the opens it cares about.
sync::Atomic<FileBackend> forced{FileBackend::automatic};

// Set once Asio refused its ring; read by every open. Relaxed: an open that
// misses it tries Asio once more and falls back by itself.
sync::Atomic<bool> refused_by_asio{false};

// Written once by whoever logs the fallback first.
sync::Atomic<bool> fallback_logged{false};

void log_fallback(std::string_view reason) {
  if (fallback_logged.exchange(true, std::memory_order_relaxed)) {
    return;
  }
  log().warn("io_uring is unavailable ({}); file reads fall back to blocking pread on {} threads",
             reason, BlockingPool::kThreads);
}

bool disabled_by_environment() {
  const char* value = std::getenv("SLUICE_DISABLE_IO_URING");
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
}

// A two-entry ring tells whether the kernel lets this process use io_uring
// at all; Asio's own (16,384 entries) can still fail, see
// io_uring_refused_by_asio.
bool probe() {
  if (disabled_by_environment()) {
    log().info("SLUICE_DISABLE_IO_URING is set: file reads use blocking pread on {} threads",
               BlockingPool::kThreads);
    return false;
  }
  io_uring ring{};
  const int rc = io_uring_queue_init(2, &ring, 0);
  if (rc < 0) {
    log_fallback("io_uring_queue_init: " + std::string(std::strerror(-rc)));
    return false;
  }
  io_uring_queue_exit(&ring);
  return true;
}

bool probed_available() {
  static const bool available = probe();  // once per process, thread-safe
  return available;
}

}  // namespace

void force_file_backend(FileBackend backend) noexcept {
  forced.store(backend, std::memory_order_relaxed);
}

bool use_io_uring_for_files() noexcept {
  switch (forced.load(std::memory_order_relaxed)) {
    case FileBackend::io_uring:
      return true;
    case FileBackend::blocking:
      return false;
    case FileBackend::automatic:
      break;
  }
  return probed_available() && !refused_by_asio.load(std::memory_order_relaxed);
}

void io_uring_refused_by_asio(std::string_view reason) noexcept {
  refused_by_asio.store(true, std::memory_order_relaxed);
  try {
    log_fallback(reason);
  } catch (...) {  // logging must not turn a fallback into a failure
  }
}

void forget_io_uring_refusal() noexcept {
  refused_by_asio.store(false, std::memory_order_relaxed);
  fallback_logged.store(false, std::memory_order_relaxed);
}

}  // namespace detail

bool io_uring_available() noexcept {
  return detail::probed_available() && !detail::refused_by_asio.load(std::memory_order_relaxed);
}

}  // namespace sluice
