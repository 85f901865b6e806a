#pragma once

#include <asio/steady_timer.hpp>
#include <chrono>

#include "sluice/sluice.hpp"

namespace sluice::test {

/// Waits `d` on a timer of `rt`'s reactor. Bound to the task's cancellation
/// like any use_task operation: a stop ends the wait at once.
inline Task<void> sleep_for(Runtime& rt, std::chrono::steady_clock::duration d) {
  asio::steady_timer timer(rt.io_context());
  timer.expires_after(d);
  co_await timer.async_wait(use_task);
}

}  // namespace sluice::test
