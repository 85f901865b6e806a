#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

/// Number-valued command-line options, shared by the samples. Each sample
/// words its own "expected ..." and throws its own UsageError.
namespace cli {

/// All of `text` as a decimal number from `min` to `max`; nullopt for
/// anything else (empty, a sign, a space, trailing characters, out of range).
std::optional<std::uint64_t> parse_number(std::string_view text, std::uint64_t min,
                                          std::uint64_t max);

/// "FLAG: expected EXPECTED, got 'TEXT'".
std::string bad_value(std::string_view flag, std::string_view expected, std::string_view text);

/// parse_number, or throws `Error` with bad_value's message.
template <class Error>
std::uint64_t number(std::string_view flag, std::string_view text, std::uint64_t min,
                     std::uint64_t max, std::string_view expected) {
  if (const auto v = parse_number(text, min, max)) {
    return *v;
  }
  throw Error(bad_value(flag, expected, text));
}

}  // namespace cli
