#include "output.hpp"

#include <string_view>

namespace fetch {
namespace {

// Length of the well-formed UTF-8 sequence at the start of `s`, or 0.
std::size_t utf8_sequence(std::string_view s) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned lead = byte(0);
  std::size_t n = 0;
  unsigned lo = 0x80;
  unsigned hi = 0xBF;  // range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    lo = lead == 0xE0 ? 0xA0 : 0x80;  // no overlong forms
    hi = lead == 0xED ? 0x9F : 0xBF;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    lo = lead == 0xF0 ? 0x90 : 0x80;
    hi = lead == 0xF4 ? 0x8F : 0xBF;  // at most U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < n || byte(1) < lo || byte(1) > hi) {
    return 0;
  }
  for (std::size_t i = 2; i < n; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) {
      return 0;
    }
  }
  return n;
}

// A JSON string: escapes what JSON requires, and writes each byte that is
// not part of well-formed UTF-8 as U+FFFD, so every line stays valid JSON.
void json_string(std::FILE* f, std::string_view s) {
  std::fputc('"', f);
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      const std::size_t n = utf8_sequence(s.substr(i));
      if (n == 0) {
        std::fputs("\\ufffd", f);
        ++i;
      } else {
        std::fwrite(s.data() + i, 1, n, f);
        i += n;
      }
      continue;
    }
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
    ++i;
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
