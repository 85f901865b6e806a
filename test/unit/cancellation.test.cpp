#include <array>
#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <vector>

#include "deadline.hpp"
#include "outcome.hpp"
#include "sleep.hpp"
#include "sluice/sluice.hpp"

using namespace std::chrono_literals;
using asio::ip::tcp;
using sluice::Scope;
using sluice::Task;
using sluice::test::outcome;
using Clock = std::chrono::steady_clock;

namespace {

sluice::Config workers(std::size_t n) { return sluice::Config{.threads = n}; }

Task<int> sleep_on_timer(sluice::Runtime& rt, std::chrono::milliseconds d,
                         std::atomic<bool>& waiting) {
  waiting.store(true);
  co_await sluice::test::sleep_for(rt, d);
  co_return 1;
}

// An Asio initiation that completes inline, on the initiating thread, once
// `release` is set (after its task's scope began to stop).
struct InlineInitiation {
  asio::any_io_executor executor;
  std::atomic<bool>* initiating;
  std::atomic<bool>* release;
  [[nodiscard]] asio::any_io_executor get_executor() const { return executor; }
  template <class Handler>
  void operator()(Handler&& handler) const {
    initiating->store(true);
    while (!release->load()) {
      std::this_thread::yield();
    }
    std::this_thread::sleep_for(20ms);  // the scope's stop runs meanwhile
    std::move(handler)(std::error_code{});
  }
};

// An Asio initiation that throws before it starts anything.
struct ThrowingInitiation {
  asio::any_io_executor executor;
  [[nodiscard]] asio::any_io_executor get_executor() const { return executor; }
  template <class Handler>
  void operator()(Handler&& /*handler*/) const {
    throw std::runtime_error("initiation failed");
  }
};

// 1 if the operation's initiation threw at the co_await, as it does.
Task<int> throwing_operation(asio::any_io_executor ex) {
  try {
    co_await asio::async_initiate<const sluice::use_task_t&, void(std::error_code)>(
        ThrowingInitiation{std::move(ex)}, sluice::use_task);
  } catch (const std::runtime_error&) {
    co_return 1;
  }
  co_return 0;
}

}  // namespace

TEST_CASE("cancel() completes a 10 s timer wait within milliseconds", "[cancel]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::atomic<bool> waiting{false};
  auto h = scope.spawn_with_handle(sleep_on_timer(rt, 10s, waiting));
  REQUIRE(sluice::test::eventually([&] { return waiting.load(); }));
  std::this_thread::sleep_for(5ms);  // the wait is in flight on the reactor
  const auto start = Clock::now();
  h.cancel();
  CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
  CHECK(Clock::now() - start < 2s);
  h.cancel();  // twice, and after it finished: harmless
  rt.block_on(scope.join());
  CHECK(rt.metrics().cancelled == 1);
}

// Wrapping the token turns errors into values, but not a stop of the task
// into an ordinary operation_aborted: the task still ends as cancelled.
TEST_CASE("a wait through redirect_error or as_tuple is cancelled like a plain one", "[cancel]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::atomic<int> waiting{0};
  std::atomic<int> went_on{0};
  auto redirected = [&]() -> Task<int> {
    asio::steady_timer timer(rt.io_context(), 10s);
    std::error_code ec;
    ++waiting;
    co_await timer.async_wait(asio::redirect_error(sluice::use_task, ec));
    ++went_on;  // must not be reached: the task was cancelled
    co_return 1;
  };
  auto tupled = [&]() -> Task<int> {
    asio::steady_timer timer(rt.io_context(), 10s);
    ++waiting;
    auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(sluice::use_task));
    ++went_on;
    co_return ec ? 2 : 3;
  };
  auto a = scope.spawn_with_handle(redirected());
  auto b = scope.spawn_with_handle(tupled());
  REQUIRE(sluice::test::eventually([&] { return waiting.load() == 2; }));
  std::this_thread::sleep_for(5ms);  // the waits are in flight on the reactor
  const auto start = Clock::now();
  a.cancel();
  b.cancel();
  CHECK(rt.block_on(outcome(a)) == sluice::errc::cancelled);
  CHECK(rt.block_on(outcome(b)) == sluice::errc::cancelled);
  CHECK(Clock::now() - start < 2s);
  CHECK(went_on.load() == 0);
  rt.block_on(scope.join());
}

