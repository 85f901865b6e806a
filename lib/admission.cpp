#include "sluice/detail/admission.hpp"

namespace sluice::detail {

bool Admission::acquire_or_wait(AdmissionWaiter* w) noexcept {
  std::unique_lock lock(mutex_);
  if (closed_.load(std::memory_order_acquire)) {
    w->error = close_error_;
    return false;
  }
  if (w->owner_closed != nullptr && w->owner_closed(w)) {
    w->error = errc::shutting_down;  // see AdmissionWaiter::owner_closed
    return false;
  }
  if (head_ == nullptr && cas_acquire()) {
    return false;  // got a slot without waiting
  }
  w->next = nullptr;
  w->prev = tail_;
  if (tail_ != nullptr) {
    tail_->next = w;
  } else {
    head_ = w;
  }
  tail_ = w;
  waiting_.fetch_add(1, std::memory_order_seq_cst);
  // Retry after publishing waiting_: a release that ran just before it did
  // not see us. Serve from the head to keep FIFO.
  if (head_ == w && cas_acquire()) {
    pop_head();
    return false;
  }
  return true;
}

AdmissionWaiter* Admission::pop_head() noexcept {
  AdmissionWaiter* w = head_;
  unlink(w);
  waiting_.fetch_sub(1, std::memory_order_seq_cst);
  return w;
}

void Admission::unlink(AdmissionWaiter* w) noexcept {
  (w->prev != nullptr ? w->prev->next : head_) = w->next;
  (w->next != nullptr ? w->next->prev : tail_) = w->prev;
  w->prev = w->next = nullptr;
}

void Admission::release() noexcept {
  AdmissionWaiter* ready = nullptr;
  if (waiting_.load(std::memory_order_seq_cst) == 0) {
    used_.fetch_sub(1, std::memory_order_seq_cst);
    if (waiting_.load(std::memory_order_seq_cst) == 0) {
      return;  // a producer queueing after this point finds the slot itself
    }
    // A producer queued meanwhile: serve the oldest if the slot is still free.
    std::lock_guard lock(mutex_);
    if (head_ != nullptr && cas_acquire()) {
      ready = pop_head();
    }
  } else {
    std::lock_guard lock(mutex_);
    if (head_ != nullptr) {
      ready = pop_head();  // the slot changes hands; used_ stays
    } else {
      used_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }
  if (ready != nullptr) {
    ready->on_ready(ready);
  }
}

AdmissionWaiter* unlink_owned(AdmissionWaiter*& head, AdmissionWaiter*& tail, const void* owner,
                              std::size_t& count) noexcept {
  AdmissionWaiter* taken = nullptr;
  AdmissionWaiter** taken_end = &taken;
  AdmissionWaiter* prev = nullptr;
  for (AdmissionWaiter* w = head; w != nullptr;) {
    AdmissionWaiter* next = w->next;
    if (w->owner == owner) {
      (prev != nullptr ? prev->next : head) = next;
      if (tail == w) {
        tail = prev;
      }
      w->next = nullptr;
      *taken_end = w;
      taken_end = &w->next;
      ++count;
    } else {
      prev = w;
    }
    w = next;
  }
  return taken;
}

void wake_refused(AdmissionWaiter* list, errc error) noexcept {
  while (list != nullptr) {
    AdmissionWaiter* next = list->next;  // before on_ready: it may free the waiter
    list->error = error;
    list->on_ready(list);
    list = next;
  }
}

void Admission::withdraw(const void* owner, errc error) noexcept {
  AdmissionWaiter* list = nullptr;
  {
    std::lock_guard lock(mutex_);
    AdmissionWaiter** list_end = &list;
    std::size_t removed = 0;
    for (AdmissionWaiter* w = head_; w != nullptr;) {
      AdmissionWaiter* next = w->next;
      if (w->owner == owner) {
        unlink(w);
        *list_end = w;  // relinked through `next` for wake_refused
        list_end = &w->next;
        ++removed;
      }
      w = next;
    }
    waiting_.fetch_sub(removed, std::memory_order_seq_cst);
  }
  wake_refused(list, error);
}

bool Admission::withdraw_one(AdmissionWaiter* w, errc error) noexcept {
  {
    std::lock_guard lock(mutex_);
    if (!queued(w)) {
      return false;
    }
    unlink(w);
    waiting_.fetch_sub(1, std::memory_order_seq_cst);
  }
  wake_refused(w, error);  // w->next is null: wakes w alone
  return true;
}

void Admission::close(errc error) noexcept {
  AdmissionWaiter* list = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (closed_.load(std::memory_order_relaxed)) {
      return;
    }
    close_error_ = error;
    closed_.store(true, std::memory_order_release);
    list = head_;
    for (AdmissionWaiter* w = list; w != nullptr; w = w->next) {
      w->prev = nullptr;  // no longer queued (see queued())
    }
    head_ = tail_ = nullptr;
    waiting_.store(0, std::memory_order_seq_cst);
  }
  wake_refused(list, error);
}

}  // namespace sluice::detail
