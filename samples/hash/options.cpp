#include "options.hpp"

#include <algorithm>
#include <thread>

#include "common/cli_numbers.hpp"

namespace hash {
namespace {

std::size_t number(const std::string& flag, const char* text, std::size_t max) {
  return cli::number<UsageError>(flag, text, 1, max, "a number from 1 to " + std::to_string(max));
}

}  // namespace

const char* usage() {
  return "usage: sluice-hash [options] [PATH|-]...\n"
         "Prints the SHA-256 of every file in sha256sum's format, in input order, so that\n"
         "'sha256sum -c' verifies the output. A directory is walked recursively (entries\n"
         "in byte order; symbolic links to directories are not followed). '-' reads a list\n"
         "of paths from stdin, one per line; with no PATH at all, stdin is that list.\n"
         "\n"
         "  --files-from FILE  read paths from FILE, one per line ('-': stdin)\n"
         "  --concurrency N    files read and hashed at once (default: 2 x cores)\n"
         "  --max-pending N    files started but not yet printed, the window that keeps\n"
         "                     the output in input order (default: 4 x concurrency)\n"
         "  --threads N        worker threads (default: one per core)\n"
         "  --quiet            no progress line on stderr\n"
         "  --help             this text\n"
         "\n"
         "Exit status: 0 all files hashed, 1 some could not be read (each reported on\n"
         "stderr), 2 usage error or unreadable list.\n";
}

Options parse_options(int argc, char** argv) {
  Options o;
  bool max_pending_set = false;
  bool options_end = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        throw UsageError(arg + ": missing value");
      }
      return argv[++i];
    };
    if (options_end || arg == "-" || arg.empty() || arg[0] != '-') {
      o.inputs.push_back(arg == "-" ? Input{Input::Kind::list, "-"}
                                    : Input{Input::Kind::path, arg});
    } else if (arg == "--") {
      options_end = true;
    } else if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else if (arg == "--quiet" || arg == "-q") {
      o.quiet = true;
    } else if (arg == "--files-from") {
      o.inputs.push_back(Input{Input::Kind::list, value()});
    } else if (arg == "--concurrency") {
      o.concurrency = number(arg, value(), 100'000);
    } else if (arg == "--max-pending") {
      o.max_pending = number(arg, value(), 10'000'000);
      max_pending_set = true;
    } else if (arg == "--threads") {
      o.threads = number(arg, value(), 4096);
    } else {
      throw UsageError("unknown option " + arg);
    }
  }
  if (o.concurrency == 0) {
    o.concurrency = 2 * std::max(1U, std::thread::hardware_concurrency());
  }
  if (!max_pending_set) {
    o.max_pending = 4 * o.concurrency;
  }
  if (o.max_pending < o.concurrency) {
    throw UsageError("--max-pending (" + std::to_string(o.max_pending) +
                     ") must be at least --concurrency (" + std::to_string(o.concurrency) + ")");
  }
  if (o.inputs.empty()) {
    o.inputs.push_back(Input{Input::Kind::list, "-"});
  }
  return o;
}

}  // namespace hash
