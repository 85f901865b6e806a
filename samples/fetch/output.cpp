#include "output.hpp"

#include <string_view>

namespace fetch {
namespace {

void json_string(std::FILE* f, std::string_view s) {
  std::fputc('"', f);
  for (const char c : s) {
    switch (c) {
      case '"':
        std::fputs("\\\"", f);
        break;
      case '\\':
        std::fputs("\\\\", f);
        break;
      case '\n':
        std::fputs("\\n", f);
        break;
      case '\r':
        std::fputs("\\r", f);
        break;
      case '\t':
        std::fputs("\\t", f);
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          std::fprintf(f, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          std::fputc(c, f);
        }
    }
  }
  std::fputc('"', f);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Output::Output(const Options& opt)
    : out_(opt.output.empty() ? stdout : std::fopen(opt.output.c_str(), "w")),
      owned_(!opt.output.empty()) {}

Output::~Output() {
  if (owned_ && out_ != nullptr) {
    std::fclose(out_);
  }
}

void Output::write(std::size_t index, const sluice::Result<Outcome>& r) {
  std::fprintf(out_, "{\"index\":%zu,", index);
  const std::string pulled_url = pulled_.take(index);
  if (r.has_value()) {
    const Outcome& o = r.value();
    const auto& resp = o.response;
    std::fputs("\"url\":", out_);
    json_string(out_, o.url);
    std::fprintf(out_, ",\"status\":%ld,\"bytes\":%llu,\"latency_ms\":%.3f,\"attempts\":%d,",
                 resp.status, static_cast<unsigned long long>(resp.bytes),
                 static_cast<double>(resp.latency.count()) / 1000.0, o.attempts);
    std::fputs("\"error\":", out_);
    if (resp.error.empty()) {
      std::fputs("null", out_);
    } else {
      json_string(out_, resp.error);
    }
    bytes_.fetch_add(resp.bytes, std::memory_order_relaxed);
    if (!resp.error.empty() || resp.status >= 400) {
      failed_.fetch_add(1, std::memory_order_relaxed);
    }
  } else {
    // Cancelled (or failed) before an answer: the URL was pulled, so it
    // still gets its line.
    const bool cancelled = r.error() == sluice::errc::cancelled;
    std::fputs("\"url\":", out_);
    json_string(out_, pulled_url);
    std::fputs(",\"status\":0,\"bytes\":0,\"latency_ms\":null,\"attempts\":0,", out_);
    std::fputs("\"error\":", out_);
    json_string(out_, cancelled ? std::string("cancelled") : r.error().message());
    failed_.fetch_add(1, std::memory_order_relaxed);
    if (cancelled) {
      cancelled_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  std::fputs("}\n", out_);
  done_.fetch_add(1, std::memory_order_relaxed);
}

void Output::summary(const sluice::Metrics& m, int signal) const {
  std::fflush(out_);
  const double secs = seconds_since(started_);
  std::fprintf(stderr,
               "sluice-fetch: %llu URLs in %.2f s (%.0f/s), %llu failed or >= 400, %llu "
               "cancelled, %.1f MB%s\n",
               static_cast<unsigned long long>(done()), secs,
               secs > 0 ? static_cast<double>(done()) / secs : 0.0,
               static_cast<unsigned long long>(failed()),
               static_cast<unsigned long long>(cancelled_.load()),
               static_cast<double>(bytes()) / 1e6, signal != 0 ? " (stopped by a signal)" : "");
  std::fprintf(
      stderr,
      "sluice-fetch: runtime: %llu tasks spawned, %llu completed, %llu failed, %llu "
      "cancelled, %llu steals, %zu workers\n",
      static_cast<unsigned long long>(m.spawned), static_cast<unsigned long long>(m.completed),
      static_cast<unsigned long long>(m.failed), static_cast<unsigned long long>(m.cancelled),
      static_cast<unsigned long long>(m.steals), m.workers);
}

Progress::Progress(const Output& out, std::optional<std::uint64_t> total, bool enabled)
    : out_(out), total_(total) {
  if (!enabled) {
    return;
  }
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stopping_; })) {
      draw();
    }
    std::fputs("\r\033[K", stderr);  // erase the line
  });
}

Progress::~Progress() {
  if (!thread_.joinable()) {
    return;
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Progress::draw() const {
  const double secs = seconds_since(started_);
  const auto done = out_.done();
  if (total_) {
    std::fprintf(stderr, "\r\033[K%llu/%llu URLs  %.0f/s  %llu errors",
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(*total_),
                 secs > 0 ? static_cast<double>(done) / secs : 0.0,
                 static_cast<unsigned long long>(out_.failed()));
  } else {
    std::fprintf(stderr, "\r\033[K%llu URLs  %.0f/s  %llu errors",
                 static_cast<unsigned long long>(done),
                 secs > 0 ? static_cast<double>(done) / secs : 0.0,
                 static_cast<unsigned long long>(out_.failed()));
  }
}

}  // namespace fetch
