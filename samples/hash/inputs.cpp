#include "inputs.hpp"

#include <algorithm>
#include <iostream>

namespace hash {

namespace fs = std::filesystem;

Inputs::Inputs(std::vector<Input> inputs) : inputs_(std::move(inputs)) {}

std::optional<Item> Inputs::next() {
  for (;;) {
    if (!walk_.empty()) {
      if (auto item = from_walk()) {
        return item;
      }
      continue;  // that walk is over
    }
    if (list_ != nullptr) {
      if (auto line = from_list()) {
        if (auto item = start(std::move(*line))) {
          return item;
        }
      }
      continue;
    }
    if (next_input_ == inputs_.size()) {
      return std::nullopt;
    }
    const Input& input = inputs_[next_input_++];
    if (input.kind == Input::Kind::list) {
      if (auto failed = open_list(input.name)) {
        return failed;
      }
    } else if (auto item = start(input.name)) {
      return item;
    }
  }
}

std::optional<Item> Inputs::open_list(const std::string& name) {
  if (name == "-") {
    list_ = &std::cin;
    return std::nullopt;
  }
  list_file_ = std::ifstream(name);
  if (!list_file_) {
    return Item{name, std::error_code(errno, std::generic_category())};
  }
  list_ = &list_file_;
  return std::nullopt;
}

std::optional<std::string> Inputs::unreadable_list(const std::vector<Input>& inputs) {
  for (const auto& input : inputs) {
    if (input.kind == Input::Kind::list && input.name != "-" && !std::ifstream(input.name)) {
      return input.name +
             ": cannot open the list of paths: " + std::generic_category().message(errno);
    }
  }
  return std::nullopt;
}

// The next non-empty line of the current list; a trailing '\r' is dropped
// so that a list written on Windows reads the same.
std::optional<std::string> Inputs::from_list() {
  std::string line;
  while (std::getline(*list_, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (!line.empty()) {
      return line;
    }
  }
  list_ = nullptr;
  list_file_ = std::ifstream();
  return std::nullopt;
}

// A path from the command line or a list: a directory starts a walk (and
// yields nothing yet); anything else, missing paths included, is hashed and
// fails there if it must.
std::optional<Item> Inputs::start(std::string path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return descend(path);
  }
  return Item{std::move(path), {}};
}

// Lists `dir` sorted; an unreadable directory is an Item with its error.
std::optional<Item> Inputs::descend(const fs::path& dir) {
  Level level;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    level.entries.push_back(*it);
  }
  if (ec) {
    return Item{dir.string(), ec};
  }
  std::sort(level.entries.begin(), level.entries.end(),
            [](const fs::directory_entry& a, const fs::directory_entry& b) {
              return a.path().filename().native() < b.path().filename().native();
            });
  walk_.push_back(std::move(level));
  return std::nullopt;
}

// The next file of the walk, depth first. Real directories are entered;
// symbolic links to directories are not (no cycles); FIFOs, sockets and
// devices are skipped as `find -type f` would; regular files and links to
// them (or dangling links, which then fail as sha256sum's would) are hashed.
std::optional<Item> Inputs::from_walk() {
  while (!walk_.empty()) {
    Level& level = walk_.back();
    if (level.next == level.entries.size()) {
      walk_.pop_back();
      continue;
    }
    const fs::directory_entry entry = std::move(level.entries[level.next++]);
    std::error_code ec;
    if (entry.is_symlink(ec)) {
      const auto target = fs::status(entry.path(), ec);
      if (fs::is_directory(target)) {
        continue;
      }
      if (fs::exists(target) && !fs::is_regular_file(target)) {
        continue;
      }
      return Item{entry.path().string(), {}};
    }
    if (entry.is_directory(ec)) {
      if (auto failed = descend(entry.path())) {
        return failed;
      }
      continue;
    }
    if (entry.is_regular_file(ec)) {
      return Item{entry.path().string(), {}};
    }
  }
  return std::nullopt;
}

std::optional<std::uint64_t> Inputs::count(const std::vector<Input>& inputs) {
  std::uint64_t n = 0;
  for (const auto& input : inputs) {
    std::error_code ec;
    if (input.kind == Input::Kind::list) {
      if (input.name == "-" || !fs::is_regular_file(input.name, ec)) {
        return std::nullopt;
      }
      std::ifstream in(input.name);
      for (std::string line; std::getline(in, line);) {
        n += line.empty() || line == "\r" ? 0 : 1;
      }
    } else if (fs::is_directory(input.name, ec)) {
      return std::nullopt;
    } else {
      ++n;
    }
  }
  return n;
}

}  // namespace hash
