#pragma once

#include <cstdint>

namespace sluice::detail {

/// A timer's intrusive links in a TimerWheel (lib/timer_wheel.hpp). The
/// wheel that holds it guards every field.
struct TimerLink {
  TimerLink* prev = nullptr;
  TimerLink* next = nullptr;
  std::uint64_t tick = 0;  // when it is due, in the wheel's ticks
  std::uint8_t level = 0;  // where it is linked
  std::uint8_t slot = 0;
  // Not the wheel's: two bytes for the link's owner, in what would be padding.
  std::uint8_t owner_state = 0;
  std::uint8_t owner_flags = 0;
};

}  // namespace sluice::detail
