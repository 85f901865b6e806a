// sluice::File and read_file_chunks, on io_uring and on the blocking
// fallback. ctest also runs this binary once more with
// SLUICE_DISABLE_IO_URING=1, where `automatic` must mean the fallback.
#include "sluice/file.hpp"

#include <fcntl.h>
#include <liburing.h>
#include <linux/capability.h>
#include <signal.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "deadline.hpp"
#include "file_fixtures.hpp"
#include "io/blocking_pool.hpp"
#include "io/io_uring_probe.hpp"
#include "log.hpp"
#include "outcome.hpp"
#include "seccomp_no_io_uring.hpp"
#include "sluice/sluice.hpp"

using namespace std::chrono_literals;
using sluice::File;
using sluice::Task;
using sluice::detail::FileBackend;
using sluice::test::disabled_by_environment;
using sluice::test::expect_io_uring;
using sluice::test::ForceBackend;
using sluice::test::kernel_allows_io_uring;
using sluice::test::name;
using sluice::test::outcome;
using sluice::test::pattern;
using sluice::test::TempDir;
using sluice::test::WithoutFileCapabilities;
namespace fs = std::filesystem;

namespace {

sluice::Config workers(std::size_t n) { return sluice::Config{.threads = n}; }

struct ChunkLog {
  std::vector<std::byte> bytes;
  std::size_t calls = 0;
  std::size_t largest = 0;
  bool empty_chunk = false;
};

Task<std::uint64_t> read_all(sluice::Runtime& rt, fs::path path, std::size_t chunk, ChunkLog& log) {
  return sluice::read_file_chunks(rt, std::move(path), chunk, [&log](std::span<const std::byte> c) {
    log.bytes.insert(log.bytes.end(), c.begin(), c.end());
    ++log.calls;
    log.largest = std::max(log.largest, c.size());
    log.empty_chunk = log.empty_chunk || c.empty();
  });
}

Task<bool> opens_on_io_uring(sluice::Runtime& rt, fs::path path) {
  File f = co_await File::open(rt, std::move(path));
  co_return f.uses_io_uring();
}

struct ReadAt {
  std::uint64_t offset;
  std::size_t length;
  std::vector<std::byte> got;
};

Task<void> read_at_offsets(sluice::Runtime& rt, fs::path path, std::vector<ReadAt>& reads) {
  File f = co_await File::open(rt, std::move(path));
  for (auto& r : reads) {
    r.got.resize(r.length);
    const std::size_t n = co_await f.read_some_at(r.offset, r.got);
    r.got.resize(n);
  }
}

// The error File::open throws for `path`, or a default error_code.
Task<std::error_code> open_error(sluice::Runtime& rt, fs::path path, std::string& what) {
  try {
    File f = co_await File::open(rt, std::move(path));
  } catch (const std::system_error& e) {
    what = e.what();
    co_return e.code();
  }
  co_return std::error_code();
}

}  // namespace

TEST_CASE("read_file_chunks reads files back byte for byte on every backend", "[file]") {
  const auto backend =
      GENERATE(FileBackend::io_uring, FileBackend::blocking, FileBackend::automatic);
  const std::size_t size = GENERATE(std::size_t{0}, std::size_t{1}, std::size_t{100 * 1024},
                                    std::size_t{5 * 1024 * 1024});
  CAPTURE(name(backend), size);
  TempDir dir;
  const auto data = pattern(size, size + 1);
  const auto path = dir.write("data.bin", data);
  ForceBackend force(backend);
  sluice::Runtime rt(workers(2));

  CHECK(rt.block_on(opens_on_io_uring(rt, path)) == expect_io_uring(backend));
  constexpr std::size_t kChunk = 64 * 1024;
  ChunkLog log;
  CHECK(rt.block_on(read_all(rt, path, kChunk, log)) == size);
  CHECK(log.bytes == data);
  CHECK(log.calls == (size + kChunk - 1) / kChunk);
  CHECK(log.largest <= kChunk);
  CHECK_FALSE(log.empty_chunk);
}

namespace {

// Reads `path` in 64 KiB chunks, appending `extra` to the file after the
// first chunk: the reader must go on past the size it saw at open.
Task<std::uint64_t> read_while_growing(sluice::Runtime& rt, fs::path path,
                                       const std::vector<std::byte>& extra, ChunkLog& log) {
  // Everything the callback keeps is captured by value or refers to the
  // caller's objects: this function returns before the task runs.
  auto on_chunk = [&log, &extra, path, grown = false](std::span<const std::byte> c) mutable {
    log.bytes.insert(log.bytes.end(), c.begin(), c.end());
    ++log.calls;
    if (!grown) {
      std::ofstream out(path, std::ios::binary | std::ios::app);
      out.write(reinterpret_cast<const char*>(extra.data()),
                static_cast<std::streamsize>(extra.size()));
      grown = true;
    }
  };
  return sluice::read_file_chunks(rt, std::move(path), 64 * 1024, std::move(on_chunk));
}

}  // namespace

