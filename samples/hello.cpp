#include <cstdio>
#include <sluice/sluice.hpp>
#include <vector>

sluice::Task<int> square(int x) { co_return x* x; }

sluice::Task<int> sum_of_squares(sluice::Runtime& rt, int n) {
  sluice::Scope scope(rt);
  std::vector<sluice::JoinHandle<int>> handles;
  for (int i = 1; i <= n; ++i) {
    handles.push_back(co_await scope.spawn(square(i)));  // runs on the pool
  }
  int total = 0;
  for (auto& h : handles) {
    total += co_await h;
  }
  co_return total;
}

int main() {
  sluice::Runtime rt;  // one worker per core
  std::printf("sum of squares 1..100 = %d\n", rt.block_on(sum_of_squares(rt, 100)));
}
