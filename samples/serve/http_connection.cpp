#include "http_connection.hpp"

#include <asio/write.hpp>
#include <sluice/error.hpp>
#include <sluice/use_task.hpp>
#include <system_error>
#include <utility>

namespace serve {
namespace {

// Longer request-targets get 414: nothing this server serves needs one, and
// the target is the only part of a request it keeps.
constexpr std::size_t kMaxTarget = 8 * 1024;

HttpConnection& self(http_parser* parser) noexcept {
  return *static_cast<HttpConnection*>(parser->data);
}

}  // namespace

HttpConnection::HttpConnection(asio::ip::tcp::socket socket, const Site& site, ServerStats& stats,
                               ConnectionRegistry::Entry& entry)
    : socket_(std::move(socket)), site_(site), stats_(stats), entry_(entry) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  asio::error_code ignored;
  // Responses are written whole; Nagle would only hold back their last segment.
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
}

const http_parser_settings& HttpConnection::settings() noexcept {
  static const http_parser_settings s = [] {
    http_parser_settings v{};
    http_parser_settings_init(&v);
    v.on_message_begin = &HttpConnection::on_message_begin;
    v.on_url = &HttpConnection::on_url;
    v.on_message_complete = &HttpConnection::on_message_complete;
    return v;
  }();
  return s;
}

int HttpConnection::on_message_begin(http_parser* parser) noexcept {
  HttpConnection& c = self(parser);
  c.in_message_ = true;
  c.current_.target.clear();
  return 0;
}

int HttpConnection::on_url(http_parser* parser, const char* at, std::size_t size) noexcept {
  HttpConnection& c = self(parser);
  // The target may arrive in pieces, one per read.
  if (c.current_.target.size() + size > kMaxTarget) {
    c.target_too_long_ = true;
    return 1;  // stops the parser with HPE_CB_url
  }
  c.current_.target.append(at, size);
  return 0;
}

int HttpConnection::on_message_complete(http_parser* parser) noexcept {
  HttpConnection& c = self(parser);
  c.in_message_ = false;
  c.current_.method = parser->method;
  if (http_should_keep_alive(parser) == 0 || parser->upgrade != 0) {
    c.current_.persistence = Persistence::close;  // no other protocol spoken here
  } else if (parser->http_major == 1 && parser->http_minor == 0) {
    c.current_.persistence = Persistence::keep_alive_explicit;
  } else {
    c.current_.persistence = Persistence::keep_alive;
  }
  // Pausing hands this request back to run() before the parser moves on to
  // the next one pipelined behind it.
  http_parser_pause(parser, 1);
  return 0;
}

HttpConnection::Parsed HttpConnection::parse_next() {
  if (parsed_ == filled_) {
    return Parsed::need_more;  // never execute on 0 bytes: http_parser takes that as end of stream
  }
  const std::size_t n =
      http_parser_execute(&parser_, &settings(), buffer_.data() + parsed_, filled_ - parsed_);
  parsed_ += n;
  switch (HTTP_PARSER_ERRNO(&parser_)) {
    case HPE_OK:
      return Parsed::need_more;  // every byte consumed, no request complete
    case HPE_PAUSED:
      http_parser_pause(&parser_, 0);
      return Parsed::request;
    default:
      return Parsed::malformed;
  }
}

bool HttpConnection::answer(Parsed parsed) {
  if (parsed == Parsed::malformed) {
    batch_.add(Site::error(target_too_long_ ? 414 : 400), false, Persistence::close);
    return false;
  }
  Persistence persistence = current_.persistence;
  if (entry_.draining()) {
    persistence = Persistence::close;
  }
  batch_.add(site_.respond(current_.method, current_.target), current_.method == HTTP_HEAD,
             persistence);
  return persistence != Persistence::close;
}

sluice::Task<bool> HttpConnection::flush() {
  std::size_t written = 0;
  try {
    written = co_await asio::async_write(socket_, batch_.buffers(), sluice::use_task);
  } catch (const sluice::task_error&) {
    throw;  // stopped: the task ends cancelled
  } catch (const std::system_error&) {
    co_return false;  // reset or broken pipe: the peer went away
  }
  stats_.responses_sent(batch_.statuses(), written);
  batch_.clear();
  co_return true;
}

sluice::Task<std::size_t> HttpConnection::read(bool& drained) {
  parsed_ = filled_ = 0;  // the parser keeps no pointers into the buffer
  const bool idle = !in_message_;
  if (idle && !entry_.enter_idle()) {
    drained = true;
    co_return 0;
  }
  std::size_t n = 0;
  try {
    n = co_await socket_.async_read_some(asio::buffer(buffer_), sluice::use_task);
  } catch (const sluice::task_error&) {
    if (idle && entry_.closed_by_drain()) {
      drained = true;  // the drain closed it: a normal end, not a cancelled one
      co_return 0;
    }
    throw;
  } catch (const std::system_error&) {
    co_return 0;  // end of stream or reset
  }
  if (idle) {
    entry_.leave_idle();
  }
  filled_ = n;
  co_return n;
}

void HttpConnection::close() noexcept {
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

sluice::Task<ConnectionEnd> HttpConnection::run() {
  bool drained = false;
  bool open = true;
  while (open) {
    // Answer every request the last read completed, then write once (or
    // sooner, when the batch fills up).
    for (bool more = true; open && more;) {
      const Parsed parsed = parse_next();
      more = parsed != Parsed::need_more;
      if (more) {
        open = answer(parsed);
      }
      const bool write_now = batch_.full() || !more || !open;
      if (write_now && !batch_.empty() && !co_await flush()) {
        open = false;
      }
    }
    if (open) {
      open = co_await read(drained) > 0;
    }
  }
  close();
  co_return drained ? ConnectionEnd::drained : ConnectionEnd::closed;
}

}  // namespace serve
