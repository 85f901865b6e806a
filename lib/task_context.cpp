#include "sluice/detail/task_context.hpp"

#include <optional>
#include <thread>

#include "sluice/detail/io_bridge.hpp"
#include "sluice/detail/scope_state.hpp"
#include "sluice/detail/sleep.hpp"

namespace sluice::detail {

/// A task's own std::stop_source, linked to its scope's.
struct OwnStop {
  struct Forward {
    std::stop_source* source;
    void operator()() const noexcept { source->request_stop(); }
  };
  std::stop_source source;
  std::optional<std::stop_callback<Forward>> scope_link;
};

TaskContext::~TaskContext() {
  delete own_stop_.load(std::memory_order_acquire);
  const auto wait = wait_.load(std::memory_order_acquire);
  if (wait != 0) {  // never a sleep: the task has finished
    reinterpret_cast<IoBridge*>(wait)->release();
  }
}

void TaskContext::request_stop(errc reason) noexcept {
  std::uint8_t none = 0;
  // seq_cst: pairs with io_bridge()/stop_token() publishing their objects,
  // so either they see the reason or this sees them.
  stop_reason_.compare_exchange_strong(none, static_cast<std::uint8_t>(reason),
                                       std::memory_order_seq_cst);
  if (OwnStop* own = own_stop_.load(std::memory_order_seq_cst)) {
    own->source.request_stop();
  }
  // seq_cst: pairs with io_bridge() and enter_sleep() publishing, so either
  // they see the reason or this sees what they published.
  auto wait = wait_.load(std::memory_order_seq_cst);
  for (;;) {
    if ((wait & kSleeping) == 0) {
      // The bridge lives as long as the context, even while a sleep keeps it
      // aside; cancelling it with nothing armed is a no-op.
      if (wait != 0) {
        reinterpret_cast<IoBridge*>(wait)->cancel();
      }
      return;
    }
    if ((wait & kCancelling) != 0) {
      return;  // another request_stop is cancelling this sleep
    }
    // seq_cst (and acquire: the node's fields, written before enter_sleep).
    if (wait_.compare_exchange_weak(wait, wait | kCancelling, std::memory_order_seq_cst)) {
      cancel_sleep(*reinterpret_cast<SleepNode*>(wait & ~(kSleeping | kCancelling)));
      // release: pairs with leave_sleep's acquire.
      wait_.store(wait, std::memory_order_release);
      return;
    }
    // The task left the sleep meanwhile (wait reloaded): it may be starting
    // an I/O operation on its bridge, which the loop cancels.
  }
}

std::uintptr_t TaskContext::enter_sleep(SleepNode* node) noexcept {
  // No kCancelling can be set on a bridge (or 0), so an exchange is exact.
  return wait_.exchange(reinterpret_cast<std::uintptr_t>(node) | kSleeping,
                        std::memory_order_seq_cst);
}

void TaskContext::leave_sleep(SleepNode* node, std::uintptr_t kept) noexcept {
  const auto published = reinterpret_cast<std::uintptr_t>(node) | kSleeping;
  for (int spins = 0;; ++spins) {
    auto expected = published;
    // acquire: pairs with request_stop's unlocking store; seq_cst: a
    // request_stop that loaded the sleep before this sees the bridge after.
    if (wait_.compare_exchange_weak(expected, kept, std::memory_order_seq_cst)) {
      return;
    }
    if (spins > 64) {
      std::this_thread::yield();  // a canceller holds kCancelling for a few instructions
    }
  }
}

bool TaskContext::stop_requested() const noexcept {
  return stop_reason_.load(std::memory_order_seq_cst) != 0 ||
         (scope_ != nullptr && scope_->stop_requested());
}

errc TaskContext::stop_error() const noexcept {
  const auto reason = stop_reason_.load(std::memory_order_acquire);
  return reason != 0 ? static_cast<errc>(reason) : errc::cancelled;
}

IoBridge& TaskContext::io_bridge() {
  // Never called while the task sleeps, so wait_ holds the bridge or 0.
  auto wait = wait_.load(std::memory_order_acquire);
  if (wait == 0) {
    auto* io = new IoBridge;
    wait_.store(reinterpret_cast<std::uintptr_t>(io), std::memory_order_seq_cst);
    return *io;
  }
  return *reinterpret_cast<IoBridge*>(wait);
}

std::stop_token TaskContext::stop_token() {
  OwnStop* own = own_stop_.load(std::memory_order_acquire);
  if (own == nullptr) {
    own = new OwnStop;
    if (scope_ != nullptr) {
      own->scope_link.emplace(scope_->stop_token(), OwnStop::Forward{&own->source});
    }
    own_stop_.store(own, std::memory_order_seq_cst);
    if (stop_reason_.load(std::memory_order_seq_cst) != 0) {
      own->source.request_stop();
    }
  }
  return own->source.get_token();
}

namespace {
thread_local IoBridge::Initiating* active_initiation = nullptr;
}  // namespace

IoBridge::Initiating* IoBridge::Initiating::get_active() noexcept { return active_initiation; }

void IoBridge::Initiating::set_active(Initiating* initiating) noexcept {
  active_initiation = initiating;
}

}  // namespace sluice::detail
