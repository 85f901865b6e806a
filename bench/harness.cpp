#include "harness.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    auto comma = s.find(',');
    out.emplace_back(s.substr(0, comma));
    s = comma == s.npos ? std::string_view{} : s.substr(comma + 1);
  }
  return out;
}

std::uint64_t to_number(std::string_view s, std::string_view what) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size())
    throw std::invalid_argument("bad number for " + std::string(what) + ": '" + std::string(s) +
                                "'");
  return v;
}

bool is_number(const std::string& s) {
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return !s.empty() && ec == std::errc{} && end == s.data() + s.size();
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

}  // namespace

Timing measure(int reps, const std::function<void()>& once) {
  auto warm_start = Clock::now();
  do once();
  while (elapsed_ms(warm_start) < 200.0);

  std::vector<double> runs;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    once();
    runs.push_back(elapsed_ms(t0));
  }
  std::sort(runs.begin(), runs.end());
  auto mid = runs.size() / 2;
  double median = runs.size() % 2 ? runs[mid] : (runs[mid - 1] + runs[mid]) / 2;
  return {median, runs.front(), reps};
}

std::string fmt(double v) {
  char buf[64];
  int decimals = v >= 10 ? 1 : v >= 1 ? 2 : 3;
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  return f && (f << "5") && f.flush();
}

std::uint64_t peak_rss_kb() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  return 0;
}

const char* usage() {
  return "usage: sluice_bench WORKLOAD [options]\n"
         "  WORKLOAD   spawn | spawn10k | bounded | unbounded_memory | microjobs | fib | idle | "
         "all\n"
         "  --threads N[,N...]  worker threads, looped over (default: all cores)\n"
         "  --n N       size: tasks (spawn), jobs (microjobs), fib argument (fib),\n"
         "              latency samples (idle)\n"
         "  --reps N    measured runs after warm-up (default 5)\n"
         "  --impl L    comma list filter: sluice, asio, tbb, seq\n"
         "  --variant L comma list filter on variant names\n"
         "  --slow      also run slow variants skipped by default (asio fib cutoff=0)\n"
         "  --json PATH also write Google Benchmark style JSON to PATH\n"
         "  --timeout S kill a case's process after S seconds (default 600)\n"
         "  --no-fork   run every case in this process (VmHWM is then shared)\n"
         "  --list      list the cases and exit\n";
}

Options parse_options(int argc, char** argv) {
  Options o;
  if (argc < 2) throw std::invalid_argument("missing workload");
  o.workload = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw std::invalid_argument("missing value for " + std::string(arg));
      return argv[++i];
    };
    if (arg == "--threads") {
      for (auto& t : split(value())) o.threads.push_back(to_number(t, "--threads"));
    } else if (arg == "--n") {
      o.n = to_number(value(), "--n");
    } else if (arg == "--reps") {
      o.reps = static_cast<int>(to_number(value(), "--reps"));
    } else if (arg == "--impl") {
      o.impls = split(value());
    } else if (arg == "--variant") {
      o.variants = split(value());
    } else if (arg == "--json") {
      o.json_path = std::string(value());
    } else if (arg == "--slow") {
      o.slow = true;
    } else if (arg == "--timeout") {
      o.timeout_s = static_cast<int>(to_number(value(), "--timeout"));
    } else if (arg == "--no-fork") {
      o.fork = false;
    } else if (arg == "--list") {
      o.list = true;
    } else {
      throw std::invalid_argument("unknown option " + std::string(arg));
    }
  }
  if (o.threads.empty()) o.threads.push_back(std::max(1u, std::thread::hardware_concurrency()));
  if (o.reps < 1) throw std::invalid_argument("--reps must be at least 1");
  for (auto t : o.threads)
    if (t == 0) throw std::invalid_argument("--threads must be at least 1");
  return o;
}

Fields make_line(const std::string& bench, const std::string& impl, const std::string& variant,
                 std::size_t threads, const Report& report, std::uint64_t vmhwm_kb) {
  Fields f{{"bench", bench},
           {"impl", impl},
           {"variant", variant},
           {"threads", std::to_string(threads)},
           {"n", std::to_string(report.n)}};
  if (!report.skipped.empty()) {
    f.insert(f.end(), report.extra.begin(), report.extra.end());
    f.emplace_back("skipped", report.skipped);
    return f;
  }
  f.emplace_back("reps", std::to_string(report.timing.reps));
  f.emplace_back("wall_ms", fmt(report.timing.median_ms));
  f.emplace_back("wall_ms_min", fmt(report.timing.min_ms));
  f.insert(f.end(), report.extra.begin(), report.extra.end());
  f.emplace_back("vmhwm_kb", std::to_string(vmhwm_kb));
  return f;
}

Fields error_line(const std::string& bench, const std::string& impl, const std::string& variant,
                  std::size_t threads, std::uint64_t n, const Fields& tags, std::string error) {
  std::replace(error.begin(), error.end(), ' ', '_');
  Fields f{{"bench", bench},
           {"impl", impl},
           {"variant", variant},
           {"threads", std::to_string(threads)},
           {"n", std::to_string(n)}};
  f.insert(f.end(), tags.begin(), tags.end());
  f.emplace_back("error", error);
  return f;
}

std::string to_text(const Fields& line) {
  std::string out;
  for (auto& [k, v] : line) out += (out.empty() ? "" : " ") + k + '=' + v;
  return out;
}

Fields parse_line(const std::string& text) {
  Fields f;
  std::istringstream in(text);
  for (std::string word; in >> word;) {
    auto eq = word.find('=');
    if (eq != word.npos) f.emplace_back(word.substr(0, eq), word.substr(eq + 1));
  }
  return f;
}

std::string to_json(const std::vector<Fields>& lines) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  char date[64];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%FT%T%z", std::localtime(&now));

  std::ostringstream out;
  out << "{\n  \"context\": {\"date\": " << json_string(date)
      << ", \"host_name\": " << json_string(host)
      << ", \"num_cpus\": " << std::thread::hardware_concurrency()
      << ", \"executable\": \"sluice_bench\"},\n  \"benchmarks\": [";
  const char* sep = "\n";
  for (auto& line : lines) {
    auto get = [&](const char* key) -> std::string {
      for (auto& [k, v] : line)
        if (k == key) return v;
      return "";
    };
    out << sep << "    {\"name\": "
        << json_string(get("bench") + '/' + get("impl") + '/' + get("variant") +
                       "/threads:" + get("threads"));
    if (auto wall = get("wall_ms"); !wall.empty())
      out << ", \"run_type\": \"aggregate\", \"aggregate_name\": \"median\", \"real_time\": "
          << wall << ", \"time_unit\": \"ms\"";
    for (auto& [k, v] : line)
      out << ", " << json_string(k) << ": " << (is_number(v) ? v : json_string(v));
    out << '}';
    sep = ",\n";
  }
  out << "\n  ]\n}\n";
  return out.str();
}

}  // namespace bench
