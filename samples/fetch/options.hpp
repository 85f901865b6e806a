#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fetch {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string input = "-";
  std::string output;  // empty: stdout
  std::size_t concurrency = 64;
  std::size_t max_pending = 64;
  std::size_t threads = 0;
  std::size_t io_threads = 1;
  std::chrono::milliseconds timeout{10'000};
  std::chrono::milliseconds grace{2'000};
  int retries = 0;
  bool quiet = false;
  bool help = false;

  [[nodiscard]] bool show_progress() const { return !quiet && isatty(STDERR_FILENO) != 0; }
};

/// Throws UsageError with a message for bad arguments.
Options parse_options(int argc, char** argv);
const char* usage();
/// The URLs in the list at `path`: its lines that are not blank.
std::uint64_t count_lines(const std::string& path);

}  // namespace fetch
