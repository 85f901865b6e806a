#include <catch2/catch.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "sluice/sluice.hpp"

using sluice::Task;

namespace {

Task<int> answer() { co_return 42; }
Task<void> nothing() { co_return; }
Task<std::unique_ptr<int>> boxed(int v) { co_return std::make_unique<int>(v); }
Task<int&> ref_to(int& x) { co_return x; }
Task<int> fails() {
  throw std::runtime_error("task failed");
  co_return 0;
}
Task<int> throws_non_std() {
  throw 7;
  co_return 0;
}

Task<int> add_one(int x) { co_return x + 1; }

// A loop of synchronously completing awaits: each one transfers to the child
// and back without growing the stack.
Task<int> loop_of_awaits(int n) {
  int total = 0;
  for (int i = 0; i < n; ++i) {
    total = co_await add_one(total);
  }
  co_return total;
}

// A chain of n nested awaits: depth n, frames on the heap, stack flat.
Task<int> nested(int n) {
  if (n == 0) {
    co_return 0;
  }
  co_return 1 + co_await nested(n - 1);
}

sluice::Config two_workers() { return sluice::Config{.threads = 2}; }

}  // namespace

TEST_CASE("tasks return values, void, references and move-only types", "[task]") {
  sluice::Runtime rt(two_workers());
  CHECK(rt.block_on(answer()) == 42);
  rt.block_on(nothing());
  CHECK(*rt.block_on(boxed(9)) == 9);
  int x = 3;
  int& r = rt.block_on(ref_to(x));
  CHECK(&r == &x);
}

TEST_CASE("a task's exception reaches its awaiter", "[task]") {
  sluice::Runtime rt(two_workers());
  CHECK_THROWS_WITH(rt.block_on(fails()), "task failed");
  CHECK_THROWS_AS(rt.block_on(throws_non_std()), int);
  auto catches = []() -> Task<std::string> {
    try {
      co_await fails();
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "not thrown";
  };
  CHECK(rt.block_on(catches()) == "task failed");
}

TEST_CASE("a million awaits in a loop do not grow the stack", "[task]") {
  sluice::Runtime rt(two_workers());
  CHECK(rt.block_on(loop_of_awaits(1'000'000)) == 1'000'000);
}

TEST_CASE("a chain of a million nested awaits does not grow the stack", "[task]") {
  sluice::Runtime rt(two_workers());
  CHECK(rt.block_on(nested(1'000'000)) == 1'000'000);
}

TEST_CASE("a task that never starts frees its frame", "[task]") {
  auto t = boxed(1);
  CHECK(t.valid());
  auto moved = std::move(t);
  CHECK_FALSE(t.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  CHECK(moved.valid());
}

TEST_CASE("block_on from a worker thread is an error, not a deadlock", "[task]") {
  sluice::Runtime rt(two_workers());
  auto inner = [&rt]() -> Task<std::string> {
    try {
      rt.block_on(answer());
    } catch (const std::logic_error& e) {
      co_return e.what();
    }
    co_return "no error";
  };
  CHECK_THAT(rt.block_on(inner()), Catch::Contains("worker thread"));
}

TEST_CASE("yield lets other tasks run and resumes on the pool", "[task]") {
  sluice::Runtime rt(two_workers());
  auto yielder = []() -> Task<int> {
    int n = 0;
    for (int i = 0; i < 1000; ++i) {
      co_await sluice::yield();
      n += sluice::detail::current_pool() != nullptr ? 1 : 0;
    }
    co_return n;
  };
  CHECK(rt.block_on(yielder()) == 1000);
}
