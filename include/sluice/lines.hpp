#pragma once

#include <cstddef>
#include <istream>
#include <iterator>
#include <string>

namespace sluice {

/// The lines of a stream as a single-pass input range, read one at a time
/// (a URL list, a path list, stdin): `scope.stream_process(lines(std::cin),
/// 64, fetch)` never holds more than the lines in flight. A trailing '\r' is
/// dropped, so CRLF files read the same.
///
/// Thread safety: one consumer; the stream must outlive the range.
class LineRange {
 public:
  explicit LineRange(std::istream& in) noexcept : in_(&in) {}

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = std::string;
    using difference_type = std::ptrdiff_t;
    using reference = const std::string&;

    iterator() = default;
    explicit iterator(LineRange* range) : range_(range) { ++*this; }

    reference operator*() const noexcept { return range_->line_; }
    iterator& operator++() {
      if (!std::getline(*range_->in_, range_->line_)) {
        range_ = nullptr;
      } else if (!range_->line_.empty() && range_->line_.back() == '\r') {
        range_->line_.pop_back();
      }
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.range_ == nullptr;
    }

   private:
    LineRange* range_ = nullptr;
  };

  /// Reads the first line; call once.
  iterator begin() { return iterator(this); }
  static std::default_sentinel_t end() noexcept { return {}; }

 private:
  std::istream* in_;
  std::string line_;
};

/// `sluice::lines(stream)`: see LineRange.
inline LineRange lines(std::istream& in) noexcept { return LineRange(in); }

}  // namespace sluice
