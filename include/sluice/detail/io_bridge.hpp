#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>

#include "sluice/detail/frame_allocator.hpp"
#include "sluice/detail/stop_list.hpp"

namespace sluice::detail {

class PromiseBase;

/// Connects a task's stop requests to the Asio operation it awaits.
///
/// One per task, made on its first use_task operation and shared (reference
/// counted) with emits still queued. Asio 1.22's cancellation_signal is not
/// thread-safe, and an operation's own steps (a composed read's next
/// read_some, its completion) run on the I/O object's executor. So:
///   - arm() installs the operation under mutex_ (the task's worker);
///   - cancel() (any thread) posts the emit to that executor, where it runs
///     serialised with the operation, and emits under mutex_ only if still
///     armed;
///   - disarm() (the completion, on that executor) clears the slot, which
///     1.22 leaves installed, so a late emit never reaches a dead operation.
/// With one reactor thread the io_context is that serialising executor; with
/// more, create I/O objects on a strand (asio::make_strand(rt.io_context())).
class IoBridge : private StopEntry {
 public:
  /// A one-byte lock: the bridge is per task, and contention is rare (a
  /// cancel racing the operation's own steps). Spins briefly, then yields.
  class Lock {
   public:
    void lock() noexcept {
      // acquire: pairs with unlock's release.
      for (int spins = 0; held_.exchange(1, std::memory_order_acquire) != 0;) {
        while (held_.load(std::memory_order_relaxed) != 0) {
          if (++spins > 64) {
            std::this_thread::yield();
          }
        }
      }
    }
    void unlock() noexcept { held_.store(0, std::memory_order_release); }

   private:
    std::atomic<std::uint8_t> held_{0};
  };

  IoBridge() noexcept : StopEntry(&on_scope_stop) {}
  IoBridge(const IoBridge&) = delete;
  IoBridge& operator=(const IoBridge&) = delete;
  ~IoBridge() { leave_stop_list(); }

  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete this;
    }
  }

  /// Marks an operation in flight; false (nothing armed) if stop was already
  /// requested, checked under the lock so a concurrent cancel() is not lost.
  template <class StopRequested>
  bool arm(asio::any_io_executor executor, StopList* scope_waits, StopRequested&& stop_requested) {
    if (scope_waits != nullptr) {
      // Outside the lock: cancel() runs at once if the scope's stop fired.
      leave_stop_list();
      if (scope_waits->add(*this)) {
        stop_list_ = scope_waits;
      }
    }
    std::lock_guard lock(mutex_);
    if (stop_requested()) {
      return false;
    }
    executor_ = std::move(executor);
    armed_ = true;
    return true;
  }

  [[nodiscard]] asio::cancellation_slot slot() noexcept { return signal_.slot(); }

  /// Holds the bridge's lock around an operation's initiation (a concurrent
  /// cancel waits for it). A completion that runs inline, inside the
  /// initiation on this thread, disarms without taking the lock again, and
  /// leaves the task's resumption to the initiator, after the unlock: resumed
  /// earlier, the task could finish and free the bridge while it is locked.
  class Initiating {
   public:
    explicit Initiating(IoBridge& bridge) noexcept : bridge_(bridge) {
      bridge_.mutex_.lock();
      set_active(this);
    }
    ~Initiating() {
      set_active(nullptr);
      bridge_.mutex_.unlock();
      if (leave_list_after_unlock) {
        bridge_.leave_stop_list();  // see disarm()
      }
    }
    Initiating(const Initiating&) = delete;
    Initiating& operator=(const Initiating&) = delete;

    /// The initiation of `bridge`'s operation running on this thread, if any.
    static Initiating* active_for(const IoBridge* bridge) noexcept {
      Initiating* active = get_active();
      return active != nullptr && &active->bridge_ == bridge ? active : nullptr;
    }

    /// Set by an inline completion: the task to resume after the unlock.
    PromiseBase* inline_waiter = nullptr;
    /// Set by an inline completion: leave the scope's StopList after the
    /// unlock (see disarm()).
    bool leave_list_after_unlock = false;

    /// Call after the initiation, still under the lock. A stop that came
    /// between arm() and the initiation posted an emit that may have run
    /// before the operation installed its cancellation handler, and was
    /// lost; the operation is now installed, so cancel it here.
    template <class StopRequested>
    void cancel_if_stopped(StopRequested&& stop_requested) noexcept {
      if (bridge_.armed_ && stop_requested()) {
        bridge_.emitted_ = true;
        bridge_.signal_.emit(asio::cancellation_type::terminal);
      }
    }

   private:
    // The calling thread's active initiation. Out of line (lib/
    // task_context.cpp) on purpose: inlined into a coroutine, a thread_local
    // access may reuse the address computed on the thread the coroutine ran
    // on before it was resumed on another (clang does).
    static Initiating* get_active() noexcept;
    static void set_active(Initiating* initiating) noexcept;

    IoBridge& bridge_;
  };

  /// The operation completed: forget it. Runs on the operation's executor.
  /// Returns whether a cancellation was emitted to it.
  bool disarm() noexcept {
    Initiating* inline_completion = Initiating::active_for(this);  // holds the lock
    if (inline_completion == nullptr) {
      mutex_.lock();
    }
    armed_ = false;
    const bool emitted = emitted_;
    emitted_ = false;
    signal_.slot().clear();
    // Outside the lock: leaving the list waits for this bridge's on_stop if
    // the scope's stop is running it, and that cancel() takes the lock.
    if (inline_completion == nullptr) {
      mutex_.unlock();
      leave_stop_list();
    } else {
      inline_completion->leave_list_after_unlock = true;
    }
    return emitted;
  }

  /// From any thread: cancels the operation in flight, if any.
  void cancel() noexcept {
    std::lock_guard lock(mutex_);
    if (!armed_) {
      return;
    }
    add_ref();
    try {
      asio::post(executor_, [this] {
        {
          std::lock_guard inner(mutex_);
          if (armed_) {
            emitted_ = true;
            signal_.emit(asio::cancellation_type::terminal);
          }
        }
        release();
      });
    } catch (...) {  // the executor refused: nothing in flight to cancel
      refs_.fetch_sub(1, std::memory_order_relaxed);
    }
  }

 private:
  static void on_scope_stop(StopEntry* entry) noexcept { static_cast<IoBridge*>(entry)->cancel(); }

  // Called by arm() and disarm() only, both from the task's own operation.
  void leave_stop_list() noexcept {
    if (stop_list_ != nullptr) {
      stop_list_->remove(*this);
      stop_list_ = nullptr;
    }
  }

  // The small fields share one word (the bridge is allocated per task).
  std::atomic<std::uint32_t> refs_{1};
  Lock mutex_;
  bool armed_ = false;                // guarded by mutex_
  bool emitted_ = false;              // guarded by mutex_: cancelled since arm()
  asio::cancellation_signal signal_;  // guarded by mutex_ (emit, clear, install)
  asio::any_io_executor executor_;    // guarded by mutex_
  // The scope's StopList while an operation is armed and linked in it.
  StopList* stop_list_ = nullptr;
};

}  // namespace sluice::detail
