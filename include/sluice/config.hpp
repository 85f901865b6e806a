#pragma once

#include <cstddef>

namespace sluice {

/// How a Runtime is built.
struct Config {
  /// Worker threads; 0 means std::thread::hardware_concurrency(). Values far
  /// above the core count are capped (and the cap is logged).
  std::size_t threads = 0;
  /// Threads running the reactor (the Asio io_context).
  std::size_t io_threads = 1;
  /// Idle workers take work from busy ones. Off: each worker runs what it
  /// spawned plus what arrives from outside through the injector.
  bool work_stealing = true;

  /// One worker per core: CPU-bound work.
  static Config cpu_bound() noexcept;
  /// Two workers per core: tasks that also block now and then.
  static Config io_bound() noexcept;
};

}  // namespace sluice