TEST_CASE("cancel() completes a socket read that would wait forever", "[cancel]") {
  sluice::Runtime rt(workers(2));
  tcp::acceptor acceptor(rt.io_context(), tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  tcp::socket client(rt.io_context());
  client.connect(acceptor.local_endpoint());
  tcp::socket server = acceptor.accept();
  std::atomic<bool> reading{false};
  Scope scope(rt);
  auto h = scope.spawn_with_handle([](tcp::socket& s, std::atomic<bool>& r) -> Task<std::size_t> {
    std::array<char, 16> buf{};
    r.store(true);
    co_return co_await s.async_read_some(asio::buffer(buf), sluice::use_task);  // nothing comes
  }(server, reading));
  REQUIRE(sluice::test::eventually([&] { return reading.load(); }));
  std::this_thread::sleep_for(5ms);
  const auto start = Clock::now();
  h.cancel();
  auto awaited = [&]() -> Task<bool> {
    try {
      co_await h;
    } catch (const sluice::cancelled_error&) {
      co_return true;
    }
    co_return false;
  };
  CHECK(rt.block_on(awaited()));
  CHECK(Clock::now() - start < 2s);
  rt.block_on(scope.join());
}

TEST_CASE("a composed read on a strand is cancelled too", "[cancel]") {
  sluice::Runtime rt(sluice::Config{.threads = 2, .io_threads = 2});
  tcp::acceptor acceptor(rt.io_context(), tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  tcp::socket client(asio::make_strand(rt.io_context()));
  client.connect(acceptor.local_endpoint());
  tcp::socket server = acceptor.accept();
  Scope scope(rt);
  std::atomic<bool> reading{false};
  auto h = scope.spawn_with_handle([](tcp::socket& s, std::atomic<bool>& r) -> Task<void> {
    std::array<char, 64> buf{};
    r.store(true);
    co_await asio::async_read(s, asio::buffer(buf), sluice::use_task);  // gets 4 of 64
  }(client, reading));
  REQUIRE(sluice::test::eventually([&] { return reading.load(); }));
  asio::write(server, asio::buffer("abcd", 4));
  std::this_thread::sleep_for(10ms);
  h.cancel();
  CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
}

TEST_CASE("request_stop on a scope cancels every child's I/O", "[cancel]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::atomic<int> started{0};
  std::vector<sluice::JoinHandle<int>> handles;
  std::array<std::atomic<bool>, 20> waiting{};
  for (auto& w : waiting) {
    handles.push_back(scope.spawn_with_handle(sleep_on_timer(rt, 10s, w)));
  }
  REQUIRE(sluice::test::eventually([&] {
    for (auto& w : waiting) {
      if (!w.load()) {
        return false;
      }
    }
    return true;
  }));
  const auto start = Clock::now();
  scope.request_stop();
  rt.block_on(scope.join());
  CHECK(Clock::now() - start < 2s);
  for (auto& h : handles) {
    CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
  }
  (void)started;
}

TEST_CASE("a nested scope stops with its parent", "[cancel]") {
  sluice::Runtime rt(workers(2));
  Scope parent(rt);
  Scope child(parent);
  std::atomic<bool> waiting{false};
  auto h = child.spawn_with_handle(sleep_on_timer(rt, 10s, waiting));
  REQUIRE(sluice::test::eventually([&] { return waiting.load(); }));
  parent.request_stop();
  CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
  CHECK(child.stop_token().stop_requested());
}

TEST_CASE("this_task::stop_token fires on cancel", "[cancel]") {
  sluice::Runtime rt(workers(2));
  Scope scope(rt);
  std::atomic<bool> have_token{false};
  auto h = scope.spawn_with_handle([](std::atomic<bool>& ready) -> Task<bool> {
    std::stop_token token = co_await sluice::this_task::stop_token();
    ready.store(true);
    while (!token.stop_requested()) {
      std::this_thread::sleep_for(1ms);  // CPU work that polls its token
    }
    co_return true;
  }(have_token));
  REQUIRE(sluice::test::eventually([&] { return have_token.load(); }));
  h.cancel();
  auto value = [&]() -> Task<bool> { co_return co_await h; };
  CHECK(rt.block_on(value()));  // it returned normally: completed, not cancelled
}

TEST_CASE("a task cancelled before it starts never runs", "[cancel]") {
  sluice::Runtime rt(workers(1));
  Scope scope(rt);
  std::atomic<bool> gate{false};
  std::atomic<int> ran{0};
  // Occupy the only worker so the second task stays queued.
  scope.spawn_detached([](std::atomic<bool>& g) -> Task<void> {
    while (!g.load()) {
      std::this_thread::sleep_for(1ms);
    }
    co_return;
  }(gate));
  auto h = scope.spawn_with_handle([](std::atomic<int>& r) -> Task<void> {
    r.fetch_add(1);
    co_return;
  }(ran));
  h.cancel();
  gate.store(true);
  CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
  CHECK(ran.load() == 0);
}

TEST_CASE("an operation that completes inside its initiation while its scope stops", "[cancel]") {
  // The scope's stop reaches the operation's bridge while the initiating
  // thread holds the bridge's lock; the inline completion must not wait for
  // that stop under the lock (it would wait forever).
  sluice::Runtime rt(workers(2));
  for (int round = 0; round < 5; ++round) {
    Scope scope(rt);
    std::vector<sluice::JoinHandle<void>> sleepers;
    for (int i = 0; i < 200; ++i) {  // fired first, while the operation initiates
      sleepers.push_back(
          scope.spawn_with_handle([]() -> Task<void> { co_await sluice::sleep_for(30s); }()));
    }
    std::atomic<bool> initiating{false};
    std::atomic<bool> release{false};
    auto op = scope.spawn_with_handle([](asio::any_io_executor ex, std::atomic<bool>& started,
                                         std::atomic<bool>& go) -> Task<void> {
      co_await asio::async_initiate<const sluice::use_task_t&, void(std::error_code)>(
          InlineInitiation{std::move(ex), &started, &go}, sluice::use_task);
    }(rt.io_context().get_executor(), initiating, release));
    REQUIRE(sluice::test::eventually([&] { return initiating.load(); }));
    std::thread stopper([&] { scope.request_stop(); });
    release.store(true);
    stopper.join();
    for (auto& h : sleepers) {
      CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
    }
    // Completed inline (a value), or ended by the stop it raced.
    const auto ended = rt.block_on(outcome(op));
    CHECK((ended == std::error_code{} || ended == sluice::errc::cancelled));
    rt.block_on(scope.join());
  }
  const auto m = rt.metrics();
  CHECK(m.spawned == m.completed + m.failed + m.cancelled + m.timed_out + m.rejected);
}

TEST_CASE("an initiation that throws leaves nothing bound to its scope", "[cancel]") {
  // The task's bridge outlives the scope when its handle does: it must not
  // stay linked to the scope's stop after the throw.
  sluice::Runtime rt(workers(1));
  auto scope = std::make_unique<Scope>(rt);
  auto h = scope->spawn_with_handle(throwing_operation(rt.io_context().get_executor()));
  rt.block_on(scope->join());
  scope.reset();
  CHECK(h.done());
  {
    auto dropped = std::move(h);  // frees the bridge after its scope is gone
  }
  auto again = std::make_unique<Scope>(rt);
  auto h2 = again->spawn_with_handle(throwing_operation(rt.io_context().get_executor()));
  auto value = [&]() -> Task<int> { co_return co_await h2; };
  CHECK(rt.block_on(value()) == 1);
  again->request_stop();  // fires a list the bridge has left
  rt.block_on(again->join());
}
