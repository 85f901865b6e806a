// LimitedAccessQueue: a worker's bounded run queue.
//
// Algorithm: a fixed ring with one producer (the Owner) and any number of
// consumers through one Stealer handle. Thieves take the oldest half, in the
// manner of tokio's runtime/scheduler/multi_thread/queue.rs (a `steal` index
// that lags behind `real` while a thief copies). Unlike tokio's ring, the
// owner pops the newest item (pop_back), so fork-join work runs depth first
// as in a work-stealing deque, and can also pop the oldest (pop_front).
//
// All three indices live in one atomic word, 16 bits each, wrapping:
//
//   state_ = (steal << 32) | (real << 16) | tail
//
// `real` is the oldest item not yet claimed. `steal` lags behind `real`
// while a thief is copying the slots [steal, real) out of the ring; the
// owner counts those slots as occupied, so it never overwrites them mid-copy.
// `tail` is one past the newest item. Because every transition is a CAS on
// the one word, a claim by a thief (real += n) and a pop_back by the owner
// (tail -= 1) cannot both succeed on a stale view: the range a thief claims
// is computed from the very tail its CAS validates.
//
// Invariants (indices compared modulo 2^16; Capacity <= 2^14):
//   I1  steal <= real <= tail and tail - steal <= Capacity.
//   I2  Slots [real, tail) hold items no one has taken; only the thread that
//       owns the queue writes its slots: at `tail` when tail - steal <
//       Capacity (push), or from `tail` on when a steal it makes copies items
//       into its own queue (at most Capacity / 2 of them, with its
//       tail - steal <= Capacity / 2 beforehand).
//   I3  At most one thief is mid-steal (steal != real); other thieves back off.
//   I4  An item leaves the ring exactly once: by a pop CAS, by a steal CAS, or
//       by the owner's overflow CAS (which requires steal == real).
//
// Slots are plain `T`: I1 and I2 guarantee no slot is read while written, and
// release/acquire on state_ orders the accesses (the owner's push is a
// release RMW; a thief's claim acquires it; a thief's release of `steal` is
// acquired by the owner before it reuses those slots).
#pragma once

#include <array>
#include <cassert>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

#include "sync.hpp"

namespace sluice::detail {

template <class T, std::size_t Capacity = sync::kQueueCapacity>
class LimitedAccessQueue {
  static_assert(std::is_trivially_copyable_v<T>, "slots are copied without synchronisation");
  static_assert(Capacity >= 4 && (Capacity & (Capacity - 1)) == 0,
                "capacity must be a power of two");
  static_assert(Capacity <= (std::size_t{1} << 14), "indices are 16-bit");

  using Index = std::uint16_t;
  static constexpr Index kMask = Capacity - 1;

  struct Inner {
    // Written by the owner (push, pops, overflow) and thieves (CAS).
    alignas(sync::kFalseSharingRange) sync::Atomic<std::uint64_t> state{0};
    alignas(sync::kFalseSharingRange) std::array<T, Capacity> slots{};
  };

  struct Unpacked {
    Index steal;
    Index real;
    Index tail;
  };
  static constexpr std::uint64_t pack(Index steal, Index real, Index tail) noexcept {
    return (std::uint64_t{steal} << 32) | (std::uint64_t{real} << 16) | tail;
  }
  static constexpr Unpacked unpack(std::uint64_t s) noexcept {
    return {static_cast<Index>(s >> 32), static_cast<Index>(s >> 16), static_cast<Index>(s)};
  }
  static constexpr Index distance(Index from, Index to) noexcept {
    return static_cast<Index>(to - from);
  }

 public:
  static constexpr std::size_t capacity = Capacity;

  class Stealer;

  /// The producing end: push, pop from either end, and overflow into a
  /// shared injector. Thread safety: only one thread may use an Owner at a time.
  class Owner {
   public:
    Owner(Owner&&) noexcept = default;
    Owner& operator=(Owner&&) noexcept = default;
    Owner(const Owner&) = delete;
    Owner& operator=(const Owner&) = delete;
    ~Owner() { assert(!inner_ || is_empty()); }

    /// Items in the ring not claimed by anyone.
    [[nodiscard]] std::size_t len() const noexcept {
      // relaxed: a count for capacity checks and tests only.
      const auto s = unpack(inner_->state.load(std::memory_order_relaxed));
      return distance(s.real, s.tail);
    }
    [[nodiscard]] bool is_empty() const noexcept { return len() == 0; }

