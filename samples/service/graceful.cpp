// A service skeleton: work in a bounded scope, SIGINT/SIGTERM for a graceful
// shutdown with a deadline. (Inside a task, sluice::wait_for_signal(rt,
// SIGINT, SIGTERM) does the same; the set here is installed before the
// service announces itself, so no early signal is missed.)
//
//   graceful [--deadline-ms N] [--stuck N]
//
// Prints "ready" once its work is running, then a summary after shutdown;
// exits 0 after a shutdown (clean or not), 2 on bad arguments.
#include <asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sluice/sluice.hpp>
#include <string>

using namespace std::chrono_literals;

namespace {

sluice::Task<void> tick(std::chrono::milliseconds period, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    co_await sluice::sleep_for(period);
  }
}

sluice::Task<int> serve(sluice::Runtime& rt, asio::signal_set& signals,
                        std::chrono::milliseconds deadline, int stuck) {
  sluice::Scope work(rt, sluice::ScopeOptions{.max_pending = 1000, .name = "work"});
  for (int i = 0; i < 100; ++i) {
    work.spawn_detached(tick(5ms, 10));  // finishes in ~50 ms
  }
  for (int i = 0; i < stuck; ++i) {
    work.spawn_detached(tick(1h, 1));  // only a stop ends these
  }
  std::printf("ready\n");
  std::fflush(stdout);
  const int signal = co_await signals.async_wait(sluice::use_task);
  std::printf("signal %d: shutting down within %lld ms\n", signal,
              static_cast<long long>(deadline.count()));
  const bool clean = co_await rt.shutdown(deadline);
  co_await work.join();
  const auto m = rt.metrics();
  std::printf("shutdown %s: completed=%llu cancelled=%llu timed_out=%llu failed=%llu\n",
              clean ? "clean" : "after cancelling", static_cast<unsigned long long>(m.completed),
              static_cast<unsigned long long>(m.cancelled),
              static_cast<unsigned long long>(m.timed_out),
              static_cast<unsigned long long>(m.failed));
  co_return 0;
}

bool parse(int argc, char** argv, long& deadline_ms, long& stuck) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("usage: graceful [--deadline-ms N] [--stuck N]\n");
      std::exit(0);
    }
    if (i + 1 >= argc) {
      return false;
    }
    char* end = nullptr;
    const long v = std::strtol(argv[++i], &end, 10);
    if (*end != '\0' || v < 0) {
      return false;
    }
    if (arg == "--deadline-ms") {
      deadline_ms = v;
    } else if (arg == "--stuck") {
      stuck = v;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  long deadline_ms = 200;
  long stuck = 10;
  if (!parse(argc, argv, deadline_ms, stuck)) {
    std::fprintf(stderr, "graceful: bad arguments; see --help\n");
    return 2;
  }
  sluice::Runtime rt(sluice::Config{.threads = 2});
  // Installed before "ready" is printed, on the thread signals are sent to.
  asio::signal_set signals(rt.io_context(), SIGINT, SIGTERM);
  return rt.block_on(
      serve(rt, signals, std::chrono::milliseconds(deadline_ms), static_cast<int>(stuck)));
}