TEST_CASE("read_file_chunks reads on when the file grows while it reads", "[file]") {
  const auto backend = GENERATE(FileBackend::io_uring, FileBackend::blocking);
  CAPTURE(name(backend));
  TempDir dir;
  auto data = pattern(100 * 1024, 21);
  const auto path = dir.write("growing.bin", data);
  const auto extra = pattern(10 * 1024, 22);
  ForceBackend force(backend);
  sluice::Runtime rt(workers(2));
  ChunkLog log;
  CHECK(rt.block_on(read_while_growing(rt, path, extra, log)) == data.size() + extra.size());
  data.insert(data.end(), extra.begin(), extra.end());
  CHECK(log.bytes == data);
}

namespace {

// A child that maps 128 separate regions, says so through a pipe and then
// sleeps: its /proc/PID/maps is long and stays the same.
class IdleChild {
 public:
  IdleChild() {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {  // only system calls from here: the parent has threads
      constexpr std::size_t kPage = 4096;
      constexpr std::size_t kPages = 256;
      void* base = ::mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base != MAP_FAILED) {
        for (std::size_t i = 0; i < kPages; i += 2) {  // alternate: one region each
          ::mprotect(static_cast<char*>(base) + i * kPage, kPage, PROT_READ);
        }
      }
      const char done = 1;
      (void)!::write(ready[1], &done, 1);
      for (;;) {
        ::pause();
      }
    }
    ::close(ready[1]);
    char done = 0;
    const ssize_t n = ::read(ready[0], &done, 1);
    ::close(ready[0]);
    REQUIRE(n == 1);
  }
  IdleChild(const IdleChild&) = delete;
  IdleChild& operator=(const IdleChild&) = delete;
  ~IdleChild() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  [[nodiscard]] fs::path proc(const char* name) const {
    return fs::path("/proc") / std::to_string(pid_) / name;
  }

 private:
  pid_t pid_ = 0;
};

}  // namespace

TEST_CASE("read_file_chunks reads a pseudo-file that reports size 0 to its end", "[file]") {
  IdleChild child;
  const fs::path maps = child.proc("maps");
  std::ifstream in(maps, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(text.size() > 3 * 4096);
  // procfs reports size 0 and hands this file out in reads that come back
  // short before its end: only a read of 0 bytes may end it.
  REQUIRE(fs::file_size(maps) == 0);
  sluice::Runtime rt(workers(2));
  ChunkLog log;
  CHECK(rt.block_on(read_all(rt, maps, 64 * 1024, log)) == text.size());
  CHECK(std::string(reinterpret_cast<const char*>(log.bytes.data()), log.bytes.size()) == text);
  CHECK(log.calls > 3);
}

TEST_CASE("read_some_at reads at any offset, short at the end and 0 past it", "[file]") {
  const auto backend = GENERATE(FileBackend::io_uring, FileBackend::blocking);
  CAPTURE(name(backend));
  TempDir dir;
  const std::size_t size = 100 * 1024 + 13;
  const auto data = pattern(size, 7);
  const auto path = dir.write("data.bin", data);
  ForceBackend force(backend);
  sluice::Runtime rt(workers(2));

  std::vector<ReadAt> reads{{0, 8192, {}},         {4095, 8192, {}},      {size / 2, 8192, {}},
                            {size - 1, 8192, {}},  {size - 100, 100, {}}, {size, 8192, {}},
                            {size + 1000, 16, {}}, {123, 0, {}}};
  rt.block_on(read_at_offsets(rt, path, reads));
  for (const auto& r : reads) {
    CAPTURE(r.offset, r.length);
    const std::size_t expect =
        r.offset >= size ? 0 : std::min<std::size_t>(r.length, size - r.offset);
    REQUIRE(r.got.size() == expect);
    CHECK(std::equal(
        r.got.begin(), r.got.end(),
        data.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(r.offset, size))));
  }
}