    /// Appends `item`. When the ring is full, moves its older half plus
    /// `item` to `overflow`, called once with a span of up to Capacity / 2 + 1
    /// items.
    template <class Overflow>
    void push(T item, Overflow&& overflow) {
      for (;;) {
        // acquire: pairs with a thief's release of `steal`, after which the
        // slots it copied may be reused.
        auto word = inner_->state.load(std::memory_order_acquire);
        const auto s = unpack(word);
        if (distance(s.steal, s.tail) < Capacity) {
          inner_->slots[s.tail & kMask] = item;
          // release: publishes the slot to thieves, who acquire state. The
          // tail is ours, so the CAS fails only when a thief moved steal or
          // real (or spuriously); the slot is still free (outside
          // [steal, tail)), and we retry.
          if (inner_->state.compare_exchange_weak(
                  word, pack(s.steal, s.real, static_cast<Index>(s.tail + 1)),
                  std::memory_order_release, std::memory_order_relaxed)) {
            return;
          }
          continue;
        }
        if (s.steal != s.real) {
          // A thief is taking half the ring; there will be room, but the
          // overflow CAS cannot run while it copies. Hand over just this one.
          overflow(std::span<T>(&item, 1));
          return;
        }
        if (push_overflow(item, word, std::forward<Overflow>(overflow))) {
          return;
        }
        // A thief took items between the load and the CAS: retry, there is room.
      }
    }

    /// Takes the newest item, if any (depth-first order for fork-join work).
    std::optional<T> pop_back() noexcept {
      auto word = inner_->state.load(std::memory_order_relaxed);
      for (;;) {
        const auto s = unpack(word);
        if (s.real == s.tail) {
          return std::nullopt;
        }
        const auto last = static_cast<Index>(s.tail - 1);
        // relaxed: the slot is our own write; the CAS only has to fail if a
        // thief claimed up to it since we loaded `word`.
        if (inner_->state.compare_exchange_weak(word, pack(s.steal, s.real, last),
                                                std::memory_order_relaxed,
                                                std::memory_order_relaxed)) {
          return inner_->slots[last & kMask];
        }
      }
    }

    /// The item `depth` places from the newest (0: what pop_back would take
    /// next), left in place; empty if there are not that many. A hint: a
    /// thief may take it right after.
    [[nodiscard]] std::optional<T> peek_back(Index depth = 0) const noexcept {
      // relaxed: only the owner writes slots, and thieves only read them.
      const auto s = unpack(inner_->state.load(std::memory_order_relaxed));
      if (static_cast<Index>(s.tail - s.real) <= depth) {
        return std::nullopt;
      }
      return inner_->slots[static_cast<Index>(s.tail - 1 - depth) & kMask];
    }

    /// The oldest item, left in place; empty if none. A thief may take it
    /// right after, so the value is a hint (for fairness checks).
    [[nodiscard]] std::optional<T> peek_front() const noexcept {
      // relaxed: only the owner writes slots, and thieves only read them.
      const auto s = unpack(inner_->state.load(std::memory_order_relaxed));
      if (s.real == s.tail) {
        return std::nullopt;
      }
      return inner_->slots[s.real & kMask];
    }

    /// Takes the oldest item, if any (FIFO order, for fairness).
    std::optional<T> pop_front() noexcept {
      auto word = inner_->state.load(std::memory_order_relaxed);
      for (;;) {
        const auto s = unpack(word);
        if (s.real == s.tail) {
          return std::nullopt;
        }
        const auto next = static_cast<Index>(s.real + 1);
        // relaxed: the slot is our own write; the CAS is the claim on slot
        // `real` against thieves.
        if (inner_->state.compare_exchange_weak(
                word, pack(s.steal == s.real ? next : s.steal, next, s.tail),
                std::memory_order_relaxed, std::memory_order_relaxed)) {
          return inner_->slots[s.real & kMask];
        }
      }
    }

   private:
    friend class LimitedAccessQueue;
    friend class Stealer;
    explicit Owner(std::shared_ptr<Inner> inner) : inner_(std::move(inner)) {}

    template <class Overflow>
    bool push_overflow(T item, std::uint64_t word, Overflow&& overflow) {
      constexpr Index kHalf = Capacity / 2;
      const auto s = unpack(word);
      const auto moved = static_cast<Index>(s.real + kHalf);
      // Claim the older half [real, real + kHalf) as if popped. Fails if a
      // thief moved the word meanwhile (only thieves can: we are the owner).
      if (!inner_->state.compare_exchange_strong(word, pack(moved, moved, s.tail),
                                                 std::memory_order_relaxed,
                                                 std::memory_order_relaxed)) {
        return false;
      }
      std::array<T, kHalf + 1> batch;
      for (Index i = 0; i < kHalf; ++i) {
        batch[i] = inner_->slots[static_cast<Index>(s.real + i) & kMask];
      }
      batch[kHalf] = item;
      overflow(std::span<T>(batch));
      return true;
    }

