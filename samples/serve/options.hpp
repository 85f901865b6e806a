#pragma once

#include <asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace serve {

/// The largest body one request can ask for (--body-size, /bytes/N): a
/// client of a load-test server must not be able to make it write forever.
inline constexpr std::size_t kMaxBodySize = std::size_t{64} << 20;

/// A bad command line; what() says what is wrong.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  asio::ip::address host = asio::ip::address_v4::loopback();
  std::uint16_t port = 8080;  ///< 0: the kernel picks a free port
  bool allow_remote = false;
  std::size_t max_pending = 1024;  ///< connections served at once
  std::size_t body_size = 1024;    ///< bytes of `GET /`
  std::chrono::milliseconds deadline{5000};
  std::size_t threads = 0;  ///< 0: one worker per core
  std::string port_file;    ///< empty: none
  bool help = false;
};

/// Throws UsageError for an unknown option, a missing or malformed value, or
/// a non-loopback --host without --allow-remote.
Options parse_options(int argc, char** argv);

const char* usage();

}  // namespace serve
