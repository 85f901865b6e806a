#include "sluice/detail/stop_list.hpp"

namespace sluice::detail {

bool StopList::add(StopEntry& entry) noexcept {
  {
    std::lock_guard lock(mutex_);
    if (!fired_) {
      entry.prev = head_.prev;
      entry.next = &head_;
      head_.prev->next = &entry;
      head_.prev = &entry;
      return true;
    }
  }
  entry.on_stop(&entry);
  return false;
}

void StopList::remove(StopEntry& entry) noexcept {
  std::unique_lock lock(mutex_);
  if (entry.next != nullptr) {
    entry.prev->next = entry.next;
    entry.next->prev = entry.prev;
    entry.prev = entry.next = nullptr;
    return;
  }
  // Unlinked by fire(): wait if its on_stop is still running elsewhere
  // (from inside that on_stop, on fire()'s own thread, it would never end).
  if (running_ == &entry && firing_ != std::this_thread::get_id()) {
    ++removers_waiting_;
    ran_.wait(lock, [&] { return running_ != &entry; });
    --removers_waiting_;
  }
}

void StopList::fire() noexcept {
  std::unique_lock lock(mutex_);
  if (fired_) {
    return;
  }
  fired_ = true;
  firing_ = std::this_thread::get_id();
  while (head_.next != &head_) {
    StopEntry* entry = head_.next;
    head_.next = entry->next;
    entry->next->prev = &head_;
    entry->prev = entry->next = nullptr;
    running_ = entry;
    lock.unlock();
    entry->on_stop(entry);  // the entry stays alive: its remove() waits for this
    lock.lock();
    running_ = nullptr;
    if (removers_waiting_ != 0) {
      ran_.notify_all();
    }
  }
  firing_ = std::thread::id();
}

}  // namespace sluice::detail