TEST_CASE("File::open reports a missing path, a directory and a bad component by name", "[file]") {
  TempDir dir;
  const auto file = dir.write("plain", pattern(10, 1));
  ::mkfifo((dir.path() / "fifo").c_str(), 0600);
  sluice::Runtime rt(workers(2));
  struct Case {
    fs::path path;
    std::errc code;
  };
  const std::vector<Case> cases{
      {dir.path() / "does-not-exist", std::errc::no_such_file_or_directory},
      {dir.path(), std::errc::is_a_directory},
      {file / "child", std::errc::not_a_directory},
      {dir.path() / "fifo", std::errc::invalid_seek},
  };
  for (const auto& c : cases) {
    CAPTURE(c.path);
    std::string what;
    const std::error_code ec = rt.block_on(open_error(rt, c.path, what));
    CHECK(ec == c.code);
    CHECK(what.find(c.path.string()) != std::string::npos);
  }
}

TEST_CASE("File::open reports an unreadable file as permission denied", "[file]") {
  TempDir dir;
  const auto path = dir.write("secret", pattern(100, 3));
  REQUIRE(::chmod(path.c_str(), 0) == 0);
  WithoutFileCapabilities caps;
  // Whoever runs this (root or not), the file must now really be unreadable
  // to this thread and the runtime's threads started below.
  const int probe = ::open(path.c_str(), O_RDONLY);
  if (probe >= 0) {
    ::close(probe);
  }
  REQUIRE(probe < 0);
  REQUIRE(errno == EACCES);
  sluice::Runtime rt(workers(2));
  std::string what;
  CHECK(rt.block_on(open_error(rt, path, what)) == std::errc::permission_denied);
  CHECK(what.find(path.string()) != std::string::npos);
}

namespace {

Task<std::size_t> read_after_stop(sluice::Runtime& rt, fs::path path, std::atomic<bool>& opened) {
  File f = co_await File::open(rt, std::move(path));
  const std::stop_token token = co_await sluice::this_task::stop_token();
  opened.store(true);
  while (!token.stop_requested()) {  // blocks one worker: fine in a test
    std::this_thread::sleep_for(1ms);
  }
  std::array<std::byte, 16> buf{};
  co_return co_await f.read_some_at(0, buf);
}

Task<std::size_t> read_once(sluice::Runtime& rt, fs::path path, std::atomic<bool>& reading) {
  File f = co_await File::open(rt, std::move(path));
  std::array<std::byte, 16> buf{};
  reading.store(true);
  co_return co_await f.read_some_at(0, buf);
}

// Occupies every blocking-pool thread until release() or the end of scope,
// which waits for them to be free again.
class BusyBlockingPool {
 public:
  static constexpr int kThreads = static_cast<int>(sluice::detail::BlockingPool::kThreads);

  BusyBlockingPool() {
    for (auto& job : jobs_) {
      job.owner = this;
      job.run = [](sluice::detail::BlockingJob* base) noexcept {
        auto* owner = static_cast<Job*>(base)->owner;
        owner->started_.fetch_add(1);
        while (!owner->release_.load()) {
          std::this_thread::sleep_for(1ms);
        }
        owner->finished_.fetch_add(1);
      };
      const bool queued = sluice::detail::BlockingPool::instance().submit(&job);
      CHECK(queued);  // no `stopped` hook: always queued
    }
  }
  BusyBlockingPool(const BusyBlockingPool&) = delete;
  BusyBlockingPool& operator=(const BusyBlockingPool&) = delete;
  ~BusyBlockingPool() {
    release();
    while (finished_.load() < kThreads) {
      std::this_thread::sleep_for(1ms);
    }
  }

  bool all_started() {
    return sluice::test::eventually([this] { return started_.load() == kThreads; });
  }
  int finished() const { return finished_.load(); }
  void release() { release_.store(true); }

 private:
  struct Job : sluice::detail::BlockingJob {
    BusyBlockingPool* owner = nullptr;
  };
  std::array<Job, sluice::detail::BlockingPool::kThreads> jobs_{};
  std::atomic<int> started_{0};
  std::atomic<int> finished_{0};
  std::atomic<bool> release_{false};
};

}  // namespace

TEST_CASE("a read started after cancel throws cancelled_error on every backend", "[file]") {
  const auto backend = GENERATE(FileBackend::io_uring, FileBackend::blocking);
  CAPTURE(name(backend));
  TempDir dir;
  const auto path = dir.write("data.bin", pattern(4096, 5));
  ForceBackend force(backend);
  sluice::Runtime rt(workers(2));
  sluice::Scope scope(rt);
  std::atomic<bool> opened{false};
  auto h = scope.spawn_with_handle(read_after_stop(rt, path, opened));
  REQUIRE(sluice::test::eventually([&] { return opened.load(); }));
  h.cancel();
  CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
  rt.block_on(scope.join());
}

