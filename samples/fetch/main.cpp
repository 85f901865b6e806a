// sluice-fetch: fetches a list of URLs with bounded concurrency.
//
//   sluice-fetch [options] [URL_LIST|-]
//
// One JSON line per URL pulled from the list (url, status, bytes, latency,
// error), written as each completes. SIGINT/SIGTERM stop pulling, let the
// transfers in flight finish for --grace, cancel the rest, and still write a
// line for every URL pulled.
#include <unistd.h>

#include <asio/signal_set.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
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

// Lines of a stream until `stop` is set: ending the input ends the pulling.
class StoppableLines {
 public:
  StoppableLines(std::istream& in, const std::atomic<bool>& stop, Pulled& pulled)
      : lines_(in), stop_(&stop), pulled_(&pulled) {}

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = std::string;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(sluice::LineRange::iterator it, const std::atomic<bool>* stop, Pulled* pulled)
        : it_(it), stop_(stop), pulled_(pulled) {}
    const std::string& operator*() const { return *it_; }
    iterator& operator++() {
      pulled_->add(*it_);  // stream_process takes *it, then advances: once per item
      ++it_;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& i, std::default_sentinel_t s) {
      return i.it_ == s || i.stop_->load(std::memory_order_acquire);
    }

   private:
    sluice::LineRange::iterator it_;
    const std::atomic<bool>* stop_ = nullptr;
    Pulled* pulled_ = nullptr;
  };

  iterator begin() { return {lines_.begin(), stop_, pulled_}; }
  static std::default_sentinel_t end() noexcept { return {}; }

 private:
  sluice::LineRange lines_;
  const std::atomic<bool>* stop_;
  Pulled* pulled_;
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
                             std::atomic<int>& got, sluice::Scope& fetching,
                             std::chrono::milliseconds grace) {
  try {
    got = co_await signals.async_wait(sluice::use_task);
    stop_pulling.store(true, std::memory_order_release);
    co_await sluice::sleep_for(grace);
    fetching.request_stop();
  } catch (const sluice::cancelled_error&) {
  }
}

sluice::Task<void> run(sluice::Runtime& rt, const Options& opt, std::istream& input, Output& output,
                       asio::signal_set& signals, std::atomic<int>& got) {
  HttpClients clients(rt, opt.io_threads, opt.concurrency);
  sluice::Scope fetching(rt, sluice::ScopeOptions{.max_pending = opt.max_pending, .name = "fetch"});
  sluice::Scope control(rt);
  std::atomic<bool> stop_pulling{false};
  auto watcher =
      control.spawn_with_handle(on_signal(signals, stop_pulling, got, fetching, opt.grace));
  co_await fetching.stream_process(
      StoppableLines(input, stop_pulling, output.pulled()), opt.concurrency,
      [&](std::string url) { return fetch_one(clients, opt, std::move(url)); },
      [&](std::size_t index, sluice::Result<Outcome> r) { output.write(index, r); });
  watcher.cancel();
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
    rt.block_on(run(rt, *opt, *input, output, signals, got));
  }
  output.summary(rt.metrics(), got.load());
  if (got.load() != 0) {
    return 128 + got.load();
  }
  return output.all_ok() ? 0 : 1;
}
