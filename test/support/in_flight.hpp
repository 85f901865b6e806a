#pragma once

#include <atomic>

namespace sluice::test {

/// Counts tasks inside a region and the most seen there at once.
struct InFlight {
  std::atomic<int> now{0};
  std::atomic<int> max{0};
  void enter() {
    const int n = now.fetch_add(1) + 1;
    int m = max.load();
    while (n > m && !max.compare_exchange_weak(m, n)) {
    }
  }
  void leave() { now.fetch_sub(1); }
};

}  // namespace sluice::test