TEST_CASE("cancelling a task whose fallback read is queued ends it without waiting", "[file]") {
  TempDir dir;
  const auto path = dir.write("data.bin", pattern(4096, 6));
  ForceBackend force(FileBackend::blocking);
  sluice::Runtime rt(workers(2));

  // Every blocking thread busy: the read below can only wait in the queue.
  BusyBlockingPool busy;
  REQUIRE(busy.all_started());

  sluice::Scope scope(rt);
  std::atomic<bool> reading{false};
  auto h = scope.spawn_with_handle(read_once(rt, path, reading));
  REQUIRE(sluice::test::eventually([&] { return reading.load(); }));
  std::this_thread::sleep_for(20ms);  // the read is queued behind the blockers
  CHECK_FALSE(h.done());
  h.cancel();
  const bool ended = sluice::test::eventually([&] { return h.done(); }, 5s);
  CHECK(busy.finished() == 0);  // it did not wait for a thread
  busy.release();
  REQUIRE(ended);
  CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
  rt.block_on(scope.join());
}

namespace {

Task<std::uint64_t> sum_file(sluice::Runtime& rt, fs::path path) {
  std::uint64_t sum = 0;
  co_await sluice::read_file_chunks(rt, std::move(path), 4096, [&](std::span<const std::byte> c) {
    for (const std::byte b : c) {
      sum = sum * 31 + static_cast<std::uint64_t>(b);
    }
  });
  co_return sum;
}

Task<std::vector<std::uint64_t>> sum_files(sluice::Runtime& rt, std::vector<fs::path> paths) {
  sluice::Scope scope(rt, {.max_pending = 16});
  std::vector<sluice::JoinHandle<std::uint64_t>> handles;
  for (const auto& p : paths) {
    handles.push_back(co_await scope.spawn(sum_file(rt, p)));
  }
  std::vector<std::uint64_t> sums;
  for (auto& h : handles) {
    sums.push_back(co_await h);
  }
  co_await scope.join();
  co_return sums;
}

}  // namespace

TEST_CASE("a blocking job whose waiter stopped is not queued", "[file]") {
  struct Job : sluice::detail::BlockingJob {
    std::atomic<bool> stop{false};
    std::atomic<int> ran{0};
  };
  Job job;
  job.run = [](sluice::detail::BlockingJob* base) noexcept {
    static_cast<Job*>(base)->ran.fetch_add(1);
  };
  job.stopped = [](const sluice::detail::BlockingJob* base) noexcept {
    return static_cast<const Job*>(base)->stop.load();
  };
  auto& pool = sluice::detail::BlockingPool::instance();
  job.stop.store(true);
  CHECK_FALSE(pool.submit(&job));  // checked under the pool's lock: never queued
  CHECK_FALSE(pool.withdraw(&job));
  job.stop.store(false);
  CHECK(pool.submit(&job));
  CHECK(sluice::test::eventually([&] { return job.ran.load() == 1; }));
  CHECK_FALSE(pool.withdraw(&job));  // ran: nothing to withdraw
}

TEST_CASE("many files read at once by many tasks all come back right", "[file]") {
  const auto backend = GENERATE(FileBackend::io_uring, FileBackend::blocking);
  CAPTURE(name(backend));
  TempDir dir;
  std::vector<fs::path> paths;
  std::vector<std::uint64_t> expected;
  for (std::size_t i = 0; i < 64; ++i) {
    const auto data = pattern(1000 + 997 * i, i);
    paths.push_back(dir.write("f" + std::to_string(i), data));
    std::uint64_t sum = 0;
    for (const std::byte b : data) {
      sum = sum * 31 + static_cast<std::uint64_t>(b);
    }
    expected.push_back(sum);
  }
  ForceBackend force(backend);
  sluice::Runtime rt(workers(2));
  CHECK(rt.block_on(sum_files(rt, paths)) == expected);
}

namespace {

// Opens its file, waits until every reader has, then reads it: the reads
// start together.
Task<std::size_t> read_once_all_open(sluice::Runtime& rt, fs::path path, std::atomic<int>& opened,
                                     int readers) {
  sluice::File file = co_await sluice::File::open(rt, std::move(path));
  opened.fetch_add(1);
  while (opened.load() < readers) {
    co_await sluice::yield();
  }
  std::array<std::byte, 512> buf{};
  co_return co_await file.read_some_at(0, buf);
}

}  // namespace

