#include "response_batch.hpp"

#include <http_parser.h>

#include <algorithm>
#include <charconv>

namespace serve {
namespace {

// Past these, answering more pipelined requests before writing only delays
// the first response and grows the batch.
constexpr std::size_t kFullBytes = 256 * 1024;
constexpr std::size_t kFullResponses = 64;

}  // namespace

void ResponseBatch::append_text(std::string_view s) {
  if (!pieces_.empty() && pieces_.back().external == nullptr) {
    pieces_.back().size += s.size();  // text_ is contiguous: grow the last piece
  } else {
    pieces_.push_back(Piece{nullptr, text_.size(), s.size()});
  }
  text_.append(s);
  bytes_ += s.size();
}

void ResponseBatch::append_number(std::size_t n) {
  char digits[24];  // any 64-bit value fits
  const auto result = std::to_chars(std::begin(digits), std::end(digits), n);
  append_text(std::string_view(digits, static_cast<std::size_t>(result.ptr - digits)));
}

void ResponseBatch::add(const Response& r, bool head_only, Persistence persistence) {
  append_text("HTTP/1.1 ");
  append_number(static_cast<std::size_t>(r.status));
  append_text(" ");
  append_text(http_status_str(static_cast<http_status>(r.status)));
  append_text("\r\nContent-Type: ");
  append_text(r.content_type);
  append_text("\r\nContent-Length: ");
  append_number(r.body_size());
  append_text("\r\n");
  append_text(r.extra_headers);
  if (persistence == Persistence::close) {
    append_text("Connection: close\r\n");
  } else if (persistence == Persistence::keep_alive_explicit) {
    append_text("Connection: keep-alive\r\n");
  }
  append_text("\r\n");
  statuses_.push_back(r.status);
  if (head_only) {
    return;
  }
  append_text(r.text);
  const std::string_view pattern = generated_body();
  for (std::size_t left = r.generated; left > 0;) {
    const std::size_t n = std::min(left, pattern.size());
    pieces_.push_back(Piece{pattern.data(), 0, n});
    bytes_ += n;
    left -= n;
  }
}

bool ResponseBatch::full() const noexcept {
  return bytes_ >= kFullBytes || statuses_.size() >= kFullResponses;
}

const std::vector<asio::const_buffer>& ResponseBatch::buffers() {
  buffers_.clear();
  buffers_.reserve(pieces_.size());
  for (const Piece& p : pieces_) {
    const char* base = p.external != nullptr ? p.external : text_.data() + p.offset;
    buffers_.emplace_back(base, p.size);
  }
  return buffers_;
}

void ResponseBatch::clear() noexcept {
  text_.clear();
  pieces_.clear();
  buffers_.clear();
  statuses_.clear();
  bytes_ = 0;
}

}  // namespace serve