    std::shared_ptr<Inner> inner_;
  };

  /// The consuming end shared by every thief of this queue.
  /// Thread safety: approx_len from any thread; steal_half_into from the
  /// thread that owns `dst` (it writes dst's slots), concurrently with the
  /// source's owner and other thieves.
  class Stealer {
   public:
    Stealer(Stealer&&) noexcept = default;
    Stealer& operator=(Stealer&&) noexcept = default;
    Stealer(const Stealer&) = delete;
    Stealer& operator=(const Stealer&) = delete;

    /// A racy length, good enough to pick whom to steal from.
    [[nodiscard]] std::size_t approx_len() const noexcept {
      // relaxed: a hint only.
      const auto s = unpack(inner_->state.load(std::memory_order_relaxed));
      return distance(s.real, s.tail);
    }

    /// Moves the older half of this queue (rounded up) into `dst`, and
    /// returns the oldest moved item for the caller to run at once. Empty if
    /// there was nothing to take, another thief was mid-steal, or `dst` is
    /// over half full.
    std::optional<T> steal_half_into(Owner& dst) const noexcept {
      Inner& d = *dst.inner_;
      // acquire: the slots a thief of dst finished copying may be reused.
      auto dst_word = d.state.load(std::memory_order_acquire);
      const auto ds = unpack(dst_word);
      if (distance(ds.steal, ds.tail) > Capacity / 2) {
        return std::nullopt;
      }
      T first{};
      const Index n = copy_half(d, ds.tail, first);
      if (n == 0) {
        return std::nullopt;
      }
      if (n > 1) {
        // release: publishes the copied slots to thieves of dst. Only thieves
        // of dst move its word meanwhile, and never its tail.
        for (;;) {
          const auto cur = unpack(dst_word);
          if (d.state.compare_exchange_weak(
                  dst_word, pack(cur.steal, cur.real, static_cast<Index>(cur.tail + n - 1)),
                  std::memory_order_release, std::memory_order_relaxed)) {
            break;
          }
        }
      }
      return first;
    }

   private:
    friend class LimitedAccessQueue;
    explicit Stealer(std::shared_ptr<Inner> inner) : inner_(std::move(inner)) {}

    // Claims the older half of the source; hands back its oldest item in
    // `first` and copies the rest into dst's slots from dst_tail; releases
    // the claim. Returns the number of items taken.
    Index copy_half(Inner& d, Index dst_tail, T& first) const noexcept {
      Inner& src = *inner_;
      auto word = src.state.load(std::memory_order_acquire);
      Index n = 0;
      Index from = 0;
      for (;;) {
        const auto s = unpack(word);
        if (s.steal != s.real) {
          return 0;  // I3: another thief is copying.
        }
        const Index available = distance(s.real, s.tail);
        n = static_cast<Index>(available - available / 2);
        if (n == 0) {
          return 0;
        }
        from = s.real;
        // acquire: pairs with the owner's release in push, making the slots
        // up to tail visible. The CAS validates the tail the range came from.
        if (src.state.compare_exchange_weak(word,
                                            pack(s.steal, static_cast<Index>(s.real + n), s.tail),
                                            std::memory_order_acquire, std::memory_order_acquire)) {
          break;
        }
      }
      first = src.slots[from & kMask];
      for (Index i = 1; i < n; ++i) {
        d.slots[static_cast<Index>(dst_tail + i - 1) & kMask] =
            src.slots[static_cast<Index>(from + i) & kMask];
      }
      // Release the claim: steal catches up with real. The owner may have
      // popped or pushed meanwhile, so retry with the current word.
      word = src.state.load(std::memory_order_relaxed);
      for (;;) {
        const auto s = unpack(word);
        assert(s.steal == from);
        // release: the owner may reuse the copied slots once it sees this.
        if (src.state.compare_exchange_weak(word, pack(s.real, s.real, s.tail),
                                            std::memory_order_release, std::memory_order_relaxed)) {
          return n;
        }
      }
    }

    std::shared_ptr<Inner> inner_;
  };

  /// The only way to make a queue: exactly one Owner and one Stealer.
  static std::pair<Owner, Stealer> create() {
    auto inner = std::make_shared<Inner>();
    return {Owner(inner), Stealer(inner)};
  }
};

}  // namespace sluice::detail
