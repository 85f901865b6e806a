#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "options.hpp"

namespace hash {

/// The next thing to print: a file to hash, or a path that already failed
/// (a directory that cannot be listed), reported in its place in the order.
struct Item {
  std::string path;
  std::error_code error;
};

/// Every path of the command line's inputs, in order, produced one at a
/// time: a list is read a line at a time and a directory is walked a level at
/// a time, so neither a million-line list nor a huge tree is ever held. Each
/// directory's entries are sorted, so the order does not depend on the file
/// system. Files are only named here; opening them is the hasher's job.
///
/// Thread safety: one caller at a time (next() makes blocking calls).
class Inputs {
 public:
  explicit Inputs(std::vector<Input> inputs);

  /// The next path; nullopt at the end. A list file that cannot be opened
  /// comes back as an Item with its error.
  std::optional<Item> next();

  /// A message for the first list file that cannot be opened, checked
  /// before any work starts.
  static std::optional<std::string> unreadable_list(const std::vector<Input>& inputs);

  /// The number of paths, if it can be known without walking or reading
  /// stdin (plain paths and list files only).
  static std::optional<std::uint64_t> count(const std::vector<Input>& inputs);

 private:
  struct Level {
    std::vector<std::filesystem::directory_entry> entries;  // sorted by name
    std::size_t next = 0;
  };

  std::optional<Item> from_walk();
  std::optional<std::string> from_list();
  std::optional<Item> start(std::string path);
  std::optional<Item> descend(const std::filesystem::path& dir);
  std::optional<Item> open_list(const std::string& name);

  std::vector<Input> inputs_;
  std::size_t next_input_ = 0;
  std::ifstream list_file_;
  std::istream* list_ = nullptr;  // the list being read, if any
  std::vector<Level> walk_;       // the directories being walked, outermost first
};

}  // namespace hash
