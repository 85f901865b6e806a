#pragma once

#include <chrono>
#include <cstddef>
#include <optional>

namespace sluice {

/// How a Runtime is built. Invalid values (max_pending 0, a timeout <= 0)
/// make the Runtime constructor throw std::invalid_argument.
struct Config {
  /// Worker threads; 0 means std::thread::hardware_concurrency(). Values far
  /// above the core count are capped (and the cap is logged).
  std::size_t threads = 0;
  /// Threads running the reactor (the Asio io_context).
  std::size_t io_threads = 1;
  /// Runtime-wide admission bound: tasks spawned and not finished, over all
  /// scopes. Unset: only scopes' own bounds apply.
  std::optional<std::size_t> max_pending{};
  /// Default timeout of every spawned task (a scope may set its own).
  std::optional<std::chrono::nanoseconds> task_timeout{};
  /// Idle workers take work from busy ones. Off: each worker runs what it
  /// spawned plus what arrives from outside through the injector.
  bool work_stealing = true;
  /// After shutdown's deadline passes and stop is requested, how long to
  /// wait for the cancelled tasks to end before giving up on them.
  std::chrono::nanoseconds shutdown_grace = std::chrono::milliseconds(500);

  /// One worker per core: CPU-bound work.
  static Config cpu_bound() noexcept;
  /// Two workers per core: tasks that also block now and then.
  static Config io_bound() noexcept;
};

}  // namespace sluice
