// FileRing: sluice's own io_uring ring (liburing), one per Runtime, for
// reading the start of a file with one linked chain of requests:
//
//   OPENAT into a direct slot  -LINK->      FADVISE(SEQUENTIAL) on the slot
//   -LINK->      READ  up to N bytes at the file position
//   -HARDLINK->  READ  1 probe byte at the file position (0: N was the end)
//   -HARDLINK->  CLOSE the direct slot
//
// A failed open (or a FADVISE refused with ESPIPE: a FIFO) cancels the rest
// with -ECANCELED, so nothing is read. The reads are hard links because the
// kernel counts a short read as a failed link, and a short read is the
// normal end of a small file. A CLOSE that was cancelled leaves the file in
// its slot until the slot's next OPENAT replaces it, or the ring is freed.
//
// Completions are signalled on an eventfd (io_uring_register_eventfd) that
// the runtime's io_context watches; the handler drains the eventfd, reaps
// every CQE, re-arms the wait and reaps once more, because Asio's epoll
// reactor is edge-triggered and a CQE posted before the re-arm would
// otherwise wait for the next one. A submitter also reaps right after
// io_uring_submit: a chain on cached data usually completes inside the
// submit call, and its task then goes on without a trip through the reactor.
//
// Concurrency: workers submit and stop callbacks cancel from any thread, and
// the reactor reaps; all of them hold mutex_, which guards the SQ, the CQ
// head, the slot table and every field of a ChainRequest marked "guarded".
// A request's task resumes only after its last CQE (chain and cancels)
// was reaped, so the kernel never writes into a frame that is gone.
#pragma once

#include <liburing.h>

#include <array>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

namespace sluice::detail {

class PromiseBase;

/// One chain in flight; lives in the awaiting task's frame.
struct alignas(8) ChainRequest {
  // The chain's operations, in order; the low 3 bits of a CQE's user_data.
  enum Op : unsigned { kOpen, kAdvise, kRead, kProbe, kClose, kOps, kCancel = 7 };

  const char* path = nullptr;
  std::span<std::byte> buffer;
  std::byte probe{};
  std::array<int, kOps> results{};  // guarded; each written when its CQE is reaped
  PromiseBase* waiter = nullptr;    // resumed after the last CQE

  std::uint32_t slot = 0;        // guarded: the direct descriptor slot
  unsigned done = 0;             // guarded: bit `op` set once its CQE is reaped
  unsigned remaining = 0;        // guarded: CQEs still owed (chain and cancels)
  unsigned cancels = 0;          // guarded: cancel requests in flight
  bool cancel_wanted = false;    // guarded: the task was stopped
  ChainRequest* next = nullptr;  // guarded: the reaper's list of finished chains
};

/// Thread safety: submit and cancel from any thread; the reactor reaps.
/// At most this many reads in flight on Asio's own io_uring (File's
/// random_access_file) per runtime. Asio 1.22's ring in the default (mixed)
/// mode is watched through an eventfd: on each wake-up it reads the eventfd
/// and then reaps at most 128 completions (complete_batch_size). Any more
/// stay in the completion queue with the eventfd already reset, until some
/// later completion signals it again; when every task left waits on those
/// completions, none comes, and they wait forever. A cancelled read adds the
/// cancel's own completion, so with at most 60 reads in flight (120
/// completions, and Asio's wake-up NOP) every wake-up reaps them all. A
/// read beyond the bound waits for one to finish (FIFO; a stop withdraws
/// it).
inline constexpr std::size_t kAsioRingReads = 60;

class FileRing {
 public:
  static constexpr unsigned kSlots = 512;
  static constexpr unsigned kSqEntries = 64;
  // Room for every chain's CQEs and its cancels (kOps + 4 each): the CQ
  // cannot overflow.
  static constexpr unsigned kCqEntries = 8192;

  /// Sets up the ring, the slot table and the eventfd watch; throws
  /// std::system_error when the kernel refuses any of them (or lacks an
  /// opcode of the chain).
  explicit FileRing(asio::io_context& io);
  FileRing(const FileRing&) = delete;
  FileRing& operator=(const FileRing&) = delete;
  /// Called once the reactor threads are joined: waits (a bounded time) for
  /// chains still in flight, then frees the ring and closes the eventfd.
  ~FileRing();

  enum class Submitted { done, pending, no_slot, stopped };

  /// Submits `req`'s chain. `done`: it completed inside the call and the
  /// caller goes on (its waiter is not scheduled); `pending`: the reactor
  /// schedules req.waiter after the last CQE (from then on the caller must
  /// not touch `req`); `no_slot`: every slot is busy, nothing was submitted;
  /// `stopped`: the waiter's task was stopped, nothing was submitted
  /// (checked under the lock cancel() takes, so a stop that comes before
  /// is seen here, and one after finds the chain to cancel).
  Submitted submit(ChainRequest& req) noexcept;

  /// The task was stopped: cancels what of the chain has not completed
  /// (IORING_OP_ASYNC_CANCEL by user_data, again after each round of
  /// cancels until only the CLOSE is left). A no-op once the chain is done.
  void cancel(ChainRequest& req) noexcept;

  /// Open failed with EINVAL (a kernel without direct descriptors for
  /// OPENAT): later reads use the File path.
  void disable() noexcept { disabled_.store(true, std::memory_order_relaxed); }
  [[nodiscard]] bool disabled() const noexcept { return disabled_.load(std::memory_order_relaxed); }

  /// Chains submitted so far (for tests).
  [[nodiscard]] std::uint64_t chains() const noexcept {
    return chains_.load(std::memory_order_relaxed);
  }

 private:
  void arm();
  void on_ready() noexcept;
  // Under mutex_: reaps every CQE; finished chains are pushed on `finished`.
  void reap_locked(ChainRequest*& finished) noexcept;
  void cancel_locked(ChainRequest& req) noexcept;
  void submit_locked() noexcept;
  static void schedule_all(ChainRequest* finished) noexcept;

  io_uring ring_{};
  std::mutex mutex_;
  std::vector<std::uint32_t> free_slots_;  // guarded by mutex_
  std::size_t in_flight_ = 0;              // guarded by mutex_: chains submitted, not finished
  asio::posix::stream_descriptor event_;   // used by the reactor's handler (one at a time)
  // Written by whoever sees an open fail with EINVAL; read by every read.
  std::atomic<bool> disabled_{false};
  std::atomic<std::uint64_t> chains_{0};  // a statistic: relaxed
};

/// The runtime's ring, created on first use; null where it cannot be (the
/// failure is logged once per process, at info level: the File path serves).
///
/// Thread safety: any thread.
class FileRingHolder {
 public:
  explicit FileRingHolder(asio::io_context& io) noexcept : io_(io) {}
  FileRing* get() noexcept;

 private:
  asio::io_context& io_;
  std::mutex mutex_;
  std::unique_ptr<FileRing> ring_;  // written once under mutex_, before state_ is set
  // 0 untried, 1 ready, 2 unavailable. Release on set, acquire on read: ring_
  // is complete before anyone sees 1.
  std::atomic<std::uint8_t> state_{0};
};

}  // namespace sluice::detail
