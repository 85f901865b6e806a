#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <chrono>
#include <memory>
#include <sluice/runtime.hpp>
#include <sluice/scope.hpp>
#include <sluice/task.hpp>
#include <string>

#include "connection_registry.hpp"
#include "options.hpp"
#include "site.hpp"
#include "stats.hpp"

namespace serve {

/// The HTTP service: one task per connection, at most --max-pending at once,
/// and the first half of a graceful shutdown on a signal.
///
/// The runtime's shutdown is the second half: busy connections close after
/// their response, and those still running at its deadline are cancelled.
///
///   runtime.block_on(server.serve_until(signals));
///   server.print_summary(runtime.shutdown_timeout(deadline));
///
/// Thread safety: serve_until() once; print_summary() after the shutdown.
class Server {
 public:
  /// `acceptor` is listening, on the runtime's reactor.
  Server(sluice::Runtime& runtime, asio::ip::tcp::acceptor acceptor, const Options& options);

  /// Serves until one of `signals` arrives, then stops accepting and closes
  /// the idle connections; returns the signal's number.
  sluice::Task<int> serve_until(asio::signal_set& signals);

  /// One line: requests, connections, and what the shutdown had to close
  /// (`clean`: the runtime's shutdown cancelled nothing).
  void print_summary(bool clean) const;

 private:
  sluice::Task<void> accept_loop();
  sluice::Task<void> serve(asio::ip::tcp::socket socket,
                           std::shared_ptr<ConnectionRegistry::Entry> entry);
  [[nodiscard]] std::string metrics_text() const;

  sluice::Runtime& runtime_;
  asio::ip::tcp::acceptor acceptor_;  // used by accept_loop only
  std::chrono::milliseconds deadline_;
  ServerStats stats_;
  ConnectionRegistry registry_;
  Site site_;
  // Last, so they are destroyed first: their tasks use everything above.
  sluice::Scope connections_;
  sluice::Scope accepting_;
};

}  // namespace serve
