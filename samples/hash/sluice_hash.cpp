// sluice-hash: SHA-256 of many files, printed exactly as sha256sum prints
// them.
//
//   sluice-hash [options] [PATH|-]...
//
// Files are read through sluice::File (io_uring on the runtime's reactor,
// or the blocking fallback) and hashed on the pool with OpenSSL, up to
// --concurrency files at once. Lines come out in input order: a window of at
// most --max-pending started files is kept, and the oldest is printed as
// soon as it is done, so memory stays bounded whatever the input's size.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <optional>
#include <sluice/file.hpp>
#include <sluice/sluice.hpp>
#include <span>
#include <string>
#include <system_error>

#include "inputs.hpp"
#include "options.hpp"
#include "report.hpp"
#include "sha256.hpp"

namespace hash {
namespace {

// Every read is a round trip through the reactor and back to the pool, so
// large reads pay (on 1 GB: 0.58 s with 128 KiB, 0.49 s with 1 MiB); the
// cost is one buffer per file in flight (--concurrency MiB).
constexpr std::size_t kChunk = 1024 * 1024;

sluice::Task<Digest> hash_file(sluice::Runtime& rt, std::string path, Report& report) {
  Sha256 sha;
  co_await sluice::read_file_chunks(rt, std::move(path), kChunk,
                                    [&](std::span<const std::byte> chunk) {
                                      sha.update(chunk);
                                      report.add_bytes(chunk.size());
                                    });
  co_return sha.finish();
}

// A file started (or a path that already failed), waiting for its turn to be
// printed.
struct Started {
  std::string path;
  std::error_code error;  // set: report this instead of a checksum
  sluice::JoinHandle<Digest> hashing;
};

// sha256sum's words for why a file could not be hashed: strerror's text.
std::string describe(const sluice::Result<Digest>& r) {
  if (!r.exception()) {
    return r.error().message();
  }
  try {
    std::rethrow_exception(r.exception());
  } catch (const std::system_error& e) {
    return e.code().message();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return r.error().message();
  }
}

sluice::Task<void> print_oldest(std::deque<Started>& window, Report& report) {
  Started oldest = std::move(window.front());
  window.pop_front();
  if (oldest.error) {
    report.error(oldest.path, oldest.error.message());
    co_return;
  }
  const sluice::Result<Digest> r = co_await oldest.hashing.result();
  if (r.has_value()) {
    report.checksum(r.value(), oldest.path);
  } else {
    report.error(oldest.path, describe(r));
  }
}

sluice::Task<void> hash_all(sluice::Runtime& rt, const Options& opt, Inputs& inputs,
                            Report& report) {
  // The scope's bound is the backpressure: spawn() suspends this loop while
  // --concurrency files are being hashed.
  sluice::Scope hashing(rt, sluice::ScopeOptions{.max_pending = opt.concurrency, .name = "hash"});
  std::deque<Started> window;
  std::exception_ptr failure;
  try {
    while (std::optional<Item> item = inputs.next()) {
      if (window.size() == opt.max_pending) {
        co_await print_oldest(window, report);
      }
      Started started{std::move(item->path), item->error, {}};
      if (!started.error) {
        started.hashing = co_await hashing.spawn(hash_file(rt, started.path, report));
      }
      window.push_back(std::move(started));
    }
    while (!window.empty()) {
      co_await print_oldest(window, report);
    }
  } catch (...) {  // not a file's error (those are printed): out of memory, say
    failure = std::current_exception();
    hashing.request_stop();
  }
  // A scope is left only once its children are done, even on failure.
  co_await hashing.join();
  if (failure) {
    std::rethrow_exception(failure);
  }
}

}  // namespace
}  // namespace hash

int main(int argc, char** argv) {
  using namespace hash;
  std::optional<Options> opt;
  try {
    opt = parse_options(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "sluice-hash: %s\nTry 'sluice-hash --help'.\n", e.what());
    return 2;
  }
  if (opt->help) {
    std::fputs(usage(), stdout);
    return 0;
  }
  if (const auto message = Inputs::unreadable_list(opt->inputs)) {
    std::fprintf(stderr, "sluice-hash: %s\n", message->c_str());
    return 2;
  }
  sluice::Runtime rt(sluice::Config{.threads = opt->threads});
  Inputs inputs(opt->inputs);
  Report report(opt->show_progress(),
                opt->show_progress() ? Inputs::count(opt->inputs) : std::nullopt);
  try {
    rt.block_on(hash_all(rt, *opt, inputs, report));
  } catch (const std::exception& e) {
    report.stop_progress();
    std::fprintf(stderr, "sluice-hash: %s\n", e.what());
    return 1;
  }
  if (report.write_failed()) {
    std::fprintf(stderr, "sluice-hash: write error: %s\n", std::strerror(errno));
    return 1;
  }
  return report.any_error() ? 1 : 0;
}
