#include "io/file_ring.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>

#include "log.hpp"
#include "sluice/detail/promise.hpp"

namespace sluice::detail {
namespace {

std::uint64_t user_data(ChainRequest& req, unsigned op) noexcept {
  return reinterpret_cast<std::uintptr_t>(&req) | op;
}

[[noreturn]] void fail(int error, const char* what) {
  throw std::system_error(error, std::generic_category(), what);
}

// Opcodes of the chain and of cancellation; an older kernel lacks some.
void require_opcodes(io_uring& ring) {
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  if (probe == nullptr) {
    fail(ENOSYS, "io_uring_get_probe_ring");
  }
  bool ok = true;
  for (const int op : {IORING_OP_OPENAT, IORING_OP_FADVISE, IORING_OP_READ, IORING_OP_CLOSE,
                       IORING_OP_ASYNC_CANCEL}) {
    ok = ok && io_uring_opcode_supported(probe, op) != 0;
  }
  io_uring_free_probe(probe);
  if (!ok) {
    fail(EINVAL, "io_uring opcodes OPENAT, FADVISE, READ, CLOSE, ASYNC_CANCEL");
  }
}

int make_eventfd() {
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    fail(errno, "eventfd");
  }
  return fd;
}

}  // namespace

FileRing::FileRing(asio::io_context& io) : event_(io) {
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = kCqEntries;
  if (const int rc = io_uring_queue_init_params(kSqEntries, &ring_, &params); rc < 0) {
    fail(-rc, "io_uring_queue_init_params");
  }
  try {
    require_opcodes(ring_);
    if (const int rc = io_uring_register_files_sparse(&ring_, kSlots); rc < 0) {
      fail(-rc, "io_uring_register_files_sparse");
    }
    const int efd = make_eventfd();
    event_.assign(efd);  // owns it from here
    if (const int rc = io_uring_register_eventfd(&ring_, efd); rc < 0) {
      fail(-rc, "io_uring_register_eventfd");
    }
  } catch (...) {
    io_uring_queue_exit(&ring_);
    throw;
  }
  free_slots_.reserve(kSlots);
  for (std::uint32_t s = kSlots; s > 0; --s) {
    free_slots_.push_back(s - 1);
  }
  arm();
}

FileRing::~FileRing() {
  // Normally nothing is in flight: the runtime drained its tasks first. A
  // chain left by a task that never finished is cancelled and waited for
  // (bounded), so the kernel is done with its buffer before the ring goes;
  // its task is not resumed (the pool is stopped).
  {
    std::lock_guard lock(mutex_);
    if (in_flight_ != 0) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (sqe != nullptr) {
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(sqe, 0);
        io_uring_submit(&ring_);
      }
    }
    for (int round = 0; in_flight_ != 0 && round < 100; ++round) {
      __kernel_timespec ts{.tv_sec = 0, .tv_nsec = 10'000'000};
      io_uring_cqe* cqe = nullptr;
      io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
      ChainRequest* finished = nullptr;
      reap_locked(finished);
    }
  }
  std::error_code ignored;
  event_.close(ignored);  // the reactor is stopped: its wait is dropped unrun
  io_uring_queue_exit(&ring_);
}

void FileRing::arm() {
  event_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const std::error_code& ec) {
    if (!ec) {
      on_ready();
    }
  });
}

void FileRing::on_ready() noexcept {
  // Reset the eventfd's counter; every CQE is found in the CQ anyway.
  std::uint64_t count = 0;
  while (::read(event_.native_handle(), &count, sizeof count) < 0 && errno == EINTR) {
  }
  ChainRequest* finished = nullptr;
  {
    std::lock_guard lock(mutex_);
    reap_locked(finished);
  }
  try {
    arm();
  } catch (const std::exception& e) {
    log().error("the small-file ring cannot watch its eventfd: {}", e.what());
  }
  // A CQE posted between the reap and the re-arm signalled an eventfd no one
  // waited on: look once more.
  {
    std::lock_guard lock(mutex_);
    reap_locked(finished);
  }
  schedule_all(finished);
}

void FileRing::schedule_all(ChainRequest* finished) noexcept {
  while (finished != nullptr) {
    ChainRequest* req = finished;
    finished = req->next;
    req->waiter->schedule();  // last touch: the task may free req from here
  }
}

void FileRing::reap_locked(ChainRequest*& finished) noexcept {
  ChainRequest* recancel = nullptr;
  unsigned head = 0;
  unsigned seen = 0;
  io_uring_cqe* cqe = nullptr;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++seen;
    const std::uint64_t data = cqe->user_data;
    if (data == 0) {
      continue;  // the destructor's cancel
    }
    auto* req = reinterpret_cast<ChainRequest*>(data & ~std::uint64_t{7});
    const auto op = static_cast<unsigned>(data & 7);
    if (op == ChainRequest::kCancel) {
      --req->cancels;
    } else {
      req->results[op] = cqe->res;
      req->done |= 1U << op;
    }
    if (--req->remaining == 0) {
      free_slots_.push_back(req->slot);
      --in_flight_;
      req->next = finished;
      finished = req;
    } else if (req->cancel_wanted && req->cancels == 0) {
      // The last round of cancels is back but the chain goes on: another
      // round once the CQ is advanced (a request not yet issued when a
      // cancel came is not found by it).
      req->next = recancel;
      recancel = req;
    }
  }
  io_uring_cq_advance(&ring_, seen);
  bool submit = false;
  while (recancel != nullptr) {
    ChainRequest* req = recancel;
    recancel = req->next;
    req->next = nullptr;
    if (req->remaining != 0 && req->cancels == 0) {
      cancel_locked(*req);
      submit = submit || req->cancels != 0;
    }
  }
  if (submit) {
    submit_locked();
  }
}

