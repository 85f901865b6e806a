#include "io/blocking_pool.hpp"

#include <pthread.h>

namespace sluice::detail {

BlockingPool& BlockingPool::instance() {
  static BlockingPool pool;  // started by the first fallback read, joined at exit
  return pool;
}

BlockingPool::BlockingPool() {
  threads_.reserve(kThreads);
  for (std::size_t i = 0; i < kThreads; ++i) {
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "sluice-blocking");
      work();
    });
  }
}

BlockingPool::~BlockingPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) {
    t.join();
  }
}

bool BlockingPool::submit(BlockingJob* job) noexcept {
  {
    std::lock_guard lock(mutex_);
    if (job->stopped != nullptr && job->stopped(job)) {
      return false;
    }
    if (!stopping_) {
      job->queued = true;
      job->prev = tail_;
      job->next = nullptr;
      (tail_ != nullptr ? tail_->next : head_) = job;
      tail_ = job;
      ready_.notify_one();
      return true;
    }
  }
  job->run(job);  // the threads are gone (static destruction): block here
  return true;
}

bool BlockingPool::withdraw(BlockingJob* job) noexcept {
  std::lock_guard lock(mutex_);
  if (!job->queued) {
    return false;
  }
  (job->prev != nullptr ? job->prev->next : head_) = job->next;
  (job->next != nullptr ? job->next->prev : tail_) = job->prev;
  job->queued = false;
  return true;
}

void BlockingPool::work() noexcept {
  std::unique_lock lock(mutex_);
  for (;;) {
    // Jobs queued before stop still run: their tasks are waiting for them.
    ready_.wait(lock, [this] { return head_ != nullptr || stopping_; });
    if (head_ == nullptr) {
      return;
    }
    BlockingJob* job = head_;
    head_ = job->next;
    (head_ != nullptr ? head_->prev : tail_) = nullptr;
    job->queued = false;
    lock.unlock();
    job->run(job);  // may resume (and free) the job's frame: not touched after
    lock.lock();
  }
}

}  // namespace sluice::detail
