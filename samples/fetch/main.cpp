// sluice-fetch: fetches a list of URLs with bounded concurrency.
//
//   sluice-fetch [options] [URL_LIST|-]
//
// One JSON line per URL pulled from the list (url, status, bytes, latency,
// error), written as each completes. SIGINT/SIGTERM stop pulling, let the
// transfers in flight finish for --grace, cancel the rest, and still write a
// line for every URL pulled.
#include <sys/stat.h>
#include <unistd.h>

#include <asio/signal_set.hpp>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sluice/sluice.hpp>
#include <string>
#include <thread>

#include "http_client.hpp"
#include "options.hpp"
#include "output.hpp"

using namespace std::chrono_literals;

namespace fetch {
namespace {

// Lines of a stream that may wait for its next line (a pipe, a terminal),
// read ahead on a thread of their own, so that stopping never waits for a
// line that may not come. The thread is detached: it may sit in a read
// until the process exits.
class LineFeed {
 public:
  explicit LineFeed(std::istream& in) : state_(std::make_shared<State>()) {
    std::thread([state = state_, &in] {
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') {
          line.pop_back();
        }
        std::unique_lock lock(state->mutex);
        state->room.wait(lock, [&] { return state->stopped || state->lines.size() < kAhead; });
        if (state->stopped) {
          return;
        }
        state->lines.push_back(std::move(line));
        state->ready.notify_one();
      }
      std::lock_guard lock(state->mutex);
      state->ended = true;
      state->ready.notify_one();
    }).detach();
  }
  ~LineFeed() { stop(); }
  LineFeed(const LineFeed&) = delete;
  LineFeed& operator=(const LineFeed&) = delete;

  /// The next line, waiting for it; nullopt at the end of the input or once
  /// stopped.
  std::optional<std::string> next() {
    std::unique_lock lock(state_->mutex);
    state_->ready.wait(lock,
                       [&] { return state_->stopped || state_->ended || !state_->lines.empty(); });
    if (state_->stopped || state_->lines.empty()) {
      return std::nullopt;
    }
    std::string line = std::move(state_->lines.front());
    state_->lines.pop_front();
    state_->room.notify_one();
    return line;
  }

  /// Ends the feed: next() returns nullopt from now on.
  void stop() {
    std::lock_guard lock(state_->mutex);
    state_->stopped = true;
    state_->ready.notify_all();
    state_->room.notify_all();
  }

 private:
  static constexpr std::size_t kAhead = 1024;  // lines read ahead at most
  struct State {
    std::mutex mutex;
    std::condition_variable ready;  // a line, the end, or stopped
    std::condition_variable room;   // below kAhead lines, or stopped
    std::deque<std::string> lines;  // guarded by mutex
    bool ended = false;             // guarded by mutex
    bool stopped = false;           // guarded by mutex
  };
  std::shared_ptr<State> state_;
};

// The URL list as stream_process's input, until `stop` is set: from a
// LineFeed when there is one, else straight from the stream (a regular
// file never waits).
class StoppableLines {
 public:
  StoppableLines(std::istream& in, LineFeed* feed, const std::atomic<bool>& stop, Pulled& pulled)
      : lines_(in), feed_(feed), stop_(&stop), pulled_(&pulled) {}

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = std::string;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(StoppableLines* owner) : owner_(owner) {}
    // stream_process reads each item once, then starts its task, then
    // advances: the URL is recorded as pulled here, before its result can
    // be written.
    const std::string& operator*() const {
      owner_->pulled_->add(owner_->line_);
      return owner_->line_;
    }
    iterator& operator++() {
      owner_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& i, std::default_sentinel_t) { return i.at_end(); }

   private:
    [[nodiscard]] bool at_end() const {
      return owner_->ended_ || owner_->stop_->load(std::memory_order_acquire);
    }
    StoppableLines* owner_ = nullptr;
  };

  /// Reads the first line; call once.
  iterator begin() {
    if (feed_ == nullptr) {
      it_ = lines_.begin();
    }
    advance(/*first=*/true);
    return iterator(this);
  }
  static std::default_sentinel_t end() noexcept { return {}; }

 private:
  // The next URL: the next line that is not blank, without the blanks
  // around it.
  void advance(bool first = false) {
    for (;;) {
      if (!next_line(first)) {
        ended_ = true;
        return;
      }
      first = false;
      const auto begin = line_.find_first_not_of(" \t");
      if (begin != std::string::npos) {
        line_.erase(line_.find_last_not_of(" \t") + 1);
        line_.erase(0, begin);
        return;
      }
    }
  }

  bool next_line(bool first) {
    if (feed_ != nullptr) {
      auto line = feed_->next();
      if (!line) {
        return false;
      }
      line_ = std::move(*line);
      return true;
    }
    if (!first) {
      ++it_;
    }
    if (it_ == std::default_sentinel) {
      return false;
    }
    line_ = *it_;
    return true;
  }

  sluice::LineRange lines_;
  sluice::LineRange::iterator it_;
  LineFeed* feed_;
  const std::atomic<bool>* stop_;
  Pulled* pulled_;
  std::string line_;
  bool ended_ = false;
};

