// sluice::File: positioned reads on io_uring through Asio's
// random_access_file, or blocking pread on the BlockingPool where io_uring
// is refused (see io_uring_probe.hpp for how that is decided).
#include "sluice/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <asio/random_access_file.hpp>
#include <asio/strand.hpp>
#include <cerrno>
#include <coroutine>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>

#include "io/blocking_pool.hpp"
#include "io/file_ring.hpp"
#include "io/io_uring_probe.hpp"
#include "sluice/runtime.hpp"
#include "sluice/use_task.hpp"
#include "sync.hpp"

namespace sluice {
namespace {

std::system_error path_error(std::error_code ec, const char* what,
                             const std::filesystem::path& path) {
  return std::system_error(ec, std::string(what) + " '" + path.string() + "'");
}

std::system_error path_error(int error, const char* what, const std::filesystem::path& path) {
  return path_error(std::error_code(error, std::generic_category()), what, path);
}

// Closes the descriptor unless ownership moved on.
class FdGuard {
 public:
  explicit FdGuard(int fd) noexcept : fd_(fd) {}
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  ~FdGuard() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// A pread on the BlockingPool, awaited by a sluice task. It lives in the
// awaiting frame, which is resumed (possibly on another thread) by
// whichever of the pool thread or a stop request gets to it first: after
// handing the job to the pool, nothing here is touched by the submitter.
//
// Whoever resumes the task is still inside Pool::schedule (waking a worker)
// when the task may already run, finish and let its Runtime, and so the
// Pool, be destroyed. So the task does not go on before the resumer is out:
// the stop callback is waited for by ~stop_callback, the pool thread by
// the `handed_over_` handshake in await_resume.
class BlockingRead : detail::BlockingJob {
 public:
  BlockingRead(int fd, std::uint64_t offset, std::span<std::byte> buffer) noexcept
      : fd_(fd), offset_(offset), buffer_(buffer) {
    run = &BlockingRead::perform;
    stopped = &BlockingRead::stop_requested;
  }

  static bool await_ready() noexcept { return false; }

  template <detail::SluicePromise P>
  bool await_suspend(std::coroutine_handle<P> h) {
    waiter_ = &h.promise();
    ctx_ = waiter_->context();
    if (ctx_ == nullptr) {  // no pool to resume on: read right here
      read();
      handed_over_.store(true, std::memory_order_relaxed);
      return false;
    }
    auto& pool = detail::BlockingPool::instance();
    // Registered before the job is queued, and a no-op until then: a stop
    // that arrives now is seen by the check below instead.
    on_stop_.emplace(ctx_->stop_token(), Withdraw{this});
    if (ctx_->stop_requested() || !pool.submit(this)) {  // submit checks again, see stopped
      stopped_ = true;
      return false;
    }
    return true;
  }

  std::size_t await_resume() {
    on_stop_.reset();  // waits for a stop callback still running elsewhere
    if (stopped_) {
      throw_error(ctx_->stop_error());
    }
    wait_for_handover();
    if (result_ < 0) {
      throw std::system_error(error_, std::generic_category());
    }
    return static_cast<std::size_t>(result_);
  }

 private:
  struct Withdraw {
    BlockingRead* self;
    void operator()() const noexcept {
      if (detail::BlockingPool::instance().withdraw(self)) {
        self->stopped_ = true;
        self->waiter_->schedule();  // the resumed task waits in ~stop_callback for our return
      }
    }
  };

  static bool stop_requested(const detail::BlockingJob* job) noexcept {
    return static_cast<const BlockingRead*>(job)->ctx_->stop_requested();
  }

  static void perform(detail::BlockingJob* job) noexcept {
    auto* self = static_cast<BlockingRead*>(job);
    self->read();
    self->waiter_->schedule();
    // Last touch: from here the task may go on and free this frame.
    // Release: the result written by read() is published with it.
    self->handed_over_.store(true, std::memory_order_release);
  }

