#include "sha256sum_format.hpp"

#include <cstdio>

namespace hash {
namespace {

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

bool is_word(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80 ||
         std::string_view("%+,-./:]_@").find(static_cast<char>(c)) != std::string_view::npos;
}

// gnulib quotearg's rules for the shell-escape style with ':' added (what
// quotef uses): shell specials, '#' and '~' at the start, a lone brace,
// quotes, '?', backslash and control characters call for quoting.
bool needs_quoting(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (is_control(c) ||
      std::string_view(" !\"$&()*;<=>[^`|'?\\:").find(s[i]) != std::string_view::npos) {
    return true;
  }
  return ((c == '#' || c == '~') && i == 0) || ((c == '{' || c == '}') && s.size() == 1);
}

// Characters that quotearg accepts inside "...": a name holding a single
// quote and only these is written "like'this" rather than 'like'\''this'.
bool double_quotable(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  return c == ' ' || c == '\'' || is_word(c) || ((c == '#' || c == '~') && i == 0) ||
         ((c == '{' || c == '}') && s.size() == 1);
}

void append_control(std::string& out, unsigned char c) {
  switch (c) {
    case '\a':
      out += "\\a";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\v':
      out += "\\v";
      return;
    default: {
      char octal[5];
      std::snprintf(octal, sizeof octal, "\\%03o", static_cast<unsigned>(c));
      out += octal;
    }
  }
}

}  // namespace

std::string checksum_line(const Digest& digest, std::string_view path) {
  static constexpr char kHex[] = "0123456789abcdef";
  const bool escape = path.find_first_of("\\\n\r") != std::string_view::npos;
  std::string line;
  line.reserve(path.size() + 68);
  if (escape) {
    line += '\\';
  }
  for (const unsigned char b : digest) {
    line += kHex[b >> 4];
    line += kHex[b & 0xf];
  }
  line += "  ";
  for (const char c : path) {
    if (!escape) {
      line += c;
    } else if (c == '\\') {
      line += "\\\\";
    } else if (c == '\n') {
      line += "\\n";
    } else if (c == '\r') {
      line += "\\r";
    } else {
      line += c;
    }
  }
  line += '\n';
  return line;
}

std::string quote_path(std::string_view path) {
  if (path.empty()) {
    return "''";
  }
  bool quote = false;
  bool single_quote = false;
  bool all_double_quotable = true;
  for (std::size_t i = 0; i < path.size(); ++i) {
    quote = quote || needs_quoting(path, i);
    single_quote = single_quote || path[i] == '\'';
    all_double_quotable = all_double_quotable && double_quotable(path, i);
  }
  if (!quote) {
    return std::string(path);
  }
  if (single_quote && all_double_quotable) {
    return "\"" + std::string(path) + "\"";
  }
  // '...' with ' written as '\'' and control characters as $'\n'.
  std::string out = "'";
  bool in_dollar = false;  // inside a $'...' run
  for (const char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_control(c)) {
      if (!in_dollar) {
        out += "'$'";
        in_dollar = true;
      }
      append_control(out, c);
      continue;
    }
    if (in_dollar) {
      out += "''";
      in_dollar = false;
    }
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += ch;
    }
  }
  out += '\'';
  return out;
}

}  // namespace hash
