#include "sluice/detail/task_context.hpp"

#include <optional>

#include "sluice/detail/io_bridge.hpp"
#include "sluice/detail/scope_state.hpp"

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
  if (IoBridge* io = io_.load(std::memory_order_acquire)) {
    io->release();
  }
}

void TaskContext::request_stop(errc reason) noexcept {
  std::uint8_t none = 0;
  // seq_cst: pairs with io_bridge()/stop_token() publishing their objects,
  // so either they see the reason or this sees them.
  stop_reason_.compare_exchange_strong(none, static_cast<std::uint8_t>(reason),
                                       std::memory_order_seq_cst);
  if (IoBridge* io = io_.load(std::memory_order_seq_cst)) {
    io->cancel();
  }
  if (OwnStop* own = own_stop_.load(std::memory_order_seq_cst)) {
    own->source.request_stop();
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
  IoBridge* io = io_.load(std::memory_order_acquire);
  if (io == nullptr) {
    io = new IoBridge;
    io_.store(io, std::memory_order_seq_cst);
  }
  return *io;
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