void FileRing::cancel_locked(ChainRequest& req) noexcept {
  // The CLOSE is never cancelled: it is quick and frees the slot.
  for (unsigned op = ChainRequest::kOpen; op < ChainRequest::kClose; ++op) {
    if ((req.done & (1U << op)) != 0) {
      continue;
    }
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      submit_locked();
      sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) {
        return;  // the chain is left to finish by itself
      }
    }
    io_uring_prep_cancel64(sqe, user_data(req, op), 0);
    io_uring_sqe_set_data64(sqe, user_data(req, ChainRequest::kCancel));
    ++req.cancels;
    ++req.remaining;
  }
}

void FileRing::submit_locked() noexcept {
  // Submission fails only transiently (EAGAIN, EBUSY, EINTR): whatever is
  // left in the SQ goes with the next call, so retry until it is taken.
  while (io_uring_sq_ready(&ring_) != 0) {
    const int rc = io_uring_submit(&ring_);
    if (rc > 0) {
      continue;
    }
    if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR) {
      log().error("io_uring_submit on the small-file ring: {}", std::strerror(-rc));
    }
    std::this_thread::yield();
  }
}

FileRing::Submitted FileRing::submit(ChainRequest& req) noexcept {
  ChainRequest* finished = nullptr;
  bool done_here = false;
  {
    std::lock_guard lock(mutex_);
    const TaskContext* ctx = req.waiter->context();
    if (ctx != nullptr && ctx->stop_requested()) {
      return Submitted::stopped;
    }
    // Five SQEs at once: a chain must not be split across two submits.
    if (free_slots_.empty()) {
      return Submitted::no_slot;
    }
    if (io_uring_sq_space_left(&ring_) < ChainRequest::kOps) {
      submit_locked();
    }
    req.slot = free_slots_.back();
    free_slots_.pop_back();
    req.done = 0;
    req.cancels = 0;
    req.remaining = ChainRequest::kOps;
    ++in_flight_;
    chains_.fetch_add(1, std::memory_order_relaxed);
    const auto slot = static_cast<int>(req.slot);

    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    // O_NONBLOCK: a FIFO's open does not wait for a writer (FADVISE then
    // refuses it). No O_CLOEXEC: the kernel rejects it for direct slots,
    // which no exec inherits anyway.
    io_uring_prep_openat_direct(sqe, AT_FDCWD, req.path, O_RDONLY | O_NONBLOCK, 0, req.slot);
    io_uring_sqe_set_data64(sqe, user_data(req, ChainRequest::kOpen));
    sqe->flags |= IOSQE_IO_LINK;

    sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_fadvise(sqe, slot, 0, 0, POSIX_FADV_SEQUENTIAL);
    io_uring_sqe_set_data64(sqe, user_data(req, ChainRequest::kAdvise));
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_LINK;

    // Offset -1: at the file position, so that the probe reads on from
    // wherever the first read ended.
    sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_read(sqe, slot, req.buffer.data(), static_cast<unsigned>(req.buffer.size()),
                       static_cast<std::uint64_t>(-1));
    io_uring_sqe_set_data64(sqe, user_data(req, ChainRequest::kRead));
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_HARDLINK;

    sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_read(sqe, slot, &req.probe, 1, static_cast<std::uint64_t>(-1));
    io_uring_sqe_set_data64(sqe, user_data(req, ChainRequest::kProbe));
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_HARDLINK;

    sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_close_direct(sqe, req.slot);
    io_uring_sqe_set_data64(sqe, user_data(req, ChainRequest::kClose));

    submit_locked();
    reap_locked(finished);
    // Our own chain, if it is done, is ours to continue: take it off the list.
    for (ChainRequest** link = &finished; *link != nullptr; link = &(*link)->next) {
      if (*link == &req) {
        *link = req.next;
        done_here = true;
        break;
      }
    }
  }
  schedule_all(finished);
  return done_here ? Submitted::done : Submitted::pending;
}

void FileRing::cancel(ChainRequest& req) noexcept {
  std::lock_guard lock(mutex_);
  if (req.remaining == 0 || req.cancel_wanted) {
    return;  // not submitted, already finished, or being cancelled
  }
  req.cancel_wanted = true;
  cancel_locked(req);
  submit_locked();
}

FileRing* FileRingHolder::get() noexcept {
  const auto state = state_.load(std::memory_order_acquire);
  if (state != 0) {
    return state == 1 ? ring_.get() : nullptr;
  }
  std::lock_guard lock(mutex_);
  if (state_.load(std::memory_order_relaxed) == 0) {
    try {
      ring_ = std::make_unique<FileRing>(io_);
      state_.store(1, std::memory_order_release);
    } catch (const std::exception& e) {
      static std::atomic<bool> logged{false};
      if (!logged.exchange(true, std::memory_order_relaxed)) {
        try {
          log().info("small-file reads use the File path: sluice's ring is unavailable ({})",
                     e.what());
        } catch (...) {  // logging must not turn a fallback into a failure
        }
      }
      state_.store(2, std::memory_order_release);
    }
  }
  return state_.load(std::memory_order_relaxed) == 1 ? ring_.get() : nullptr;
}

}  // namespace sluice::detail
