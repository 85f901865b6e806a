#include "connection_registry.hpp"

#include <utility>

namespace serve {

std::shared_ptr<ConnectionRegistry::Entry> ConnectionRegistry::add() {
  auto entry = std::make_shared<Entry>(*this);
  std::lock_guard lock(mutex_);
  entry->position_ = entries_.insert(entries_.end(), entry);
  entry->listed_ = true;
  return entry;
}

void ConnectionRegistry::attach(Entry& entry, sluice::JoinHandle<void> handle) {
  std::lock_guard lock(mutex_);
  if (!entry.listed_) {
    return;  // the connection is over; the handle detaches
  }
  if (entry.drained_.load(std::memory_order_relaxed)) {  // relaxed: drain() stores it under mutex_
    handle.cancel();  // drain() found it idle before it had a handle
  }
  entry.handle_ = std::move(handle);
}

void ConnectionRegistry::remove(Entry& entry) noexcept {
  sluice::JoinHandle<void> handle;
  std::shared_ptr<Entry> keep;
  {
    std::lock_guard lock(mutex_);
    if (!entry.listed_) {
      return;
    }
    entry.listed_ = false;
    handle = std::move(entry.handle_);
    keep = std::move(*entry.position_);
    entries_.erase(entry.position_);
  }
  // `handle` and `keep` are released here, outside the lock.
}

ConnectionRegistry::Drained ConnectionRegistry::drain() {
  std::lock_guard lock(mutex_);
  draining_.store(true, std::memory_order_seq_cst);
  Drained counts{.open = entries_.size()};
  for (const auto& entry : entries_) {
    if (entry->idle_.load(std::memory_order_seq_cst)) {
      entry->drained_.store(true, std::memory_order_release);
      entry->handle_.cancel();  // no handle yet: attach() cancels
      ++counts.idle;
    }
  }
  return counts;
}

}  // namespace serve
