#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace serve {

/// What to answer to one request.
struct Response {
  int status = 200;
  std::string_view content_type = "text/plain";
  std::string_view extra_headers{};  ///< whole lines, each ending in CRLF
  std::string text{};                ///< a body built for this request...
  std::size_t generated = 0;         ///< ...or this many bytes of generated_body()

  [[nodiscard]] std::size_t body_size() const noexcept { return text.size() + generated; }
};

/// The bytes every generated body is cut from: printable lines, so a body
/// shown in a terminal stays readable. Its size is a multiple of the line
/// length, so consecutive pieces continue the pattern.
[[nodiscard]] std::string_view generated_body() noexcept;

/// The server's resources: which response each request gets.
///
/// Thread safety: respond() may be called from any thread at once (the
/// metrics function must allow that).
class Site {
 public:
  Site(std::size_t body_size, std::function<std::string()> metrics)
      : body_size_(body_size), metrics_(std::move(metrics)) {}

  /// The response to `method` (an http_parser method number) on `target`
  /// (the request-target as sent).
  [[nodiscard]] Response respond(unsigned method, std::string_view target) const;

  /// A response for a request that could not be parsed: 400, or 414 for a
  /// request-target that is too long.
  [[nodiscard]] static Response error(int status);

 private:
  std::size_t body_size_;
  std::function<std::string()> metrics_;
};

}  // namespace serve
