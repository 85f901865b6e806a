// LimitedAccessQueue: a worker's bounded run queue.
//
// Algorithm: a fixed ring indexed by 32-bit counters that wrap, with one
// producer (the Owner) and any number of consumers through one Stealer
// handle. Follows the packed-head design of tokio's
// runtime/scheduler/multi_thread/queue.rs.
//
//   head_ = (steal << 32) | real     written by the owner (pop) and thieves (CAS)
//   tail_                            written only by the owner
//
// `real` is the next slot a consumer takes. `steal` lags behind `real` while a
// thief is copying the slots [steal, real) out of the ring; the owner counts
// those slots as occupied, so it never overwrites them mid-copy.
//
// Invariants (indices compared modulo 2^32):
//   I1  steal <= real <= tail and tail - steal <= Capacity.
//   I2  Slots [real, tail) hold items no one has taken; only the owner writes
//       a slot, and only at `tail` when tail - steal < Capacity.
//   I3  At most one thief is mid-steal (steal != real); other thieves back off.
//   I4  An item leaves the ring exactly once: by a pop CAS, by a steal CAS, or
//       by the owner's overflow CAS (which requires steal == real).
//
// Slots are plain `T`: I1 and I2 guarantee no slot is read while written, and
// the release/acquire pairs on tail_ and head_ order the accesses.
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
  static_assert(Capacity <= (std::size_t{1} << 30), "indices are 32-bit");

  static constexpr std::uint32_t kMask = Capacity - 1;

  struct Inner {
    // Written by the owner (pop, overflow) and by thieves (CAS); read by all.
    alignas(sync::kFalseSharingRange) sync::Atomic<std::uint64_t> head{0};
    // Written only by the owner (release); read by thieves (acquire).
    alignas(sync::kFalseSharingRange) sync::Atomic<std::uint32_t> tail{0};
    alignas(sync::kFalseSharingRange) std::array<T, Capacity> slots{};
  };

  static constexpr std::uint64_t pack(std::uint32_t steal, std::uint32_t real) noexcept {
    return (std::uint64_t{steal} << 32) | real;
  }
  static constexpr std::uint32_t steal_of(std::uint64_t h) noexcept {
    return static_cast<std::uint32_t>(h >> 32);
  }
  static constexpr std::uint32_t real_of(std::uint64_t h) noexcept {
    return static_cast<std::uint32_t>(h);
  }

 public:
  static constexpr std::size_t capacity = Capacity;

  class Stealer;

  /// The producing end: push, pop, and overflow into a shared injector.
  /// Thread safety: only one thread may use an Owner at a time.
  class Owner {
   public:
    Owner(Owner&&) noexcept = default;
    Owner& operator=(Owner&&) noexcept = default;
    Owner(const Owner&) = delete;
    Owner& operator=(const Owner&) = delete;
    ~Owner() { assert(!inner_ || is_empty()); }

    /// Items in the ring, including any a thief is copying out right now.
    [[nodiscard]] std::size_t len() const noexcept {
      // relaxed: tail_ is ours; head_ only moves forward, so a stale value
      // over-counts, which is what a capacity check wants.
      const auto head = inner_->head.load(std::memory_order_relaxed);
      return inner_->tail.load(std::memory_order_relaxed) - real_of(head);
    }
    [[nodiscard]] bool is_empty() const noexcept { return len() == 0; }

    /// Appends `item`. When the ring is full, moves half of it plus `item` to
    /// `overflow`, called once with a span of up to Capacity / 2 + 1 items.
    template <class Overflow>
    void push(T item, Overflow&& overflow) {
      for (;;) {
        // acquire: pairs with a thief's release of `steal`, after which the
        // slots it copied may be reused.
        const auto head = inner_->head.load(std::memory_order_acquire);
        const auto tail = inner_->tail.load(std::memory_order_relaxed);
        if (tail - steal_of(head) < Capacity) {
          inner_->slots[tail & kMask] = item;
          // release: publishes the slot to thieves that acquire tail_.
          inner_->tail.store(tail + 1, std::memory_order_release);
          return;
        }
        if (steal_of(head) != real_of(head)) {
          // A thief is taking half the ring; there will be room, but the
          // overflow CAS cannot run while it copies. Hand over just this one.
          overflow(std::span<T>(&item, 1));
          return;
        }
        if (push_overflow(item, real_of(head), std::forward<Overflow>(overflow))) {
          return;
        }
        // A thief took items between the load and the CAS: retry, there is room.
      }
    }

    /// Takes the oldest item, if any.
    std::optional<T> pop() noexcept {
      auto head = inner_->head.load(std::memory_order_acquire);
      for (;;) {
        const auto real = real_of(head);
        if (real == inner_->tail.load(std::memory_order_relaxed)) {
          return std::nullopt;
        }
        const auto steal = steal_of(head);
        const auto next = steal == real ? pack(real + 1, real + 1) : pack(steal, real + 1);
        // acq_rel: the CAS is the claim on slot `real` against thieves.
        if (inner_->head.compare_exchange_weak(head, next, std::memory_order_acq_rel,
                                               std::memory_order_acquire)) {
          return inner_->slots[real & kMask];
        }
      }
    }

   private:
    friend class LimitedAccessQueue;
    friend class Stealer;
    explicit Owner(std::shared_ptr<Inner> inner) : inner_(std::move(inner)) {}

    template <class Overflow>
    bool push_overflow(T item, std::uint32_t real, Overflow&& overflow) {
      constexpr std::uint32_t kHalf = Capacity / 2;
      auto head = pack(real, real);
      // Claim [real, real + kHalf) as if popped. Fails if a thief or nobody
      // else moved head_ meanwhile (only thieves can: we are the owner).
      if (!inner_->head.compare_exchange_strong(head, pack(real + kHalf, real + kHalf),
                                                std::memory_order_acq_rel,
                                                std::memory_order_relaxed)) {
        return false;
      }
      std::array<T, kHalf + 1> batch;
      for (std::uint32_t i = 0; i < kHalf; ++i) {
        batch[i] = inner_->slots[(real + i) & kMask];
      }
      batch[kHalf] = item;
      overflow(std::span<T>(batch));
      return true;
    }

    std::shared_ptr<Inner> inner_;
  };

  /// The consuming end shared by every thief of this queue.
  /// Thread safety: all members may be called from any thread concurrently.
  class Stealer {
   public:
    Stealer(Stealer&&) noexcept = default;
    Stealer& operator=(Stealer&&) noexcept = default;
    Stealer(const Stealer&) = delete;
    Stealer& operator=(const Stealer&) = delete;

    /// A racy length, good enough to pick whom to steal from.
    [[nodiscard]] std::size_t approx_len() const noexcept {
      // relaxed: a hint only. head_ is read first, so real <= tail holds.
      const auto head = inner_->head.load(std::memory_order_relaxed);
      const auto tail = inner_->tail.load(std::memory_order_relaxed);
      return static_cast<std::uint32_t>(tail - real_of(head));
    }

    /// Moves half of this queue (rounded up) into `dst`, and returns one of
    /// the moved items for the caller to run at once. Empty if there was
    /// nothing to take, another thief was mid-steal, or `dst` is over half full.
    std::optional<T> steal_half_into(Owner& dst) const noexcept {
      Inner& d = *dst.inner_;
      const auto dst_tail = d.tail.load(std::memory_order_relaxed);  // dst is ours
      const auto dst_steal = steal_of(d.head.load(std::memory_order_acquire));
      if (dst_tail - dst_steal > Capacity / 2) {
        return std::nullopt;
      }
      auto n = copy_half(d, dst_tail);
      if (n == 0) {
        return std::nullopt;
      }
      --n;
      const T taken = d.slots[(dst_tail + n) & kMask];
      if (n != 0) {
        // release: publishes the copied slots to thieves of dst.
        d.tail.store(dst_tail + n, std::memory_order_release);
      }
      return taken;
    }

   private:
    friend class LimitedAccessQueue;
    explicit Stealer(std::shared_ptr<Inner> inner) : inner_(std::move(inner)) {}

    // Claims half of the source, copies it into dst's slots from dst_tail, and
    // releases the claim. Returns the number of items copied.
    std::uint32_t copy_half(Inner& d, std::uint32_t dst_tail) const noexcept {
      Inner& s = *inner_;
      auto head = s.head.load(std::memory_order_acquire);
      std::uint32_t n = 0;
      std::uint64_t claimed = 0;
      for (;;) {
        const auto steal = steal_of(head);
        const auto real = real_of(head);
        if (steal != real) {
          return 0;  // I3: another thief is copying.
        }
        // acquire: pairs with the owner's release of tail_, making the slots
        // up to tail visible.
        const auto available = s.tail.load(std::memory_order_acquire) - real;
        n = available - available / 2;
        if (n == 0) {
          return 0;
        }
        claimed = pack(steal, real + n);
        if (s.head.compare_exchange_weak(head, claimed, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
          break;
        }
      }
      const auto first = steal_of(claimed);
      for (std::uint32_t i = 0; i < n; ++i) {
        d.slots[(dst_tail + i) & kMask] = s.slots[(first + i) & kMask];
      }
      // Release the claim: steal catches up with real. The owner may have
      // popped meanwhile (real moved on), so retry with its value.
      head = claimed;
      for (;;) {
        const auto real = real_of(head);
        assert(steal_of(head) == first);
        // release: the owner may reuse the copied slots once it sees this.
        if (s.head.compare_exchange_weak(head, pack(real, real), std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
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