  // The pool thread is out of schedule() within microseconds; yield in case
  // it was preempted in between.
  void wait_for_handover() const noexcept {
    for (int spins = 0; !handed_over_.load(std::memory_order_acquire); ++spins) {
      if (spins < 64) {
        detail::sync::cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
  }

  void read() noexcept {
    ssize_t n = 0;
    do {
      n = ::pread(fd_, buffer_.data(), buffer_.size(), static_cast<off_t>(offset_));
    } while (n < 0 && errno == EINTR);
    result_ = n;
    error_ = n < 0 ? errno : 0;
  }

  int fd_;
  std::uint64_t offset_;
  std::span<std::byte> buffer_;
  detail::PromiseBase* waiter_ = nullptr;
  detail::TaskContext* ctx_ = nullptr;
  std::optional<std::stop_callback<Withdraw>> on_stop_;
  // Written by the pool thread or the stop callback before they resume the
  // task; handed_over_ (pool thread) and ~stop_callback (stop) order them
  // before await_resume reads them.
  ssize_t result_ = 0;
  int error_ = 0;
  bool stopped_ = false;
  // Written once by the pool thread after its last use of the Pool; read
  // by the resumed task.
  detail::sync::Atomic<bool> handed_over_{false};
};

asio::any_io_executor file_executor(Runtime& runtime) {
  // With several reactor threads, a cancellation must run serialised with
  // the read it cancels (see use_task): give the file a strand.
  if (runtime.config().io_threads > 1) {
    return asio::make_strand(runtime.io_context());
  }
  return runtime.io_context().get_executor();
}

// A permit for one read on Asio's io_uring (see kAsioRingReads), awaited
// before the read; the Held it returns gives it back.
class AsioRingPermit {
 public:
  // Gives the permit back when the read is done (or never started).
  class Held {
   public:
    explicit Held(detail::Admission* gate) noexcept : gate_(gate) {}
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    ~Held() {
      if (gate_ != nullptr) {
        gate_->release();  // hands it to the oldest waiting read, if any
      }
    }

   private:
    detail::Admission* gate_;
  };

  explicit AsioRingPermit(detail::Admission& gate) noexcept : gate_(gate) {
    waiter_.on_ready = &AsioRingPermit::on_ready;
    // Checked under the gate's mutex before the read queues: a stop sets
    // what this reads before its Withdraw takes that mutex, so either the
    // read does not queue or Withdraw finds it queued.
    waiter_.owner_closed = [](const detail::AdmissionWaiter* w) noexcept {
      return static_cast<const Waiter*>(w)->task->context()->stop_requested();
    };
  }

  bool await_ready() noexcept { return gate_.try_acquire(); }

  template <detail::SluicePromise P>
  bool await_suspend(std::coroutine_handle<P> h) {
    waiter_.task = &h.promise();
    ctx_ = waiter_.task->context();
    if (ctx_ == nullptr) {  // nothing to resume it on or stop it with: read without one
      unbounded_ = true;
      return false;
    }
    // Registered before queueing, and a no-op until then: a stop that
    // arrives now is seen by the check below instead.
    on_stop_.emplace(ctx_->stop_token(), Withdraw{this});
    if (ctx_->stop_requested()) {
      stopped_ = true;
      return false;
    }
    // False: a permit at once, or (waiter_.error set) stopped meanwhile.
    return gate_.acquire_or_wait(&waiter_);
  }

  Held await_resume() {
    on_stop_.reset();  // waits for a stop callback still running elsewhere
    if (stopped_ || waiter_.error != errc{}) {
      throw_error(ctx_->stop_error());
    }
    return Held(unbounded_ ? nullptr : &gate_);
  }

 private:
  struct Waiter : detail::AdmissionWaiter {
    detail::PromiseBase* task = nullptr;
  };
  struct Withdraw {
    AsioRingPermit* self;
    // Wakes the read without a permit if it still waits for one.
    void operator()() const noexcept {
      (void)self->gate_.withdraw_one(&self->waiter_, errc::cancelled);
    }
  };
  static void on_ready(detail::AdmissionWaiter* w) noexcept {
    static_cast<Waiter*>(w)->task->schedule();
  }

  detail::Admission& gate_;
  Waiter waiter_;
  detail::TaskContext* ctx_ = nullptr;
  std::optional<std::stop_callback<Withdraw>> on_stop_;
  bool stopped_ = false;
  bool unbounded_ = false;
};

}  // namespace

struct File::Impl {
  std::filesystem::path path;
  std::uint64_t size = 0;
  int fd = -1;                                    // the blocking backend's
  std::optional<asio::random_access_file> uring;  // owns its own descriptor
  detail::Admission* uring_reads = nullptr;       // the runtime's bound on `uring` reads

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

File::File(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
File::File(File&& other) noexcept = default;
File& File::operator=(File&& other) noexcept = default;
File::~File() = default;

Task<File> File::open(Runtime& runtime, std::filesystem::path path) {
  // open(2) is a lookup in the dentry cache for local files: done on the
  // worker, where a hop to another thread would cost more than the call.
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer, holding
  // the worker. It is cleared once the file is known not to be one.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    throw path_error(errno, "open", path);
  }
  FdGuard guard(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw path_error(errno, "stat", path);
  }
  if (S_ISDIR(st.st_mode)) {
    throw path_error(EISDIR, "open", path);
  }
  if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
    throw path_error(ESPIPE, "open", path);
  }
  // Reads must wait for data, not fail with EAGAIN: devices (a tty) would,
  // and io_uring may honour O_NONBLOCK even for data not yet in the page
  // cache.
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
    throw path_error(errno, "open", path);
  }
  auto impl = std::make_unique<Impl>();
  impl->path = std::move(path);
  impl->size = static_cast<std::uint64_t>(st.st_size);
  if (detail::use_io_uring_for_files()) {
    try {
      impl->uring.emplace(file_executor(runtime), fd);
      impl->uring_reads = runtime.core().asio_ring_reads;
      guard.release();
    } catch (const std::system_error& e) {
      // Asio sets up its ring on the first file and reports a refusal here.
      detail::io_uring_refused_by_asio(e.what());
      impl->uring.reset();
    }
  }
  if (!impl->uring) {
    impl->fd = guard.release();
  }
  co_return File(std::move(impl));
}

Task<std::size_t> File::read_some_at(std::uint64_t offset, std::span<std::byte> buffer) {
  if (impl_ == nullptr) {
    throw std::logic_error("sluice::File::read_some_at: the File was moved from");
  }
  if (buffer.empty()) {
    co_return 0;
  }
  try {
    if (impl_->uring) {
      const auto permit = co_await AsioRingPermit(*impl_->uring_reads);
      co_return co_await impl_->uring->async_read_some_at(
          offset, asio::buffer(buffer.data(), buffer.size()), use_task);
    }
    co_return co_await BlockingRead(impl_->fd, offset, buffer);
  } catch (const task_error&) {
    throw;  // cancelled or timed out: not a read error
  } catch (const std::system_error& e) {
    if (e.code() == asio::error::eof) {
      co_return 0;
    }
    throw path_error(e.code(), "read", impl_->path);
  }
}

std::uint64_t File::size() const noexcept { return impl_ != nullptr ? impl_->size : 0; }

const std::filesystem::path& File::path() const noexcept {
  static const std::filesystem::path none;
  return impl_ != nullptr ? impl_->path : none;
}

bool File::uses_io_uring() const noexcept { return impl_ != nullptr && impl_->uring.has_value(); }

}  // namespace sluice

namespace sluice {
namespace detail {
namespace {

// Awaits one chain on the FileRing (see file_ring.hpp). Lives in the
// awaiting frame; once the chain is submitted and pending, the reactor owns
// the resumption, and the stop callback (registered before the submission,
// a no-op until then) reaches the ring under its lock.
class ChainRead {
 public:
  ChainRead(FileRing& ring, const std::filesystem::path& path, std::span<std::byte> buffer) noexcept
      : ring_(ring) {
    req_.path = path.c_str();
    req_.buffer = buffer;
  }

