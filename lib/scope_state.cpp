#include "sluice/detail/scope_state.hpp"

#include <thread>

namespace sluice::detail {

ScopeState::ScopeState(RuntimeCore& core, ScopeState* parent,
                       std::optional<std::size_t> max_pending,
                       std::optional<std::chrono::nanoseconds> task_timeout)
    : core_(&core), task_timeout_(task_timeout) {
  if (!task_timeout_) {
    task_timeout_ = parent != nullptr ? parent->task_timeout_ : core.task_timeout;
  }
  if (max_pending) {
    own_admission_.emplace(*max_pending);
    levels_.push_back(&*own_admission_);
  }
  if (parent != nullptr) {
    levels_.insert(levels_.end(), parent->levels_.begin(), parent->levels_.end());
  } else if (core.admission) {
    levels_.push_back(&*core.admission);
  }
  // Linked last: the callbacks run at once if the parent already stopped.
  const auto parent_stop = parent != nullptr ? parent->stop_token() : core.stopping.get_token();
  const auto parent_closing =
      parent != nullptr ? parent->closing_token() : core.closing.get_token();
  close_link_.emplace(parent_closing, CloseLink{this});
  stop_link_.emplace(parent_stop, StopLink{this});
}

ScopeState::~ScopeState() {
  // Unlink first, so a parent stopping now does not reach a dying scope.
  stop_link_.reset();
  close_link_.reset();
}

std::optional<std::size_t> ScopeState::max_pending() const noexcept {
  if (own_admission_) {
    return own_admission_->limit();
  }
  return std::nullopt;
}

errc ScopeState::try_admit() noexcept {
  if (closed()) {
    return errc::shutting_down;
  }
  for (std::size_t i = 0; i < levels_.size(); ++i) {
    if (!levels_[i]->try_acquire()) {
      release_levels(i);
      return levels_[i]->closed() ? errc::shutting_down : errc::rejected;
    }
  }
  return errc{};
}

bool ScopeState::admit_or_wait(SpawnWaiter& w) noexcept {
  w.scope = this;
  w.on_ready = &ScopeState::on_level_ready;
  w.error = errc{};
  if (closed()) {
    w.error = errc::shutting_down;
    release_levels(w.level);
    return false;
  }
  for (; w.level < levels_.size(); ++w.level) {
    if (levels_[w.level]->acquire_or_wait(&w)) {
      return true;  // on_level_ready continues from this level
    }
    if (w.error != errc{}) {
      release_levels(w.level);
      return false;
    }
  }
  return false;
}

// A level granted its slot (or closed): continue with the next levels, and
// resume the producer once all are held or one refused.
void ScopeState::on_level_ready(AdmissionWaiter* base) noexcept {
  auto& w = *static_cast<SpawnWaiter*>(base);
  ScopeState& self = *w.scope;
  if (w.error != errc{}) {
    self.release_levels(w.level);
    w.producer->schedule();
    return;
  }
  ++w.level;
  if (self.admit_or_wait(w)) {
    return;
  }
  w.producer->schedule();
}

void ScopeState::release_levels(std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    levels_[i]->release();
  }
}

void ScopeState::release_admission() noexcept { release_levels(levels_.size()); }

void ScopeState::wait_idle() const noexcept {
  while (!idle()) {
    std::this_thread::yield();
  }
}

void ScopeState::close() noexcept {
  closing_.request_stop();
  if (own_admission_) {
    own_admission_->close(errc::shutting_down);
  }
}

void ScopeState::request_stop() noexcept {
  close();
  stop_.request_stop();
}

}  // namespace sluice::detail
