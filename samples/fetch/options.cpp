#include "options.hpp"

#include <fstream>

#include "common/cli_numbers.hpp"

namespace fetch {
namespace {

std::uint64_t number(const std::string& flag, const char* text, std::uint64_t max) {
  return cli::number<UsageError>(flag, text, 0, max, "a number up to " + std::to_string(max));
}

}  // namespace

const char* usage() {
  return "usage: sluice-fetch [options] [URL_LIST|-]\n"
         "Fetches every URL of URL_LIST (one per line; '-' or none: stdin; blank lines\n"
         "and blanks around a URL are skipped) and writes one JSON line per URL: index,\n"
         "url, status, bytes, latency_ms, attempts, error.\n"
         "\n"
         "  --concurrency N   transfers in flight (default 64)\n"
         "  --max-pending N   tasks admitted at once, retries included (default: concurrency)\n"
         "  --timeout MS      per attempt (default 10000)\n"
         "  --retries N       extra attempts after a transport error or 5xx (default 0)\n"
         "  --output FILE     JSON lines to FILE instead of stdout\n"
         "  --grace MS        on SIGINT/SIGTERM: time given to transfers in flight (default 2000)\n"
         "  --threads N       worker threads (default: all cores)\n"
         "  --io-threads N    reactor threads, each driving its own share of the\n"
         "                    transfers and connections (default 1)\n"
         "  --quiet           no progress on stderr\n"
         "  --help            this text\n"
         "\n"
         "Exit status: 0 every URL answered below 400, 1 otherwise, 2 usage error,\n"
         "128+N stopped by signal N.\n";
}

Options parse_options(int argc, char** argv) {
  Options o;
  bool max_pending_set = false;
  bool input_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        throw UsageError(arg + ": missing value");
      }
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else if (arg == "--quiet" || arg == "-q") {
      o.quiet = true;
    } else if (arg == "--concurrency") {
      o.concurrency = number(arg, value(), 1'000'000);
    } else if (arg == "--max-pending") {
      // The largest bound a sluice scope counts (ScopeOptions::max_pending).
      o.max_pending = number(arg, value(), 8'388'607);
      max_pending_set = true;
    } else if (arg == "--timeout") {
      o.timeout = std::chrono::milliseconds(number(arg, value(), 86'400'000));
    } else if (arg == "--grace") {
      o.grace = std::chrono::milliseconds(number(arg, value(), 86'400'000));
    } else if (arg == "--retries") {
      o.retries = static_cast<int>(number(arg, value(), 100));
    } else if (arg == "--threads") {
      o.threads = number(arg, value(), 4096);
    } else if (arg == "--io-threads") {
      o.io_threads = number(arg, value(), 256);
    } else if (arg == "--output" || arg == "-o") {
      o.output = value();
    } else if (arg.size() > 1 && arg[0] == '-') {
      throw UsageError("unknown option " + arg);
    } else if (input_set) {
      throw UsageError("only one URL list, got '" + o.input + "' and '" + arg + "'");
    } else {
      o.input = arg;
      input_set = true;
    }
  }
  if (o.concurrency == 0 || o.timeout.count() == 0 || o.io_threads == 0) {
    throw UsageError("--concurrency, --timeout and --io-threads must be at least 1");
  }
  if (!max_pending_set) {
    o.max_pending = o.concurrency;
  }
  if (o.max_pending < o.concurrency) {
    throw UsageError("--max-pending must be at least --concurrency");
  }
  return o;
}

std::uint64_t count_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::uint64_t n = 0;
  bool blank = true;  // the current line has only blanks so far
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    for (std::streamsize k = 0; k < in.gcount(); ++k) {
      const char c = buf[k];
      if (c == '\n') {
        n += blank ? 0 : 1;
        blank = true;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        blank = false;
      }
    }
  }
  return n + (blank ? 0 : 1);  // a last line without a newline counts too
}

}  // namespace fetch
