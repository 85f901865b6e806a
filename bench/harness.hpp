// The benchmark harness: options, timing (warm-up, median, best), VmHWM and
// the one-line output of BENCH.md:
//   bench=spawn impl=sluice variant=co_await_spawn threads=16 n=1000000 reps=5
//   wall_ms=98.1 wall_ms_min=95.0 per_task_ns=98.1 vmhwm_kb=5120
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace bench {

/// What a case needs to know to run once for one thread count.
struct Params {
  std::size_t threads = 1;
  std::uint64_t n = 0;   // the workload's size (its default unless --n)
  bool n_given = false;  // --n was on the command line
  int reps = 5;
  bool slow = false;  // --slow: also run variants skipped by default
};

/// Median and best of the measured runs, in milliseconds.
struct Timing {
  double median_ms = 0;
  double min_ms = 0;
  int reps = 0;
};

using Fields = std::vector<std::pair<std::string, std::string>>;

/// What one case reports; the harness adds bench, impl, variant, threads,
/// reps, wall_ms, wall_ms_min and vmhwm_kb around it.
struct Report {
  std::uint64_t n = 0;
  Timing timing;
  Fields extra;         // workload-specific key=value pairs, in order
  std::string skipped;  // non-empty: the case did not run, and why
};

/// Runs `once` for at least one run and at least 200 ms of warm-up, then
/// `reps` measured runs.
Timing measure(int reps, const std::function<void()>& once);

/// Formats a figure with three significant digits at least (98.1, 4.56, 0.812).
std::string fmt(double v);

/// Throws std::runtime_error(what) unless ok: a workload's self-check.
inline void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("check failed: " + what);
}

/// Resets the peak resident set (VmHWM) of this process; false if unsupported.
bool reset_peak_rss();
/// VmHWM from /proc/self/status, in KiB (0 if unavailable).
std::uint64_t peak_rss_kb();

struct Options {
  std::string workload;
  std::vector<std::size_t> threads;
  std::optional<std::uint64_t> n;
  int reps = 5;
  std::vector<std::string> impls;     // empty: all
  std::vector<std::string> variants;  // empty: all
  std::optional<std::string> json_path;
  bool slow = false;
  bool list = false;
  bool fork = true;     // each case in its own child process
  int timeout_s = 600;  // per case, when forked
};

/// Parses argv; throws std::invalid_argument with a message on bad input.
Options parse_options(int argc, char** argv);
const char* usage();

/// One output line, its fields in BENCH.md order: bench impl variant threads
/// n reps wall_ms wall_ms_min, the workload's own, vmhwm_kb.
Fields make_line(const std::string& bench, const std::string& impl, const std::string& variant,
                 std::size_t threads, const Report& report, std::uint64_t vmhwm_kb);
/// A line for a case that failed: bench impl variant threads n error.
Fields error_line(const std::string& bench, const std::string& impl, const std::string& variant,
                  std::size_t threads, std::uint64_t n, const Fields& tags, std::string error);

std::string to_text(const Fields& line);
Fields parse_line(const std::string& text);
/// Google Benchmark style JSON ("context" and "benchmarks").
std::string to_json(const std::vector<Fields>& lines);

}  // namespace bench
