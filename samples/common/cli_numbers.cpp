#include "cli_numbers.hpp"

#include <charconv>
#include <system_error>

namespace cli {

std::optional<std::uint64_t> parse_number(std::string_view text, std::uint64_t min,
                                          std::uint64_t max) {
  std::uint64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [stop, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || stop != end || v < min || v > max) {
    return std::nullopt;
  }
  return v;
}

std::string bad_value(std::string_view flag, std::string_view expected, std::string_view text) {
  return std::string(flag) + ": expected " + std::string(expected) + ", got '" + std::string(text) +
         "'";
}

}  // namespace cli
