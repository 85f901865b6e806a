// Builds against an installed sluice through find_package(sluice): a task that
// awaits another task, run to completion with Runtime::block_on.
#include <cstdio>
#include <sluice/sluice.hpp>

namespace {

sluice::Task<int> half_the_answer() { co_return 21; }

sluice::Task<int> the_answer() {
  const int half = co_await half_the_answer();
  co_return 2 * half;
}

}  // namespace

int main() {
  sluice::Runtime rt{sluice::Config{.threads = 2}};
  const int value = rt.block_on(the_answer());
  std::printf("sluice consumer: %d\n", value);
  return value == 42 ? 0 : 1;
}
