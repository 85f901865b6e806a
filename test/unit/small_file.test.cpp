// read_whole_file and the first chunk of read_file_chunks on sluice's own
// io_uring ring (one linked open/read/probe/close chain per file), and their
// fallback to File. ctest also runs this binary with SLUICE_DISABLE_IO_URING=1
// and under the seccomp filter that refuses io_uring, where every test must
// pass on the fallback.
#include <fcntl.h>
#include <liburing.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "deadline.hpp"
#include "file_fixtures.hpp"
#include "io/file_ring.hpp"
#include "io/io_uring_probe.hpp"
#include "outcome.hpp"
#include "sluice/sluice.hpp"

using namespace std::chrono_literals;
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

// Chains the runtime's ring has submitted (0 if it has none).
std::uint64_t chains(sluice::Runtime& rt) {
  sluice::detail::FileRing* ring = rt.core().file_ring->get();
  return ring != nullptr ? ring->chains() : 0;
}

struct WholeRead {
  std::size_t returned = 0;
  std::vector<std::byte> buffer;
};

Task<void> read_whole(sluice::Runtime& rt, fs::path path, WholeRead& out) {
  out.returned = co_await sluice::read_whole_file(rt, std::move(path), out.buffer);
}

Task<std::error_code> whole_file_error(sluice::Runtime& rt, fs::path path, std::string& what) {
  std::array<std::byte, 64> buf{};
  try {
    (void)co_await sluice::read_whole_file(rt, std::move(path), buf);
  } catch (const std::system_error& e) {
    what = e.what();
    co_return e.code();
  }
  co_return std::error_code();
}

Task<std::error_code> chunks_error(sluice::Runtime& rt, fs::path path) {
  try {
    (void)co_await sluice::read_file_chunks(rt, std::move(path), 4096,
                                            [](std::span<const std::byte>) {});
  } catch (const std::system_error& e) {
    co_return e.code();
  }
  co_return std::error_code();
}

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) {
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("read_whole_file reads empty, tiny, exact-fit and too-large files", "[small_file]") {
  const auto backend =
      GENERATE(FileBackend::io_uring, FileBackend::blocking, FileBackend::automatic);
  const std::size_t size = GENERATE(std::size_t{0}, std::size_t{1}, std::size_t{4095},
                                    std::size_t{4096}, std::size_t{4097}, std::size_t{100 * 1024});
  constexpr std::size_t kBuffer = 4096;
  CAPTURE(name(backend), size);
  TempDir dir;
  const auto data = pattern(size, size + 3);
  const auto path = dir.write("data.bin", data);
  ForceBackend force(backend);
  sluice::Runtime rt(sluice::Config{.threads = 2});

  WholeRead r;
  r.buffer.assign(kBuffer, std::byte{0x5a});
  rt.block_on(read_whole(rt, path, r));
  const std::size_t expect = std::min(size, kBuffer);
  CHECK(r.returned == expect);
  CHECK(std::equal(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(expect),
                   r.buffer.begin()));
  // Nothing written past what was read.
  CHECK(std::all_of(r.buffer.begin() + static_cast<std::ptrdiff_t>(expect), r.buffer.end(),
                    [](std::byte b) { return b == std::byte{0x5a}; }));
  CHECK((chains(rt) == 1) == expect_io_uring(backend));
}

TEST_CASE("read_file_chunks reads a small file with one chain and a large one on from it",
          "[small_file]") {
  const auto backend = GENERATE(FileBackend::io_uring, FileBackend::automatic);
  const std::size_t size = GENERATE(std::size_t{0}, std::size_t{10}, std::size_t{65536},
                                    std::size_t{65537}, std::size_t{300 * 1024});
  CAPTURE(name(backend), size);
  TempDir dir;
  const auto data = pattern(size, size + 5);
  const auto path = dir.write("data.bin", data);
  ForceBackend force(backend);
  sluice::Runtime rt(sluice::Config{.threads = 2});
  std::vector<std::byte> back;
  std::size_t calls = 0;
  const auto n =
      rt.block_on(sluice::read_file_chunks(rt, path, 65536, [&](std::span<const std::byte> c) {
        back.insert(back.end(), c.begin(), c.end());
        ++calls;
      }));
  CHECK(n == size);
  CHECK(back == data);
  CHECK(calls == (size + 65535) / 65536);
  CHECK((chains(rt) == 1) == expect_io_uring(backend));
}

TEST_CASE("read_whole_file and read_file_chunks report errors by errno and path", "[small_file]") {
  const auto backend = GENERATE(FileBackend::io_uring, FileBackend::blocking);
  CAPTURE(name(backend));
  TempDir dir;
  const auto file = dir.write("plain", pattern(10, 1));
  REQUIRE(::mkfifo((dir.path() / "fifo").c_str(), 0600) == 0);
  ForceBackend force(backend);
  sluice::Runtime rt(sluice::Config{.threads = 2});
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
    CHECK(rt.block_on(whole_file_error(rt, c.path, what)) == c.code);
    CHECK(what.find(c.path.string()) != std::string::npos);
    CHECK(rt.block_on(chunks_error(rt, c.path)) == c.code);
  }
  CHECK((chains(rt) == 2 * cases.size()) == expect_io_uring(backend));
}

