#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "sluice/task.hpp"

namespace sluice {

class Runtime;

/// A file opened for positioned reads from tasks.
///
/// Reads go through Asio's random_access_file on the runtime's reactor, that
/// is on io_uring (the calling worker is free while the read is in flight,
/// and the task resumes on the pool). Where the kernel refuses io_uring
/// (container seccomp profiles, gVisor, `kernel.io_uring_disabled`) or
/// `SLUICE_DISABLE_IO_URING=1` is set, reads are blocking `pread` calls on a
/// small pool of threads owned by sluice; the first open that falls back logs
/// one warning. Either way a read awaited by a cancelled task ends with
/// cancelled_error (a fallback read already running finishes first).
///
/// A File must not outlive its Runtime.
///
/// Thread safety: one task uses a File at a time (it is an I/O object like
/// an Asio socket); different Files are independent.
class File {
 public:
  /// Opens `path` for reading. Throws std::system_error whose code is the
  /// errno (no_such_file_or_directory, permission_denied,
  /// is_a_directory, ...) and whose what() names the path. Pipes and
  /// sockets, which cannot be read at an offset, fail with
  /// errc::invalid_seek. The path is taken by value: the task may start
  /// after the caller's argument is gone.
  static Task<File> open(Runtime& runtime, std::filesystem::path path);

  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  /// Reads up to `buffer.size()` bytes at `offset`; returns how many were
  /// read: 0 at or past the end of the file (or for an empty buffer), fewer
  /// than asked near the end. Throws std::system_error naming the path on a
  /// read error, cancelled_error / timeout_error when the task is stopped,
  /// std::logic_error on a moved-from File. `buffer` must stay valid until
  /// the returned task completes.
  Task<std::size_t> read_some_at(std::uint64_t offset, std::span<std::byte> buffer);

  /// The size when the file was opened.
  [[nodiscard]] std::uint64_t size() const noexcept;
  [[nodiscard]] const std::filesystem::path& path() const noexcept;
  /// True: reads complete on io_uring; false: on the blocking pool.
  [[nodiscard]] bool uses_io_uring() const noexcept;
  /// False for a moved-from File.
  [[nodiscard]] bool is_open() const noexcept { return impl_ != nullptr; }

