#pragma once

#include <chrono>

#include "sluice/detail/sleep.hpp"

namespace sluice {

/// `co_await sleep_until(t)` in a Task: resumes the task on its pool at or
/// after `t` (rounded up to the next millisecond; never early). A time
/// already past returns at once.
///
/// The sleep waits in a timer wheel of the task's runtime, inside the task's
/// own frame: no allocation, and no reactor round trip unless it is the
/// earliest deadline of the runtime, so a million sleeping tasks cost their
/// frames and nothing more.
///
/// Cancellation: if the task is asked to stop (JoinHandle::cancel, a
/// timeout, its scope's request_stop, shutdown) before or while it sleeps,
/// the sleep ends at once and throws cancelled_error (timeout_error when a
/// timeout stopped it).
///
/// Thread safety: only the awaiting task uses the awaiter. It must be
/// awaited inside a task run by a sluice Runtime (else std::logic_error).
[[nodiscard]] inline detail::SleepAwaiter sleep_until(
    std::chrono::steady_clock::time_point t) noexcept {
  return detail::SleepAwaiter(t);
}

/// `co_await sleep_for(d)`: sleep_until(now + d). Zero or negative `d`
/// returns at once.
template <class Rep, class Period>
[[nodiscard]] detail::SleepAwaiter sleep_for(std::chrono::duration<Rep, Period> d) noexcept {
  using Clock = std::chrono::steady_clock;
  const auto now = Clock::now();
  // Saturate instead of overflowing for very long sleeps.
  const auto room = Clock::time_point::max() - now;
  const auto wait = d > std::chrono::duration<Rep, Period>::zero()
                        ? (std::chrono::duration<double>(d) >= room
                               ? room
                               : std::chrono::duration_cast<Clock::duration>(d))
                        : Clock::duration::zero();
  return detail::SleepAwaiter(now + wait);
}

}  // namespace sluice