TEST_CASE("read_whole_file reports an unreadable file as permission denied", "[small_file]") {
  const auto backend = GENERATE(FileBackend::io_uring, FileBackend::blocking);
  CAPTURE(name(backend));
  TempDir dir;
  const auto path = dir.write("secret", pattern(100, 3));
  REQUIRE(::chmod(path.c_str(), 0) == 0);
  ForceBackend force(backend);
  WithoutFileCapabilities caps;
  // Root included: the file must now be unreadable to this thread and the
  // runtime's threads (io_uring's workers act with the submitter's creds).
  const int probe = ::open(path.c_str(), O_RDONLY);
  if (probe >= 0) {
    ::close(probe);
  }
  REQUIRE(probe < 0);
  REQUIRE(errno == EACCES);
  sluice::Runtime rt(sluice::Config{.threads = 2});
  std::string what;
  CHECK(rt.block_on(whole_file_error(rt, path, what)) == std::errc::permission_denied);
  CHECK(what.find(path.string()) != std::string::npos);
  CHECK(rt.block_on(chunks_error(rt, path)) == std::errc::permission_denied);
}

namespace {

Task<bool> whole_matches(sluice::Runtime& rt, fs::path path, std::vector<std::byte> expect) {
  std::vector<std::byte> buf(expect.size() + 1);
  const std::size_t n = co_await sluice::read_whole_file(rt, std::move(path), buf);
  buf.resize(n);
  co_return buf == expect;
}

Task<bool> chunks_match(sluice::Runtime& rt, fs::path path, std::vector<std::byte> expect) {
  std::vector<std::byte> back;
  co_await sluice::read_file_chunks(rt, std::move(path), 8192, [&](std::span<const std::byte> c) {
    back.insert(back.end(), c.begin(), c.end());
  });
  co_return back == expect;
}

Task<std::size_t> read_many(sluice::Runtime& rt, const std::vector<fs::path>& paths,
                            const std::vector<std::vector<std::byte>>& contents) {
  sluice::Scope scope(rt, {.max_pending = 256});
  std::vector<sluice::JoinHandle<bool>> handles;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (i % 2 == 0) {
      handles.push_back(co_await scope.spawn(whole_matches(rt, paths[i], contents[i])));
    } else {
      handles.push_back(co_await scope.spawn(chunks_match(rt, paths[i], contents[i])));
    }
  }
  std::size_t good = 0;
  for (auto& h : handles) {
    good += (co_await h) ? 1 : 0;
  }
  co_await scope.join();
  co_return good;
}

}  // namespace

TEST_CASE("2,000 small files read at once by many tasks all come back right", "[small_file]") {
  const auto backend = GENERATE(FileBackend::automatic, FileBackend::blocking);
  CAPTURE(name(backend));
  TempDir dir;
  std::vector<fs::path> paths;
  std::vector<std::vector<std::byte>> contents;
  for (std::size_t i = 0; i < 2000; ++i) {
    contents.push_back(pattern((i * 37) % 12000, i));  // 0 B to 12 KB: some span two chunks
    paths.push_back(dir.write("f" + std::to_string(i), contents.back()));
  }
  const std::size_t fds_before = open_fds();
  {
    ForceBackend force(backend);
    sluice::Runtime rt(sluice::Config{.threads = 4});
    CHECK(rt.block_on(read_many(rt, paths, contents)) == paths.size());
    CHECK((chains(rt) == paths.size()) == expect_io_uring(backend));
  }
  // The ring, its eventfd and every file are closed with the runtime.
  CHECK(open_fds() == fds_before);
}

namespace {

// A pseudo-terminal: reading its follower side waits until the leader
// writes, which here it never does.
class Pty {
 public:
  Pty() {
    leader_ = ::posix_openpt(O_RDWR | O_NOCTTY);
    REQUIRE(leader_ >= 0);
    REQUIRE(::grantpt(leader_) == 0);
    REQUIRE(::unlockpt(leader_) == 0);
    follower_ = ::ptsname(leader_);
  }
  Pty(const Pty&) = delete;
  Pty& operator=(const Pty&) = delete;
  ~Pty() { ::close(leader_); }
  [[nodiscard]] const fs::path& follower() const { return follower_; }

