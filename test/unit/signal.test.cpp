#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include "deadline.hpp"
#include "sluice/sluice.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

extern char** environ;

namespace {

// Reads the child's stdout until `needle` appears or `limit` passes.
bool read_until(int fd, std::string& out, const std::string& needle,
                std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (out.find(needle) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    if (left <= 0ms) {
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      continue;
    }
    char buf[512];
    const auto n = read(fd, buf, sizeof buf);
    if (n <= 0) {
      return out.find(needle) != std::string::npos;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

TEST_CASE("wait_for_signal returns the signal delivered", "[signal]") {
  // Ignored until the signal_set installs its handler, so the retries below
  // cannot kill the test before the task runs.
  std::signal(SIGUSR2, SIG_IGN);
  // Asio opens its process-wide signal pipe with the first signal_set and
  // closes it with the last: open it on this thread, where the handler runs,
  // and keep it open for the test.
  asio::io_context io;
  asio::signal_set keep_open(io);
  sluice::Runtime rt(sluice::Config{.threads = 2});
  sluice::Scope scope(rt);
  auto h = scope.spawn_with_handle(sluice::wait_for_signal(rt, SIGUSR1, SIGUSR2));
  // The signal_set is installed once the task runs; retry until it is seen.
  REQUIRE(sluice::test::eventually([&] {
    if (!h.done()) {
      ::kill(::getpid(), SIGUSR2);
      std::this_thread::sleep_for(5ms);
    }
    return h.done();
  }));
  auto value = [&]() -> sluice::Task<int> { co_return co_await h; };
  CHECK(rt.block_on(value()) == SIGUSR2);
}

TEST_CASE("SIGTERM makes the sample service shut down gracefully", "[signal]") {
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  char path[] = SLUICE_GRACEFUL_SAMPLE;
  char a1[] = "--deadline-ms";
  char a2[] = "300";
  char a3[] = "--stuck";
  char a4[] = "10";
  char* argv[] = {path, a1, a2, a3, a4, nullptr};
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, path, &actions, nullptr, argv, environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);

  std::string out;
  REQUIRE(read_until(pipe_fds[0], out, "ready\n", 30s));
  std::this_thread::sleep_for(100ms);  // the finite work finishes meanwhile
  const auto sent = Clock::now();
  REQUIRE(::kill(pid, SIGTERM) == 0);
  read_until(pipe_fds[0], out, "shutdown ", 30s);
  int status = 0;
  REQUIRE(sluice::test::eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; }, 30s));
  const auto took = Clock::now() - sent;
  read_until(pipe_fds[0], out, "\n", 1s);
  close(pipe_fds[0]);
  INFO(out);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(took < 300ms + 500ms + 5s);  // deadline + grace, with CI slack
  CHECK_THAT(out, Catch::Contains("signal 15"));
  CHECK_THAT(out, Catch::Contains("shutdown after cancelling: completed=100 cancelled=10"));
}
