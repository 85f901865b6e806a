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
  entry.on_stop(&entry);  // outside the lock, as fire() would have run it
  return false;
}

void StopList::remove(StopEntry& entry) noexcept {
  std::lock_guard lock(mutex_);  // held by fire() while it runs on_stop
  if (entry.next != nullptr) {
    entry.prev->next = entry.next;
    entry.next->prev = entry.prev;
    entry.prev = entry.next = nullptr;
  }
}

void StopList::fire() noexcept {
  std::lock_guard lock(mutex_);
  if (fired_) {
    return;
  }
  fired_ = true;
  while (head_.next != &head_) {
    StopEntry* entry = head_.next;
    head_.next = entry->next;
    entry->next->prev = &head_;
    entry->prev = entry->next = nullptr;
    entry->on_stop(entry);
  }
}

}  // namespace sluice::detail
