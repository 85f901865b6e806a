#include <dirent.h>

#include <array>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <string>

#include "deadline.hpp"
#include "sluice/sluice.hpp"

using namespace std::chrono_literals;
using asio::ip::tcp;
using sluice::Task;

namespace {

bool on_pool() { return sluice::detail::current_pool() != nullptr; }

std::size_t thread_count() {
  std::size_t n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) {
      n += e->d_name[0] != '.' ? 1 : 0;
    }
    closedir(d);
  }
  return n;
}

sluice::Config two_workers() { return sluice::Config{.threads = 2}; }

}  // namespace

TEST_CASE("Runtime::get_executor is an Asio executor", "[executor]") {
  static_assert(asio::execution::is_executor<sluice::Executor>::value);
  static_assert(std::is_convertible_v<sluice::Executor, asio::any_io_executor>);
  sluice::Runtime rt(two_workers());
  auto ex = rt.get_executor();
  CHECK(ex == rt.get_executor());
  CHECK_FALSE(ex.running_in_this_thread());
}

TEST_CASE("asio::post runs on a pool worker", "[executor]") {
  sluice::Runtime rt(two_workers());
  std::promise<bool> where;
  asio::post(rt.get_executor(), [&] { where.set_value(on_pool()); });
  CHECK(where.get_future().get());
}

TEST_CASE("co_spawn onto the pool resumes on a worker after every await", "[executor]") {
  sluice::Runtime rt(two_workers());
  auto coro = []() -> asio::awaitable<int> {
    int on = 0;
    for (int i = 0; i < 100; ++i) {
      co_await asio::post(asio::use_awaitable);
      on += on_pool() ? 1 : 0;
    }
    co_return on;
  };
  auto fut = asio::co_spawn(rt.get_executor(), coro, asio::use_future);
  CHECK(fut.get() == 100);
}

TEST_CASE("a timer awaited through use_task resumes the task on a worker", "[executor]") {
  sluice::Runtime rt(two_workers());
  auto body = [&rt]() -> Task<bool> {
    asio::steady_timer timer(rt.io_context());
    timer.expires_after(20ms);
    const auto start = std::chrono::steady_clock::now();
    co_await timer.async_wait(sluice::use_task);
    const bool waited = std::chrono::steady_clock::now() - start >= 20ms;
    co_return waited&& on_pool();
  };
  CHECK(rt.block_on(body()));
}

TEST_CASE("an I/O object built on the pool executor needs no extra thread", "[executor]") {
  sluice::Runtime rt(two_workers());
  const auto before = thread_count();
  auto body = [&rt]() -> Task<bool> {
    asio::steady_timer timer(rt.get_executor());
    timer.expires_after(5ms);
    co_await timer.async_wait(sluice::use_task);
    co_return on_pool();
  };
  CHECK(rt.block_on(body()));
  CHECK(thread_count() == before);
}

TEST_CASE("errors come back as exceptions, or as values through redirect_error", "[executor]") {
  sluice::Runtime rt(two_workers());
  auto body = [&rt]() -> Task<std::string> {
    tcp::socket socket(rt.io_context());
    std::array<char, 4> buf{};
    try {
      // Not connected: the read fails at once.
      co_await socket.async_read_some(asio::buffer(buf), sluice::use_task);
    } catch (const std::system_error& e) {
      co_return std::string("threw: ") + e.code().message();
    }
    co_return "no error";
  };
  CHECK_THAT(rt.block_on(body()), Catch::StartsWith("threw: "));

  auto as_value = [&rt]() -> Task<std::error_code> {
    tcp::socket socket(rt.io_context());
    std::array<char, 4> buf{};
    std::error_code ec;
    const std::size_t n = co_await socket.async_read_some(
        asio::buffer(buf), asio::redirect_error(sluice::use_task, ec));
    CHECK(n == 0);
    co_return ec;
  };
  CHECK(rt.block_on(as_value()));  // the error, not an exception
}

TEST_CASE("a loopback TCP echo through use_task", "[executor]") {
  sluice::Runtime rt(two_workers());
  tcp::acceptor acceptor(rt.io_context(), tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const auto endpoint = acceptor.local_endpoint();

  auto server = [&]() -> Task<std::size_t> {
    tcp::socket peer = co_await acceptor.async_accept(sluice::use_task);
    std::array<char, 5> buf{};
    std::size_t echoed = 0;
    for (int i = 0; i < 100; ++i) {
      const auto n = co_await asio::async_read(peer, asio::buffer(buf), sluice::use_task);
      co_await asio::async_write(peer, asio::buffer(buf, n), sluice::use_task);
      echoed += n;
    }
    co_return echoed;
  };
  auto client = [&]() -> Task<int> {
    tcp::socket socket(rt.io_context());
    co_await socket.async_connect(endpoint, sluice::use_task);
    int matched = 0;
    for (int i = 0; i < 100; ++i) {
      std::string msg = "ping" + std::to_string(i % 10);
      std::array<char, 5> reply{};
      co_await asio::async_write(socket, asio::buffer(msg), sluice::use_task);
      co_await asio::async_read(socket, asio::buffer(reply), sluice::use_task);
      matched += (std::string(reply.data(), reply.size()) == msg && on_pool()) ? 1 : 0;
    }
    co_return matched;
  };
  auto both = [&]() -> Task<bool> {
    sluice::Scope scope(rt);
    auto s = co_await scope.spawn(server());
    auto c = co_await scope.spawn(client());
    const int matched = co_await c;
    const std::size_t echoed = co_await s;
    co_return matched == 100 && echoed == 500;
  };
  CHECK(rt.block_on(both()));
}

namespace {

struct InlineInit {
  asio::io_context::executor_type executor;
  [[nodiscard]] asio::io_context::executor_type get_executor() const noexcept { return executor; }
  template <class Handler>
  void operator()(Handler&& handler, int value) {
    std::forward<Handler>(handler)(std::error_code(), value);
  }
};

}  // namespace

// An operation may complete inside its initiation (a composed operation
// that finds its answer at once). The task resumes, and the I/O bridge that
// was locked around the initiation is not locked again or freed under it.
TEST_CASE("an operation that completes inside its initiation resumes the task", "[executor]") {
  sluice::Runtime rt(two_workers());
  sluice::Scope scope(rt);
  auto body = [&rt]() -> Task<int> {
    int sum = 0;
    for (int i = 0; i < 1000; ++i) {
      sum += co_await asio::async_initiate<const sluice::use_task_t, void(std::error_code, int)>(
          InlineInit{rt.io_context().get_executor()}, sluice::use_task, 1);
    }
    co_return sum;
  };
  auto h = scope.spawn_with_handle(body());  // a scope: the bridge is in use
  CHECK(rt.block_on(std::move(h).result()).value() == 1000);
  rt.block_on(scope.join());
}