  static bool await_ready() noexcept { return false; }

  // Needs a context: the reactor resumes the task on its context's pool.
  template <SluicePromise P>
  bool await_suspend(std::coroutine_handle<P> h) {
    req_.waiter = &h.promise();
    ctx_ = req_.waiter->context();
    on_stop_.emplace(ctx_->stop_token(), Cancel{this});
    if (ctx_->stop_requested()) {
      stopped_ = true;
      return false;
    }
    switch (ring_.submit(req_)) {
      case FileRing::Submitted::done:
        return false;
      case FileRing::Submitted::no_slot:
        no_slot_ = true;
        return false;
      case FileRing::Submitted::stopped:
        stopped_ = true;
        return false;
      case FileRing::Submitted::pending:
        break;
    }
    return true;  // `this` may already be resumed and gone
  }

  // The five results, or nothing when no slot was free.
  std::optional<std::array<int, ChainRequest::kOps>> await_resume() {
    on_stop_.reset();  // waits for a stop callback still running elsewhere
    if (stopped_ || req_.cancel_wanted) {
      throw_error(ctx_->stop_error());
    }
    if (no_slot_) {
      return std::nullopt;
    }
    return req_.results;
  }

 private:
  struct Cancel {
    ChainRead* self;
    void operator()() const noexcept { self->ring_.cancel(self->req_); }
  };

