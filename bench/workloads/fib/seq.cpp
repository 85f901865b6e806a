// The sequential baseline: plain recursion.
#include "../../registry.hpp"
#include "workload.hpp"

namespace bench {
namespace {

Report run_recursion(const Params& p) {
  int n = fib::argument(p);
  auto t = measure(p.reps, [&] { fib::check_result(n, fib::sequential(n)); });
  return fib::report(n, 0, t);
}

}  // namespace

void register_fib_seq(Registry& r) {
  r.add_sequential("fib", "seq", "recursion", run_recursion, fib::tags(0));
}

}  // namespace bench
