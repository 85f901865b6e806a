// TimerWheel: a hierarchical timing wheel over intrusive TimerLinks.
//
// The scheme of Varghese and Lauck ("Hashed and Hierarchical Timing Wheels",
// 1987), in the layout tokio's time driver uses: levels of 64 slots, level L
// slot s covering the ticks whose base-64 digit L is s. 11 levels cover every
// 64-bit tick, so nothing is ever clamped.
//
// Invariants (elapsed = the tick the wheel has advanced to):
//   - a linked timer's tick is > elapsed;
//   - a timer at level L has the same base-64 digits as elapsed above L and a
//     larger digit L (at level 0: the same digits above 0, any later slot);
//     so every timer at a lower level is due before every timer at a higher
//     one, and within a level, slots past elapsed's digit are in tick order;
//   - occupied bit s of level L is set iff slot s holds a timer.
// Insert and remove are O(1); advancing visits each due slot once and moves
// each timer down at most once per level.
//
// Thread safety: none; the owner serialises every call.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <limits>

#include "sluice/detail/timer_link.hpp"

namespace sluice::detail {

class TimerWheel {
 public:
  static constexpr unsigned kSlotBits = 6;
  static constexpr unsigned kSlots = 1U << kSlotBits;
  static constexpr unsigned kLevels = 11;  // 66 bits >= 64
  static constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

  explicit TimerWheel(std::uint64_t now = 0) noexcept : elapsed_(now) {}
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  [[nodiscard]] std::uint64_t elapsed() const noexcept { return elapsed_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  /// Links `t`. Precondition: t.tick > elapsed() and `t` is not linked.
  void insert(TimerLink& t) noexcept {
    link(t);
    ++size_;
  }

  /// Unlinks `t`, which this wheel holds.
  void remove(TimerLink& t) noexcept {
    unlink(t);
    --size_;
  }

  /// A lower bound on the earliest linked tick (exact when that timer sits
  /// at level 0), or kNever when the wheel is empty. Advancing to it makes
  /// progress: it is due, or moves down a level.
  [[nodiscard]] std::uint64_t next_expiration() const noexcept { return earliest().tick; }

  /// Advances elapsed() to `now` (if later) and calls on_due(TimerLink&) for
  /// each timer with tick <= now, unlinked, in tick order. on_due must not
  /// touch the wheel; it may reuse the link's fields.
  template <class OnDue>
  void advance(std::uint64_t now, OnDue&& on_due) {
    for (;;) {
      const Expiration e = earliest();
      if (e.tick > now) {
        break;  // includes kNever
      }
      // Nothing is due before e.tick, so the wheel may stand there.
      elapsed_ = e.tick;
      Level& level = levels_[e.level];
      TimerLink* t = level.slots[e.slot];
      level.slots[e.slot] = nullptr;
      level.occupied &= ~(std::uint64_t{1} << e.slot);
      while (t != nullptr) {
        TimerLink* next = t->next;  // before on_due may reuse the links
        if (t->tick <= elapsed_) {
          --size_;
          on_due(*t);
        } else {
          link(*t);  // same digits down to e.level now: lands lower
        }
        t = next;
      }
    }
    if (now > elapsed_) {
      elapsed_ = now;  // nothing linked is due by now, so digits stay valid
    }
  }

 private:
  struct Level {
    std::uint64_t occupied = 0;
    std::array<TimerLink*, kSlots> slots{};
  };
  struct Expiration {
    std::uint64_t tick;
    unsigned level;
    unsigned slot;
  };

  // The level whose digit is the highest one in which `tick` and elapsed
  // differ (level 0 when only digit 0 differs or none does).
  [[nodiscard]] unsigned level_for(std::uint64_t tick) const noexcept {
    const std::uint64_t differing = (elapsed_ ^ tick) | (kSlots - 1);
    return (63U - static_cast<unsigned>(std::countl_zero(differing))) / kSlotBits;
  }

  void link(TimerLink& t) noexcept {
    const unsigned level = level_for(t.tick);
    const auto slot = static_cast<unsigned>((t.tick >> (level * kSlotBits)) & (kSlots - 1));
    Level& l = levels_[level];
    t.level = static_cast<std::uint8_t>(level);
    t.slot = static_cast<std::uint8_t>(slot);
    t.prev = nullptr;
    t.next = l.slots[slot];
    if (t.next != nullptr) {
      t.next->prev = &t;
    }
    l.slots[slot] = &t;
    l.occupied |= std::uint64_t{1} << slot;
  }

  void unlink(TimerLink& t) noexcept {
    Level& l = levels_[t.level];
    if (t.prev != nullptr) {
      t.prev->next = t.next;
    } else {
      l.slots[t.slot] = t.next;
      if (t.next == nullptr) {
        l.occupied &= ~(std::uint64_t{1} << t.slot);
      }
    }
    if (t.next != nullptr) {
      t.next->prev = t.prev;
    }
    t.prev = t.next = nullptr;
  }

  // The first occupied slot of the lowest occupied level, and the tick its
  // range starts at.
  [[nodiscard]] Expiration earliest() const noexcept {
    for (unsigned level = 0; level < kLevels; ++level) {
      const std::uint64_t occupied = levels_[level].occupied;
      if (occupied == 0) {
        continue;
      }
      const unsigned shift = level * kSlotBits;
      const auto current = static_cast<unsigned>((elapsed_ >> shift) & (kSlots - 1));
      // By the invariants no occupied slot lies before elapsed's digit.
      const auto slot =
          static_cast<unsigned>(std::countr_zero(occupied & (~std::uint64_t{0} << current)));
      const unsigned range_bits = shift + kSlotBits;  // what one turn of this level spans
      const std::uint64_t base =
          range_bits >= 64 ? 0 : elapsed_ & ~((std::uint64_t{1} << range_bits) - 1);
      return {base + (std::uint64_t{slot} << shift), level, slot};
    }
    return {kNever, 0, 0};
  }

  std::array<Level, kLevels> levels_{};
  std::uint64_t elapsed_;
  std::size_t size_ = 0;
};

}  // namespace sluice::detail
