#include "server.hpp"

#include <asio/steady_timer.hpp>
#include <cstdio>
#include <optional>
#include <sluice/error.hpp>
#include <sluice/use_task.hpp>
#include <system_error>
#include <utility>

#include "http_connection.hpp"

using namespace std::chrono_literals;

namespace serve {

Server::Server(sluice::Runtime& runtime, asio::ip::tcp::acceptor acceptor, const Options& options)
    : runtime_(runtime),
      acceptor_(std::move(acceptor)),
      deadline_(options.deadline),
      site_(options.body_size, [this] { return metrics_text(); }),
      connections_(runtime,
                   sluice::ScopeOptions{.max_pending = options.max_pending, .name = "connections"}),
      accepting_(runtime, sluice::ScopeOptions{.name = "accept"}) {}

std::string Server::metrics_text() const {
  return runtime_.metrics().to_prometheus() + stats_.to_prometheus();
}

sluice::Task<void> Server::accept_loop() {
  for (;;) {
    std::optional<asio::ip::tcp::socket> socket;
    try {
      socket.emplace(co_await acceptor_.async_accept(sluice::use_task));
    } catch (const sluice::task_error&) {
      break;  // the shutdown stopped us
    } catch (const std::system_error& e) {
      // Out of file descriptors, or a connection reset before it was
      // accepted: neither is a reason to stop serving the others.
      std::fprintf(stderr, "sluice-serve: accept: %s\n", e.what());
    }
    if (!socket) {
      asio::steady_timer pause(runtime_.io_context(), 50ms);  // let descriptors free up
      try {
        co_await pause.async_wait(sluice::use_task);
      } catch (const sluice::task_error&) {
        break;
      }
      continue;
    }
    auto entry = registry_.add();
    sluice::JoinHandle<void> handle;
    try {
      // At --max-pending this waits for a connection to close, and meanwhile
      // accepts nothing more: the backlog fills and clients wait in connect().
      handle = co_await connections_.spawn(serve(std::move(*socket), entry));
    } catch (const sluice::shutting_down_error&) {
      registry_.remove(*entry);  // refused (the socket closed with the task)
      break;
    }
    registry_.attach(*entry, std::move(handle));
  }
  asio::error_code ignored;
  acceptor_.close(ignored);
}

sluice::Task<void> Server::serve(asio::ip::tcp::socket socket,
                                 std::shared_ptr<ConnectionRegistry::Entry> entry) {
  // Counted and unlisted however the connection ends. Only a stop at the
  // shutdown deadline (or running out of memory) ends it with an exception,
  // which the scope then records as the task's outcome.
  struct Farewell {
    Server& server;
    ConnectionRegistry::Entry& entry;
    ConnectionEnd end = ConnectionEnd::cancelled;
    ~Farewell() {
      server.stats_.connection_closed(end);
      server.registry_.remove(entry);
    }
  };
  stats_.connection_opened();
  Farewell farewell{*this, *entry};
  HttpConnection connection(std::move(socket), site_, stats_, *entry);
  farewell.end = co_await connection.run();
}

sluice::Task<int> Server::serve_until(asio::signal_set& signals) {
  accepting_.spawn_detached(accept_loop());
  const int signal = co_await signals.async_wait(sluice::use_task);
  // Cancels the accept in flight; the loop then closes the acceptor. A loop
  // waiting for a connection slot is woken by the runtime's shutdown, and a
  // connection it accepted just before sees the drain and closes unread.
  accepting_.request_stop();
  const auto drained = registry_.drain();
  std::printf(
      "signal %d: stopped accepting; closing %zu idle connection(s), giving %zu busy "
      "one(s) %lld ms\n",
      signal, drained.idle, drained.open - drained.idle, static_cast<long long>(deadline_.count()));
  std::fflush(stdout);
  co_return signal;
}

void Server::print_summary(bool clean) const {
  const ServerStats::Snapshot s = stats_.snapshot();
  std::printf(
      "shutdown %s: requests=%llu connections=%llu closed_idle=%llu cancelled=%llu "
      "bytes_sent=%llu\n",
      clean ? "clean" : "after cancelling", static_cast<unsigned long long>(s.requests_total()),
      static_cast<unsigned long long>(s.connections), static_cast<unsigned long long>(s.drained),
      static_cast<unsigned long long>(s.cancelled), static_cast<unsigned long long>(s.bytes_sent));
  std::fflush(stdout);
}

}  // namespace serve
