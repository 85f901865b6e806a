#pragma once

#include <atomic>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <sluice/join_handle.hpp>

namespace serve {

/// The server's open connections, so that a graceful shutdown can close the
/// idle ones at once instead of leaving them to the deadline.
///
/// A connection is idle while it waits for the first byte of its next
/// request. Going idle and the drain race; two seq_cst flags settle it: a
/// connection sets `idle` and then reads `draining`, the drain sets
/// `draining` and then reads `idle` (Dekker), so at least one sees the
/// other. Either the connection sees the drain and closes instead of
/// reading, or the drain sees it idle and cancels its task, which ends the
/// read in flight, or fails it at once if it has not started (use_task
/// refuses to start an operation for a stopped task).
///
/// A request arriving just as the drain cancels its idle connection loses
/// the race and finds the connection closed, as it would with any server
/// closing an idle keep-alive connection.
///
/// Thread safety: every member may be called from any thread.
class ConnectionRegistry {
 public:
  class Entry {
   public:
    explicit Entry(ConnectionRegistry& registry) noexcept : registry_(&registry) {}

    /// Called before waiting for a new request. False: the server is
    /// draining; close instead of waiting.
    [[nodiscard]] bool enter_idle() noexcept {
      idle_.store(true, std::memory_order_seq_cst);
      return !registry_->draining();
    }
    /// A request has started to arrive.
    void leave_idle() noexcept { idle_.store(false, std::memory_order_seq_cst); }
    /// The drain cancelled this connection while it was idle.
    [[nodiscard]] bool closed_by_drain() const noexcept {
      return drained_.load(std::memory_order_acquire);
    }
    /// The server is shutting down: answer with Connection: close.
    [[nodiscard]] bool draining() const noexcept { return registry_->draining(); }

   private:
    friend class ConnectionRegistry;

    ConnectionRegistry* registry_;
    std::atomic<bool> idle_{false};  // written by the connection; read by drain()
    // Written by drain() under the mutex; read by attach() under it and by
    // the connection once its read was stopped. release/acquire is enough:
    // drain() stores it before it requests that stop.
    std::atomic<bool> drained_{false};
    sluice::JoinHandle<void> handle_;                       // guarded by the registry's mutex
    bool listed_ = false;                                   // guarded by the registry's mutex
    std::list<std::shared_ptr<Entry>>::iterator position_;  // guarded by the mutex
  };

  /// Lists a connection about to be spawned.
  [[nodiscard]] std::shared_ptr<Entry> add();
  /// Gives the entry its task's handle, so drain() can cancel it. A task that
  /// already ended and removed itself just drops the handle.
  void attach(Entry& entry, sluice::JoinHandle<void> handle);
  /// Unlists a connection (its task is ending).
  void remove(Entry& entry) noexcept;

  struct Drained {
    std::size_t open = 0;  ///< connections listed when the drain began
    std::size_t idle = 0;  ///< of which idle, and cancelled
  };
  /// Starts the shutdown: connections close instead of waiting for another
  /// request, and the idle ones are cancelled now.
  Drained drain();
  [[nodiscard]] bool draining() const noexcept { return draining_.load(std::memory_order_seq_cst); }

 private:
  std::mutex mutex_;
  std::list<std::shared_ptr<Entry>> entries_;  // guarded by mutex_
  std::atomic<bool> draining_{false};          // written once by drain(); read by connections
};

}  // namespace serve
