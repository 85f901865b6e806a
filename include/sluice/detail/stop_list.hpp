#pragma once

#include <mutex>

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
/// on_stop runs under the list's mutex, so once remove() returns, the
/// entry's on_stop is neither running nor going to run, and the waiter may
/// free it. Hence on_stop must not add or remove entries of the same list
/// (nor wait for a thread that does); it may take other locks taken after
/// this one, and schedule tasks.
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
  StopEntry head_{nullptr};  // sentinel of a circular list; guarded by mutex_
  bool fired_ = false;       // guarded by mutex_
};

}  // namespace sluice::detail
