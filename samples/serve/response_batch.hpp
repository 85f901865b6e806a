#pragma once

#include <asio/buffer.hpp>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "site.hpp"

namespace serve {

/// What the Connection header of a response says.
enum class Persistence {
  keep_alive,           ///< HTTP/1.1 default: no header
  keep_alive_explicit,  ///< an HTTP/1.0 client asked for keep-alive: say yes
  close,                ///< the connection closes after this response
};

/// Responses waiting to be written, sent with one gathered write: requests
/// pipelined into one read are answered with one system call, not one each.
///
/// Headers and small bodies are copied into one text buffer; generated bodies
/// are pieces of generated_body(), never copied, so a 64 MiB response costs
/// a list of pointers.
///
/// Thread safety: one connection's; not shared.
class ResponseBatch {
 public:
  /// Appends `r`; with `head_only`, its headers only (HEAD).
  void add(const Response& r, bool head_only, Persistence persistence);

  [[nodiscard]] bool empty() const noexcept { return statuses_.empty(); }
  /// Large enough to write now rather than answer more requests first.
  [[nodiscard]] bool full() const noexcept;
  /// The bytes to write; valid until the next add() or clear().
  [[nodiscard]] const std::vector<asio::const_buffer>& buffers();
  /// Status of each response, in order.
  [[nodiscard]] std::span<const int> statuses() const noexcept { return statuses_; }
  void clear() noexcept;

 private:
  struct Piece {
    const char* external;  ///< null: `offset` into text_
    std::size_t offset;
    std::size_t size;
  };

  void append_text(std::string_view s);
  void append_number(std::size_t n);

  std::string text_;
  std::vector<Piece> pieces_;
  std::vector<asio::const_buffer> buffers_;
  std::vector<int> statuses_;
  std::size_t bytes_ = 0;
};

}  // namespace serve
