#pragma once

#include <system_error>

#include "sluice/sluice.hpp"

namespace sluice::test {

/// Awaits `h` and gives the error its task ended with (empty: completed).
template <class T>
Task<std::error_code> outcome(JoinHandle<T>& h) {
  auto r = co_await h.result();
  co_return r.error();
}

}  // namespace sluice::test
