#include "site.hpp"

#include <http_parser.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>

#include "options.hpp"

namespace serve {
namespace {

constexpr std::size_t kLine = 64;
constexpr std::size_t kPatternSize = 1024 * kLine;

Response text(int status, std::string body) {
  return Response{.status = status, .text = std::move(body)};
}

// The path of a request-target ("/a?b" and "http://h/a" both give "/a");
// false if http_parser does not accept it as a URL.
bool path_of(std::string_view target, std::string_view& path) {
  http_parser_url url{};
  http_parser_url_init(&url);
  if (http_parser_parse_url(target.data(), target.size(), /*is_connect=*/0, &url) != 0) {
    return false;
  }
  path = "/";
  if ((url.field_set & (1U << UF_PATH)) != 0) {
    path = target.substr(url.field_data[UF_PATH].off, url.field_data[UF_PATH].len);
  }
  return true;
}

// N of "/bytes/N"; a number above the cap asks for the cap.
bool bytes_wanted(std::string_view digits, std::size_t& n) {
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec == std::errc::result_out_of_range) {
    v = std::numeric_limits<std::uint64_t>::max();
  }
  n = static_cast<std::size_t>(std::min<std::uint64_t>(v, kMaxBodySize));
  return true;
}

}  // namespace

std::string_view generated_body() noexcept {
  static const std::string pattern = [] {
    constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string s(kPatternSize, '\n');
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (i % kLine != kLine - 1) {
        s[i] = alphabet[(i / kLine + i) % alphabet.size()];
      }
    }
    return s;
  }();
  return pattern;
}

Response Site::error(int status) {
  return text(status, status == 414 ? "request-target too long\n" : "bad request\n");
}

Response Site::respond(unsigned method, std::string_view target) const {
  if (method != HTTP_GET && method != HTTP_HEAD) {
    Response r = text(405, "method not allowed\n");
    r.extra_headers = "Allow: GET, HEAD\r\n";
    return r;
  }
  std::string_view path;
  if (!path_of(target, path)) {
    return error(400);
  }
  if (path == "/") {
    return Response{.generated = body_size_};
  }
  if (path == "/metrics") {
    return Response{.content_type = "text/plain; version=0.0.4", .text = metrics_()};
  }
  constexpr std::string_view bytes_prefix = "/bytes/";
  std::size_t n = 0;
  if (path.starts_with(bytes_prefix) && bytes_wanted(path.substr(bytes_prefix.size()), n)) {
    return Response{.content_type = "application/octet-stream", .generated = n};
  }
  return text(404, "not found\n");
}

}  // namespace serve
