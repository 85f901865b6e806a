#pragma once

#include <http_parser.h>

#include <array>
#include <asio/ip/tcp.hpp>
#include <cstddef>
#include <sluice/task.hpp>
#include <string>

#include "connection_registry.hpp"
#include "response_batch.hpp"
#include "site.hpp"
#include "stats.hpp"

namespace serve {

/// One HTTP/1.1 connection: parses requests with http_parser and answers
/// them, pipelined and keep-alive, until the peer closes, a request asks
/// for close, a request is malformed, or the server drains.
///
/// Requests are answered in order. Every request completed by a read is
/// answered before the next read, and the answers go out in one write (see
/// ResponseBatch).
///
/// Thread safety: used by its own task only (which may move between
/// workers); its stop comes through sluice::use_task.
class HttpConnection {
 public:
  HttpConnection(asio::ip::tcp::socket socket, const Site& site, ServerStats& stats,
                 ConnectionRegistry::Entry& entry);
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  /// Serves until the connection is over and closes it. Network errors end
  /// it quietly; a stop of the task (the shutdown deadline) throws
  /// sluice::cancelled_error, except while idle during a drain.
  sluice::Task<ConnectionEnd> run();

 private:
  enum class Parsed { need_more, request, malformed };

  struct Request {
    unsigned method = 0;
    Persistence persistence = Persistence::keep_alive;
    std::string target;
  };

  static const http_parser_settings& settings() noexcept;
  static int on_message_begin(http_parser* parser) noexcept;
  static int on_url(http_parser* parser, const char* at, std::size_t size) noexcept;
  static int on_message_complete(http_parser* parser) noexcept;

  Parsed parse_next();
  /// Adds the answer to what parse_next() found; false: close after it.
  bool answer(Parsed parsed);
  /// Writes the batch; false if the peer is gone.
  sluice::Task<bool> flush();
  /// Reads more bytes; 0 when the connection is over (`drained` says
  /// whether the server's drain ended it).
  sluice::Task<std::size_t> read(bool& drained);
  void close() noexcept;

  asio::ip::tcp::socket socket_;
  const Site& site_;
  ServerStats& stats_;
  ConnectionRegistry::Entry& entry_;

  http_parser parser_{};
  bool in_message_ = false;  // between message begin and complete
  bool target_too_long_ = false;
  Request current_;  // filled by the callbacks
  ResponseBatch batch_;

  std::array<char, 16 * 1024> buffer_{};
  std::size_t parsed_ = 0;  // buffer_[parsed_, filled_) is not parsed yet
  std::size_t filled_ = 0;
};

}  // namespace serve
