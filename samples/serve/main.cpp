// sluice-serve: a small HTTP/1.1 keep-alive server for local load tests.
//
//   sluice-serve [--port N] [--host ADDR] [--max-pending N] [--body-size N]
//                [--deadline-ms N] [--threads N] [--port-file PATH]
//
// A task per connection in a scope bounded by --max-pending; requests parsed
// by http_parser; socket I/O through sluice::use_task. SIGINT/SIGTERM shut
// it down gracefully (see Server). Prints "listening on ADDR:PORT" once
// connections are accepted, and a summary line after the shutdown.
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <exception>
#include <fstream>
#include <sluice/runtime.hpp>
#include <string>
#include <system_error>

#include "options.hpp"
#include "server.hpp"

namespace {

asio::ip::tcp::acceptor listen(asio::io_context& io, const asio::ip::tcp::endpoint& endpoint) {
  asio::ip::tcp::acceptor acceptor(io);
  acceptor.open(endpoint.protocol());
  // A restarted server must not wait out the previous one's TIME_WAITs.
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  return acceptor;
}

// Written whole or not at all (a rename), so a script polling for the file
// never reads half a number.
bool write_port_file(const std::string& path, unsigned port) {
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::trunc);
    out << port << '\n';
    if (!out.flush()) {
      return false;
    }
  }
  return std::rename(partial.c_str(), path.c_str()) == 0;
}

std::string to_string(const asio::ip::tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(endpoint.port());
}

int serve_until_signal(const serve::Options& options) {
  sluice::Runtime runtime(sluice::Config{.threads = options.threads});
  // Installed on the main thread before the server announces itself: a
  // signal sent as soon as "listening" appears is then never missed.
  asio::signal_set signals(runtime.io_context(), SIGINT, SIGTERM);

  const asio::ip::tcp::endpoint wanted(options.host, options.port);
  asio::ip::tcp::acceptor acceptor(runtime.io_context());
  try {
    acceptor = listen(runtime.io_context(), wanted);
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "sluice-serve: cannot listen on %s: %s\n", to_string(wanted).c_str(),
                 e.code().message().c_str());
    return 1;
  }
  const auto bound = acceptor.local_endpoint();
  if (!options.port_file.empty() && !write_port_file(options.port_file, bound.port())) {
    std::fprintf(stderr, "sluice-serve: cannot write the port file %s\n",
                 options.port_file.c_str());
    return 1;
  }
  serve::Server server(runtime, std::move(acceptor), options);
  std::printf("listening on %s\n", to_string(bound).c_str());
  std::fflush(stdout);
  runtime.block_on(server.serve_until(signals));
  // From this thread, not a worker: the drain blocks until the busy
  // connections finish or the deadline cancels them.
  server.print_summary(runtime.shutdown_timeout(options.deadline));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  serve::Options options;
  try {
    options = serve::parse_options(argc, argv);
  } catch (const serve::UsageError& e) {
    std::fprintf(stderr, "sluice-serve: %s\n(see sluice-serve --help)\n", e.what());
    return 2;
  }
  if (options.help) {
    std::fputs(serve::usage(), stdout);
    return 0;
  }
  try {
    return serve_until_signal(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice-serve: %s\n", e.what());
    return 1;
  }
}