 private:
  struct Impl;
  explicit File(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

/// True when File reads use io_uring in this process: io_uring is not
/// disabled by SLUICE_DISABLE_IO_URING and the kernel accepted it. The first
/// call probes (and logs the fallback, if any); later calls are cheap.
///
/// Thread safety: any thread.
[[nodiscard]] bool io_uring_available() noexcept;

/// Reads the whole file at `path` into `buffer` and returns how many bytes
/// it read. A result smaller than buffer.size() is the whole file; a result
/// of buffer.size() means the file may go on (reading stopped with the
/// buffer full: a file of exactly buffer.size() bytes also returns that, so
/// pass a buffer one byte larger than the largest file you accept).
///
/// Where sluice's own io_uring ring serves (see io_uring_available(); it is
/// created on the runtime's first call), a file that fits costs one
/// submission of a linked chain (open into a direct descriptor, read,
/// 1-byte probe read, close) and no blocking system call on the worker.
/// Otherwise, and for files whose reads come back short before their end
/// (/proc), it reads through File. Throws std::system_error whose code is
/// the errno and whose what() names the path, as File::open does
/// (no_such_file_or_directory, permission_denied, is_a_directory,
/// invalid_seek for a FIFO), and cancelled_error / timeout_error when the
/// task is stopped: a chain in flight is cancelled with
/// IORING_OP_ASYNC_CANCEL, and the task goes on only after the kernel
/// reported its last operation, so `buffer` is never written after the
/// call ends. `buffer` must stay valid until the returned task completes.
///
/// Thread safety: any number of concurrent calls, from any tasks.
Task<std::size_t> read_whole_file(Runtime& runtime, std::filesystem::path path,
                                  std::span<std::byte> buffer);

namespace detail {

/// What read_first_chunk found.
struct FirstChunk {
  enum class Status : std::uint8_t {
    fallback,  // nothing read: sluice's ring does not serve; use File from 0
    complete,  // `bytes` is the whole file
    more,      // `bytes` were read from the start; the file may go on
  };
  Status status = Status::fallback;
  std::size_t bytes = 0;
};

/// False where read_first_chunk would surely answer `fallback` (io_uring
/// refused, disabled or not chosen for files in this process).
[[nodiscard]] bool file_ring_enabled() noexcept;

/// Reads the start of `path` into `buffer` (not empty) with one linked
/// chain on the runtime's ring. Throws as read_whole_file. `path` and
/// `buffer` must stay valid until the returned task completes.
Task<FirstChunk> read_first_chunk(Runtime& runtime, const std::filesystem::path& path,
                                  std::span<std::byte> buffer);

/// Calls on_chunk with `chunk`, awaiting it when it returns a Task<void>.
template <class F>
Task<void> deliver_chunk(F& on_chunk, std::span<const std::byte> chunk) {
  using R = std::invoke_result_t<F&, std::span<const std::byte>>;
  if constexpr (std::is_same_v<R, Task<void>>) {
    co_await on_chunk(chunk);
  } else {
    on_chunk(chunk);
  }
}

}  // namespace detail

/// Reads the file at `path` from start to end in order, calling
/// `on_chunk(std::span<const std::byte>)` once per read of at most
/// `chunk_size` bytes (never with an empty span); `on_chunk` may return a
/// Task<void>, which is awaited before the next read. Memory: one buffer of
/// at most chunk_size bytes, so a large file is hashed or copied without
/// being held. The end is a read that returns 0, or a short read at or past
/// the size seen at open: a regular file costs no extra read to find its
/// end, and a file that grew is read on; pseudo-files that report size 0
/// (/proc) are read until a read returns 0. Returns the number of bytes
/// read. Throws what File::open and File::read_some_at throw, what
/// `on_chunk` throws, and std::invalid_argument for a chunk_size of 0.
///
/// Where sluice's own io_uring ring serves, the first chunk_size bytes are
/// read as in read_whole_file (one linked chain, no blocking system call on
/// the worker); a file that ends within them is done with that one
/// submission, a longer one goes on through File from where the chain
/// stopped. The buffer is then chunk_size bytes from the start.
///
/// Thread safety: `on_chunk` runs on the pool, one call at a time.
template <class F>
requires std::invocable<F&, std::span<const std::byte>> Task<std::uint64_t> read_file_chunks(
    Runtime& runtime, std::filesystem::path path, std::size_t chunk_size, F on_chunk) {
  if (chunk_size == 0) {
    throw std::invalid_argument("sluice::read_file_chunks: chunk_size must be at least 1");
  }
  std::unique_ptr<std::byte[]> buffer;
  std::size_t length = 0;
  std::uint64_t offset = 0;
  if (detail::file_ring_enabled()) {
    length = chunk_size;
    buffer = std::make_unique_for_overwrite<std::byte[]>(length);
    const detail::FirstChunk first =
        co_await detail::read_first_chunk(runtime, path, {buffer.get(), length});
    if (first.status != detail::FirstChunk::Status::fallback) {
      if (first.bytes != 0) {
        co_await detail::deliver_chunk(on_chunk, {buffer.get(), first.bytes});
      }
      if (first.status == detail::FirstChunk::Status::complete) {
        co_return first.bytes;
      }
      offset = first.bytes;
    }
  }
  File file = co_await File::open(runtime, std::move(path));
  const std::uint64_t size = file.size();
  if (!buffer) {
    // One byte more than the file holds, so that reading a whole small file
    // comes back short and ends it; 4 KiB at least for files that grow or
    // report no size.
    const auto want = std::max<std::uint64_t>(size + 1, 4096);
    length = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_size, want));
    buffer = std::make_unique_for_overwrite<std::byte[]>(length);
  }
  for (;;) {
    const std::size_t got = co_await file.read_some_at(offset, {buffer.get(), length});
    if (got == 0) {
      co_return offset;
    }
    offset += got;
    co_await detail::deliver_chunk(on_chunk, {buffer.get(), got});
    if (got < length && size != 0 && offset >= size) {
      co_return offset;
    }
  }
}

}  // namespace sluice