// Asio's ring reaps at most 128 completions per wake-up of its eventfd and
// the rest only at a later completion: with more reads than that finishing
// at once and nothing else to come, they would wait forever. sluice keeps
// fewer in flight (kAsioRingReads); here 300 start together, round after
// round.
TEST_CASE("more reads at once than Asio's ring reaps per wake-up all complete", "[file]") {
  const auto backend = GENERATE(FileBackend::io_uring, FileBackend::blocking);
  CAPTURE(name(backend));
  TempDir dir;
  const auto path = dir.write("data.bin", pattern(512, 3));
  ForceBackend force(backend);
  sluice::Runtime rt(workers(4));
  constexpr int readers = 300;
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> opened{0};
    auto all = [&]() -> Task<std::size_t> {
      sluice::Scope scope(rt);
      std::vector<sluice::JoinHandle<std::size_t>> handles;
      for (int i = 0; i < readers; ++i) {
        handles.push_back(scope.spawn_with_handle(read_once_all_open(rt, path, opened, readers)));
      }
      std::size_t total = 0;
      for (auto& h : handles) {
        total += co_await h;
      }
      co_await scope.join();
      co_return total;
    };
    REQUIRE(rt.block_on(all()) == std::size_t{readers} * 512);
  }
}

TEST_CASE("io_uring_available follows the kernel and SLUICE_DISABLE_IO_URING", "[file]") {
  if (disabled_by_environment()) {
    CHECK_FALSE(sluice::io_uring_available());
  } else {
    CHECK(sluice::io_uring_available() == kernel_allows_io_uring());
  }
  TempDir dir;
  const auto path = dir.write("data.bin", pattern(10, 9));
  sluice::Runtime rt(workers(1));
  CHECK(rt.block_on(opens_on_io_uring(rt, path)) == sluice::io_uring_available());
}

namespace {

// Counts the warnings sluice logs that mention io_uring.
class WarningCounter : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::atomic<int> count{0};

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    if (msg.level == spdlog::level::warn && text.find("io_uring") != std::string_view::npos) {
      count.fetch_add(1);
    }
  }
  void flush_() override {}
};

// Refuses io_uring to this thread and the threads it starts, as Docker's
// default seccomp profile does; true once the kernel indeed refuses it.
bool refuse_io_uring_in_this_thread() {
#if defined(__x86_64__)
  return sluice::test::refuse_io_uring() && !kernel_allows_io_uring();
#else
  return false;
#endif
}

struct RefusedRun {
  bool filtered = false;
  bool first_on_io_uring = true;
  bool second_on_io_uring = true;
  std::vector<std::byte> back;
  std::exception_ptr error;
};

}  // namespace

TEST_CASE(
    "when Asio's ring is refused, files fall back to the blocking pool and one warning "
    "is logged",
    "[file]") {
#if !defined(__x86_64__)
  WARN("the seccomp filter of this test is written for x86-64 only");
  return;
#endif
  TempDir dir;
  const auto data = pattern(300 * 1024, 11);
  const auto path = dir.write("data.bin", data);
  (void)sluice::io_uring_available();         // the process-wide probe runs unfiltered
  sluice::detail::forget_io_uring_refusal();  // nothing logged yet, as in a fresh process
  // The counter stands in for the stderr sink meanwhile: the warning is
  // expected here, not news.
  auto counter = std::make_shared<WarningCounter>();
  auto& sinks = sluice::detail::log().sinks();
  const auto saved_sinks = sinks;
  sinks.assign({counter});
  RefusedRun run;
  {
    // Skip the probe: only Asio's own ring setup is left to be refused.
    ForceBackend force(FileBackend::io_uring);
    // The filter stays on the thread that installs it: a thread of our own,
    // whose runtime's workers and reactor inherit it.
    std::thread filtered([&] {
      run.filtered = refuse_io_uring_in_this_thread();
      if (!run.filtered) {
        return;
      }
      try {
        sluice::Runtime rt(workers(2));
        run.first_on_io_uring = rt.block_on(opens_on_io_uring(rt, path));
        run.second_on_io_uring = rt.block_on(opens_on_io_uring(rt, path));
        ChunkLog log;
        rt.block_on(read_all(rt, path, 64 * 1024, log));
        run.back = std::move(log.bytes);
      } catch (...) {
        run.error = std::current_exception();
      }
    });
    filtered.join();
  }
  const bool available_after = sluice::io_uring_available();
  sinks = saved_sinks;
  sluice::detail::forget_io_uring_refusal();

  REQUIRE(run.filtered);
  if (run.error) {
    std::rethrow_exception(run.error);
  }
  CHECK_FALSE(run.first_on_io_uring);
  CHECK_FALSE(run.second_on_io_uring);
  CHECK(run.back == data);
  CHECK(counter->count.load() == 1);
  CHECK_FALSE(available_after);  // later opens go straight to the fallback
}