 private:
  int leader_ = -1;
  fs::path follower_;
};

Task<std::size_t> read_follower(sluice::Runtime& rt, fs::path path) {
  std::array<std::byte, 256> buf{};
  co_return co_await sluice::read_whole_file(rt, std::move(path), buf);
}

}  // namespace

TEST_CASE("cancelling a task whose chain waits in the kernel ends it with cancelled",
          "[small_file]") {
  if (!expect_io_uring(FileBackend::io_uring)) {
    // The fallback's pread on a terminal fails at once (ESPIPE): nothing waits.
    WARN("io_uring is refused to this process: nothing to cancel in the kernel");
    return;
  }
  Pty pty;
  ForceBackend force(FileBackend::io_uring);
  sluice::Runtime rt(sluice::Config{.threads = 2});
  const std::uint64_t before = chains(rt);
  sluice::Scope scope(rt);
  auto h = scope.spawn_with_handle(read_follower(rt, pty.follower()));
  // Either the chain's read waits for the terminal, or (no ring) File's does.
  std::this_thread::sleep_for(100ms);
  REQUIRE_FALSE(h.done());
  CHECK(chains(rt) == before + 1);
  h.cancel();
  REQUIRE(sluice::test::eventually([&] { return h.done(); }, 5s));
  CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
  rt.block_on(scope.join());
}

namespace {

Task<std::size_t> read_start(sluice::Runtime& rt, fs::path path) {
  sluice::File file = co_await sluice::File::open(rt, std::move(path));
  std::array<std::byte, 64> buf{};
  co_return co_await file.read_some_at(0, buf);
}

}  // namespace

// File's reads on Asio's ring are bounded (kAsioRingReads): one beyond the
// bound waits for a read to end, and a stop reaches it while it waits.
TEST_CASE("a read waiting for room on Asio's ring starts when one ends, or ends when cancelled",
          "[small_file]") {
  if (!expect_io_uring(FileBackend::io_uring)) {
    WARN("io_uring is refused to this process: File reads on the blocking pool are not bounded");
    return;
  }
  Pty pty;
  TempDir dir;
  const auto path = dir.write("data.bin", pattern(64, 4));
  ForceBackend force(FileBackend::io_uring);
  sluice::Runtime rt(sluice::Config{.threads = 2});
  sluice::Scope stuck_scope(rt);
  std::vector<sluice::JoinHandle<std::size_t>> stuck;
  for (std::size_t i = 0; i < sluice::detail::kAsioRingReads; ++i) {
    stuck.push_back(stuck_scope.spawn_with_handle(read_start(rt, pty.follower())));
  }
  std::this_thread::sleep_for(200ms);  // every one of them waiting for the terminal
  for (auto& h : stuck) {
    REQUIRE_FALSE(h.done());
  }
  sluice::Scope scope(rt);
  auto waiting = scope.spawn_with_handle(read_start(rt, path));
  auto withdrawn = scope.spawn_with_handle(read_start(rt, path));
  std::this_thread::sleep_for(100ms);
  CHECK_FALSE(waiting.done());  // no room for them on the ring
  CHECK_FALSE(withdrawn.done());
  withdrawn.cancel();
  REQUIRE(sluice::test::eventually([&] { return withdrawn.done(); }, 5s));
  CHECK(rt.block_on(outcome(withdrawn)) == sluice::errc::cancelled);
  CHECK_FALSE(waiting.done());
  stuck.front().cancel();  // one read ends: the oldest waiting read gets its room
  REQUIRE(sluice::test::eventually([&] { return waiting.done(); }, 5s));
  auto value = [&]() -> Task<std::size_t> { co_return co_await waiting; };
  CHECK(rt.block_on(value()) == 64);
  stuck_scope.request_stop();
  rt.block_on(stuck_scope.join());
  rt.block_on(scope.join());
  for (auto& h : stuck) {
    CHECK(rt.block_on(outcome(h)) == sluice::errc::cancelled);
  }
}

TEST_CASE("a runtime destroyed right after many reads leaves no descriptor open", "[small_file]") {
  TempDir dir;
  const auto path = dir.write("x", pattern(5000, 9));
  const std::size_t before = open_fds();
  for (int round = 0; round < 5; ++round) {
    sluice::Runtime rt(sluice::Config{.threads = 2});
    sluice::Scope scope(rt);
    for (int i = 0; i < 50; ++i) {
      (void)scope.spawn_detached(whole_matches(rt, path, pattern(5000, 9)));
    }
    rt.block_on(scope.join());
  }
  CHECK(open_fds() == before);
}
