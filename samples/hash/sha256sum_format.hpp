// What coreutils' sha256sum (9.1) prints, byte for byte.
#pragma once

#include <string>
#include <string_view>

#include "sha256.hpp"

namespace hash {

/// `<64 hex>  <path>\n`. A path holding a backslash, newline or carriage
/// return is escaped (`\\`, `\n`, `\r`) and the line starts with a
/// backslash, which is how `sha256sum -c` knows to unescape it.
std::string checksum_line(const Digest& digest, std::string_view path);

/// A path as sha256sum names it in an error message (gnulib's quotef:
/// shell-escape quoting, colons quoted too): plain names bare, others in
/// '...' or "...", control characters as $'\n'. Bytes above 0x7f are taken
/// as printable, as in a UTF-8 locale.
std::string quote_path(std::string_view path);

}  // namespace hash