  FileRing& ring_;
  ChainRequest req_;
  TaskContext* ctx_ = nullptr;
  std::optional<std::stop_callback<Cancel>> on_stop_;
  bool stopped_ = false;
  bool no_slot_ = false;
};

}  // namespace

bool file_ring_enabled() noexcept { return use_io_uring_for_files(); }

Task<FirstChunk> read_first_chunk(Runtime& runtime, const std::filesystem::path& path,
                                  std::span<std::byte> buffer) {
  if (!use_io_uring_for_files() || buffer.empty() || co_await CurrentContext{} == nullptr) {
    co_return FirstChunk{};
  }
  FileRing* ring = runtime.core().file_ring->get();
  if (ring == nullptr || ring->disabled()) {
    co_return FirstChunk{};
  }
  const auto results = co_await ChainRead(*ring, path, buffer);
  if (!results) {
    co_return FirstChunk{};  // every slot busy: File serves this one
  }
  const int open = (*results)[ChainRequest::kOpen];
  const int advise = (*results)[ChainRequest::kAdvise];
  const int read = (*results)[ChainRequest::kRead];
  const int probe = (*results)[ChainRequest::kProbe];
  if (open == -EINVAL) {
    // A kernel that takes the opcodes but not a direct slot for OPENAT.
    ring->disable();
    co_return FirstChunk{};
  }
  if (open < 0) {
    throw path_error(-open, "open", path);
  }
  if (advise == -ESPIPE) {
    throw path_error(ESPIPE, "open", path);  // a FIFO, refused as File::open does
  }
  if (advise < 0) {
    co_return FirstChunk{};  // a file type we did not foresee: File decides
  }
  if (read == -EISDIR) {
    throw path_error(EISDIR, "open", path);
  }
  if (read == -EAGAIN || read == -ECANCELED) {
    co_return FirstChunk{};  // a device without data (O_NONBLOCK): File waits
  }
  if (read < 0) {
    throw path_error(-read, "read", path);
  }
  const auto got = static_cast<std::size_t>(read);
  if (got < buffer.size() && probe == 0) {
    co_return FirstChunk{FirstChunk::Status::complete, got};
  }
  // Full, or short before the end (a pseudo-file, or the probe failed):
  // File goes on from here and reports any error itself.
  co_return FirstChunk{FirstChunk::Status::more, got};
}

}  // namespace detail

Task<std::size_t> read_whole_file(Runtime& runtime, std::filesystem::path path,
                                  std::span<std::byte> buffer) {
  std::uint64_t offset = 0;
  if (!buffer.empty()) {
    const auto first = co_await detail::read_first_chunk(runtime, path, buffer);
    if (first.status == detail::FirstChunk::Status::complete) {
      co_return first.bytes;
    }
    offset = first.bytes;
  }
  File file = co_await File::open(runtime, std::move(path));
  const std::uint64_t size = file.size();
  while (offset < buffer.size()) {
    const std::size_t got = co_await file.read_some_at(offset, buffer.subspan(offset));
    if (got == 0) {
      break;
    }
    offset += got;
    if (size != 0 && offset >= size && offset < buffer.size()) {
      break;  // a regular file's end, as read_file_chunks finds it
    }
  }
  co_return static_cast<std::size_t>(offset);
}

}  // namespace sluice
