#include "sluice/result.hpp"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "sluice/error.hpp"

using sluice::errc;
using sluice::Result;

TEST_CASE("errc is a std::error_code enum with its own category", "[result]") {
  std::error_code ec = errc::cancelled;
  CHECK(ec.category().name() == std::string("sluice"));
  CHECK(ec == errc::cancelled);
  CHECK(ec != errc::timed_out);
  CHECK(ec.message() == "task cancelled");
  CHECK(std::error_code(errc::rejected).message().find("max_pending") != std::string::npos);
  CHECK(static_cast<int>(errc::cancelled) == 1);
}

TEST_CASE("Result holds a value, a reference, or nothing for void", "[result]") {
  Result<int> r(42);
  REQUIRE(r.has_value());
  CHECK(r.value() == 42);
  CHECK_FALSE(r.error());
  CHECK(r.exception() == nullptr);

  int x = 1;
  Result<int&> ref(x);
  ref.value() = 7;
  CHECK(x == 7);

  Result<void> v;
  CHECK(v.has_value());
  CHECK_NOTHROW(v.value());

  Result<std::unique_ptr<int>> moved(std::make_unique<int>(5));
  auto p = std::move(moved).value();
  CHECK(*p == 5);
}

TEST_CASE("a failed Result rethrows the task's exception", "[result]") {
  auto r = Result<int>::failure(std::make_exception_ptr(std::runtime_error("boom")));
  CHECK_FALSE(r.has_value());
  CHECK(r.error() == errc::failed);
  CHECK_THROWS_WITH(r.value(), "boom");
}

TEST_CASE("a sluice error code maps to its exception type", "[result]") {
  auto c = Result<int>::failure(errc::cancelled);
  CHECK(c.error() == errc::cancelled);
  CHECK_THROWS_AS(c.value(), sluice::cancelled_error);
  CHECK_THROWS_AS(Result<void>::failure(errc::timed_out).value(), sluice::timeout_error);
  CHECK_THROWS_AS(Result<void>::failure(errc::rejected).value(), sluice::rejected_error);
  CHECK_THROWS_AS(Result<void>::failure(errc::shutting_down).value(), sluice::shutting_down_error);
  try {
    Result<void>::failure(errc::timed_out).value();
  } catch (const sluice::task_error& e) {
    CHECK(e.code() == errc::timed_out);
  }
}

TEST_CASE("a failure always carries an exception, so value() has one to throw", "[result]") {
  // Result<void> tells success from failure by the exception alone.
  auto v = Result<void>::failure(std::exception_ptr{});
  CHECK_FALSE(v.has_value());
  CHECK(v.error() == errc::failed);
  CHECK(v.exception() != nullptr);
  CHECK_THROWS_AS(v.value(), sluice::task_error);

  auto i = Result<int>::failure(std::exception_ptr{});
  CHECK_FALSE(i.has_value());
  CHECK(i.exception() != nullptr);

  auto failed = Result<void>::failure(std::make_exception_ptr(std::runtime_error("boom")));
  CHECK_FALSE(failed.has_value());
  CHECK_THROWS_WITH(failed.value(), "boom");
  Result<void> copy = failed;
  CHECK_FALSE(copy.has_value());
  CHECK(copy.error() == errc::failed);
}
