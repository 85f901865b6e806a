#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

namespace sluice::detail {

/// A wait that its scope's stop must reach (a sleep, an Asio operation), as
/// an entry in the scope's StopList. Waiters derive from it, so on_stop gets
/// its waiter back with a static_cast. Three words, where a
/// std::stop_callback in the waiting frame takes seven.
struct StopEntry {
  using Fn = void (*)(StopEntry*) noexcept;

  explicit StopEntry(Fn fn) noexcept : on_stop(fn) {}
  StopEntry(const StopEntry&) = delete;
  StopEntry& operator=(const StopEntry&) = delete;

  Fn on_stop;
  // Guarded by the list's mutex: null while the entry is not linked.
  StopEntry* prev = nullptr;
  StopEntry* next = nullptr;
};

/// The waits of one scope's tasks that its stop must reach. The scope fires
/// it once, after its stop_source: every linked entry's on_stop runs then,
/// and an entry added later runs it at once instead of being linked.
///
/// As with std::stop_callback, on_stop runs outside the list's mutex, one
/// entry at a time, and remove() of the entry whose on_stop is running on
/// another thread waits until it returns: once remove() returns, the
/// entry's on_stop is neither running nor going to run, and the waiter may
/// free it. So a thread must not remove its entry while it holds something
/// that entry's on_stop waits for.
class StopList {
 public:
  StopList() noexcept { head_.prev = head_.next = &head_; }
  StopList(const StopList&) = delete;
  StopList& operator=(const StopList&) = delete;

  /// Links `entry`; true. If the list has fired, runs its on_stop at once
  /// (on this thread) instead and returns false.
  bool add(StopEntry& entry) noexcept;

  /// Unlinks `entry` if it is linked. Waits for its on_stop if another
  /// thread is running it.
  void remove(StopEntry& entry) noexcept;

  /// Runs every linked entry's on_stop, once, and makes later add()s run
  /// theirs at once. The second and later calls do nothing.
  void fire() noexcept;

 private:
  std::mutex mutex_;
  std::condition_variable ran_;   // signalled when running_ is cleared
  StopEntry head_{nullptr};       // sentinel of a circular list; guarded by mutex_
  StopEntry* running_ = nullptr;  // whose on_stop fire() runs now; guarded by mutex_
  std::thread::id firing_;        // the thread running fire(); guarded by mutex_
  int removers_waiting_ = 0;      // guarded by mutex_
  bool fired_ = false;            // guarded by mutex_
};

}  // namespace sluice::detail
