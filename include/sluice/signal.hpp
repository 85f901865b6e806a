#pragma once

#include <asio/signal_set.hpp>
#include <vector>

#include "sluice/runtime.hpp"
#include "sluice/task.hpp"
#include "sluice/use_task.hpp"

namespace sluice {

/// `co_await wait_for_signal(rt, SIGINT, SIGTERM)`: the number of the first
/// of these signals delivered to the process. Built on asio::signal_set on
/// the runtime's reactor; cancelled with the task like any use_task wait.
/// Throws std::system_error for an invalid signal number. The list form is
/// for sets built at run time (taken by value: the task starts later).
Task<int> wait_for_signal(Runtime& runtime, std::vector<int> signals);

template <class... Signals>
requires(sizeof...(Signals) > 0 && (std::is_convertible_v<Signals, int> &&
                                    ...)) Task<int> wait_for_signal(Runtime& runtime,
                                                                    Signals... signals) {
  const int list[] = {static_cast<int>(signals)...};
  asio::signal_set set(runtime.io_context());
  for (const int s : list) {
    set.add(s);
  }
  co_return co_await set.async_wait(use_task);
}

}  // namespace sluice
