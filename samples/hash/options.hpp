#pragma once

#include <unistd.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace hash {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One input on the command line, in order: a path (a directory is walked)
/// or a list of paths, one per line ("-": stdin).
struct Input {
  enum class Kind { path, list };
  Kind kind;
  std::string name;
};

struct Options {
  std::vector<Input> inputs;    // none given: the list on stdin
  std::size_t concurrency = 0;  // files being read and hashed at once
  std::size_t max_pending = 0;  // files started and not yet printed
  std::size_t threads = 0;      // 0: one worker per core
  bool quiet = false;
  bool help = false;

  [[nodiscard]] bool show_progress() const { return !quiet && isatty(STDERR_FILENO) != 0; }
};

/// Throws UsageError with a message for bad arguments.
Options parse_options(int argc, char** argv);
const char* usage();

}  // namespace hash