bool retryable(const Response& r) {
  return (!r.error.empty() && r.error.find("URL") == std::string::npos &&
          r.error.find("Unsupported protocol") == std::string::npos &&
          r.error.find("not supported") == std::string::npos) ||
         r.status >= 500;
}

sluice::Task<void> backoff(int attempt) {
  co_await sluice::sleep_for(std::chrono::milliseconds(100) * (1 << std::min(attempt, 6)));
}

sluice::Task<Outcome> fetch_one(HttpClients& clients, const Options& opt, std::string url) {
  Outcome out{std::move(url), {}, 0};
  for (int attempt = 0;; ++attempt) {
    out.response = co_await clients.next().get(out.url, opt.timeout);
    out.attempts = attempt + 1;
    if (attempt >= opt.retries || !retryable(out.response)) {
      co_return out;
    }
    co_await backoff(attempt);
  }
}

// Waits for a signal; then stops pulling, and after the grace cancels. When
// the run ends first, its cancellation is the normal end of this task.
sluice::Task<void> on_signal(asio::signal_set& signals, std::atomic<bool>& stop_pulling,
                             LineFeed* feed, std::atomic<int>& got, sluice::Scope& fetching,
                             std::chrono::milliseconds grace) {
  try {
    got = co_await signals.async_wait(sluice::use_task);
    stop_pulling.store(true, std::memory_order_release);
    if (feed != nullptr) {
      feed->stop();  // the list's reader may be waiting for a line
    }
    co_await sluice::sleep_for(grace);
    fetching.request_stop();
  } catch (const sluice::cancelled_error&) {
  }
}

// Output to a file or a pipe is fully buffered: hand it over every 200 ms,
// so a reader of the file sees lines as they come and a killed run loses
// little. Ends when cancelled.
sluice::Task<void> flush_often(Output& output) {
  try {
    for (;;) {
      co_await sluice::sleep_for(200ms);
      output.flush();
    }
  } catch (const sluice::cancelled_error&) {
  }
}

sluice::Task<void> run(sluice::Runtime& rt, const Options& opt, std::istream& input, LineFeed* feed,
                       Output& output, asio::signal_set& signals, std::atomic<int>& got) {
  HttpClients clients(rt, opt.io_threads, opt.concurrency);
  sluice::Scope fetching(rt, sluice::ScopeOptions{.max_pending = opt.max_pending, .name = "fetch"});
  sluice::Scope control(rt);
  std::atomic<bool> stop_pulling{false};
  auto watcher =
      control.spawn_with_handle(on_signal(signals, stop_pulling, feed, got, fetching, opt.grace));
  auto flusher = control.spawn_with_handle(flush_often(output));
  co_await fetching.stream_process(
      StoppableLines(input, feed, stop_pulling, output.pulled()), opt.concurrency,
      [&](std::string url) { return fetch_one(clients, opt, std::move(url)); },
      [&](std::size_t index, sluice::Result<Outcome> r) { output.write(index, r); });
  watcher.cancel();
  flusher.cancel();
  co_await control.join();
}

}  // namespace
}  // namespace fetch

int main(int argc, char** argv) {
  using namespace fetch;
  std::optional<Options> opt;
  try {
    opt = parse_options(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "sluice-fetch: %s\nTry 'sluice-fetch --help'.\n", e.what());
    return 2;
  }
  if (opt->help) {
    std::fputs(usage(), stdout);
    return 0;
  }
  std::ifstream file;
  std::istream* input = &std::cin;
  std::optional<std::uint64_t> total;
  if (opt->input != "-") {
    file.open(opt->input);
    if (!file) {
      std::fprintf(stderr, "sluice-fetch: %s: cannot open the URL list\n", opt->input.c_str());
      return 2;
    }
    total = count_lines(opt->input);
    input = &file;
  }
  // A list on a pipe or a terminal may wait for its next line: read it on a
  // thread of its own (see LineFeed). A regular file is read in place.
  std::optional<LineFeed> feed;
  if (struct stat st{};
      input == &std::cin && (::fstat(STDIN_FILENO, &st) != 0 || !S_ISREG(st.st_mode))) {
    feed.emplace(std::cin);
  }
  Output output(*opt);
  if (!output.ok()) {
    std::fprintf(stderr, "sluice-fetch: %s: cannot open for writing\n", opt->output.c_str());
    return 2;
  }
  sluice::Runtime rt(sluice::Config{.threads = opt->threads, .io_threads = opt->io_threads});
  asio::signal_set signals(rt.io_context(), SIGINT, SIGTERM);
  std::atomic<int> got{0};
  {
    Progress progress(output, total, opt->show_progress());
    rt.block_on(run(rt, *opt, *input, feed ? &*feed : nullptr, output, signals, got));
  }
  output.summary(rt.metrics(), got.load());
  if (got.load() != 0) {
    return 128 + got.load();
  }
  return output.all_ok() ? 0 : 1;
}
