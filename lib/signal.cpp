#include "sluice/signal.hpp"

namespace sluice {

Task<int> wait_for_signal(Runtime& runtime, std::vector<int> signals) {
  asio::signal_set set(runtime.io_context());
  for (const int s : signals) {
    set.add(s);
  }
  co_return co_await set.async_wait(use_task);
}

}  // namespace sluice
