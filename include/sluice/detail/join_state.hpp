#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>

#include "sluice/detail/frame_allocator.hpp"
#include "sluice/detail/promise.hpp"

namespace sluice::detail {

class ScopeState;
class JoinStateBase;

/// Spawn trees. In a scope with no admission level, a child that one of the
/// scope's tasks spawns into that same scope (with co_await spawn) is counted
/// in its spawner's tree instead of the scope's pending word, so fork-join
/// work does not meet on one cache line. `size` is 1 for the task's own body
/// plus 1 per such child whose tree has not ended; the tree ends when it
/// reaches 0, and only then is it given back to the spawner's tree, or, for
/// a root (spawned from outside, parent null), to the scope's word. So the
/// scope's pending word stays non-zero while any task of a tree runs, and
/// join() and the scope's lifetime rules hold for every descendant. A task
/// whose body ends with children running keeps a reference to its join state
/// for the tree (children point at it), dropped when the tree ends.
///
/// `size` only rises from a running body (its own 1 keeps it above 0), so it
/// never rises again once it reached 0, and it is exact once the body ended.
struct TreeLinks {
  // Written by the spawner (rises) and ending child trees (falls).
  std::atomic<std::uint32_t> size{1};
  // Set before the task starts; read when its tree ends.
  JoinStateBase* parent = nullptr;

  void add_child() noexcept {
    // relaxed: the child's start is published by the scheduler's queue.
    size.fetch_add(1, std::memory_order_relaxed);
  }
  /// Drops one count (the body's, or an ended child tree's); true when this
  /// ended the tree.
  [[nodiscard]] bool leave() noexcept {
    // acq_rel: the tree's results happen-before whoever continues from here
    // (the spawner's tree, then the scope's joiner).
    return size.fetch_sub(1, std::memory_order_acq_rel) == 1;
  }
  /// Whether only the body's count is left: exact once the body ended.
  [[nodiscard]] bool alone() const noexcept {
    // acquire: pairs with ending children's release, for the path that then
    // ends the tree without an RMW.
    return size.load(std::memory_order_acquire) == 1;
  }
};

/// What a spawned task and its JoinHandle share: the outcome, the waiter,
/// and a reference count (the handle + the running task).
///
/// waiter_ protocol: 0 while running with no waiter; kDone once the result
/// is stored; otherwise the PromiseBase* of the one coroutine awaiting it.
/// The task publishes the result, then exchanges in kDone (acq_rel); the
/// waiter CASes 0 -> itself (acq_rel) and, if it finds kDone, reads the
/// result without suspending.
class JoinStateBase : public TaskContext {
  // First: small fields fill TaskContext's tail padding.
  bool detached_;

 protected:
  std::uint8_t outcome_ = 0;  // JoinState<T>'s outcome code (in the padding here)
  bool in_frame_ = false;     // lives in its task's frame block (JoinRoom)

 private:
  // Written by the handle, the finishing task and pending timeouts.
  std::atomic<std::uint32_t> refs_;

 public:
  static constexpr std::uintptr_t kDone = 1;

  JoinStateBase(Pool* runs_on, ScopeState* scope, std::uint32_t refs) noexcept
      : TaskContext(runs_on, scope), detached_(refs == 1), refs_(refs) {}

  [[nodiscard]] bool done() const noexcept {
    return waiter_.load(std::memory_order_acquire) == kDone;
  }

  /// Registers `waiter`; false if the task has already finished.
  bool set_waiter(PromiseBase* waiter) noexcept {
    std::uintptr_t expected = 0;
    return waiter_.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(waiter),
                                           std::memory_order_acq_rel, std::memory_order_acquire);
  }

  /// Withdraws `waiter` (a timeout won the race); false if the task's
  /// completion already took it and will resume it.
  bool withdraw_waiter(PromiseBase* waiter) noexcept {
    auto expected = reinterpret_cast<std::uintptr_t>(waiter);
    return waiter_.compare_exchange_strong(expected, 0, std::memory_order_acq_rel,
                                           std::memory_order_acquire);
  }

  /// Marks the result published; returns the waiter to resume, if any.
  PromiseBase* complete() noexcept {
    const auto prev = waiter_.exchange(kDone, std::memory_order_acq_rel);
    return prev == 0 ? nullptr : reinterpret_cast<PromiseBase*>(prev);
  }

  /// Links of the task's timeout in a DeadlineQueue list; guarded by that
  /// queue (see lib/deadlines.hpp). Allocated with the timeout, so tasks
  /// without one do not carry it; freed with the join state. Neighbours are
  /// linked to each other directly, so unlinking touches their links only.
  struct DeadlineLink {
    void* shard = nullptr;
    void* list = nullptr;
    DeadlineLink* prev = nullptr;
    DeadlineLink* next = nullptr;
    std::int64_t deadline_ns = 0;
    JoinStateBase* task = nullptr;  // whose link this is
  };
  DeadlineLink* deadline_link = nullptr;  // null: no timeout

  /// The spawn-tree count, for the join states of scopes that count trees
  /// (TreeJoinState); null otherwise.
  virtual TreeLinks* tree_links() noexcept { return nullptr; }

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      dispose();
    }
  }
  /// Spawned without a handle.
  [[nodiscard]] bool detached() const noexcept { return detached_; }

 protected:
  /// Destroys the join state and frees its memory (its own block, or the
  /// frame block it shares with its task's frame, which is destroyed by
  /// then: the task's reference is released after it).
  virtual void dispose() noexcept = 0;

  virtual ~JoinStateBase() {
    if (deadline_link != nullptr) {
      deadline_link->~DeadlineLink();
      frame_deallocate(deadline_link, sizeof(DeadlineLink));
    }
  }

 private:
  // Written by the task (complete) and the waiter (set_waiter).
  std::atomic<std::uintptr_t> waiter_{0};
};

template <class T>
class TreeJoinState;

/// Room for a spawned task's join state in front of its coroutine frame, so
/// that spawning allocates one block, and a task's state and frame are
/// loaded together when it starts on a cold cache. Promise<T> allocates a
/// frame of up to kMaxBlock bytes with its room as
///
///     [ join state storage | Tail ][ coroutine frame ]
///     ^ block                      ^ frame: what operator new returns
///
/// Scope::start constructs the join state in the room and marks the tail;
/// the frame's operator delete then leaves the block to the join state,
/// whose last release frees it (the frame is destroyed by then: see
/// dispose). Frames never spawned (awaited tasks, block_on roots) free the
/// block themselves. A larger frame gets a Tail only (kLead bytes), and its
/// join state is allocated on its own: a handle held after its task ended
/// keeps the block, and that should not be a frame of many kilobytes. A T
/// whose join state is large or over-aligned gets no room and no Tail.
///
/// This relies on coroutine_handle::address() being the pointer operator
/// new returned, as it is with g++ and clang. The sanitizer builds check it:
/// there every block comes from malloc, so a join state made anywhere else
/// would be reported as a heap overflow or a bad free. (A frame clang
/// allocates on its caller's stack instead never escapes, so it is never
/// spawned.)
template <class T>
struct JoinRoom {
  struct Tail {
    std::uint32_t frame_bytes;  // what operator new was asked for
    bool join_state;            // a join state lives in the room
  };
  static constexpr std::size_t kMaxRoom = 256;
  static constexpr std::size_t kMaxBlock = 512;
  static constexpr std::size_t kAlign = 16;  // the frame's alignment

  static constexpr bool kFits =
      alignof(TreeJoinState<T>) <= kAlign && sizeof(TreeJoinState<T>) + sizeof(Tail) <= kMaxRoom;
  static constexpr std::size_t kBytes =
      kFits ? (sizeof(TreeJoinState<T>) + sizeof(Tail) + kAlign - 1) / kAlign * kAlign : 0;
  static constexpr std::size_t kLead = (sizeof(Tail) + kAlign - 1) / kAlign * kAlign;

  /// Whether a frame of `frame_bytes` gets room (the same answer for
  /// operator new and operator delete, which are given the same size).
  static constexpr bool roomy(std::size_t frame_bytes) noexcept {
    return kBytes + frame_bytes <= kMaxBlock;
  }
  static constexpr std::size_t lead(std::size_t frame_bytes) noexcept {
    return roomy(frame_bytes) ? kBytes : kLead;
  }

  static std::byte* block_of(void* frame) noexcept {
    return static_cast<std::byte*>(frame) - kBytes;
  }
  static Tail& tail_of(void* frame) noexcept {
    return *std::launder(reinterpret_cast<Tail*>(static_cast<std::byte*>(frame) - sizeof(Tail)));
  }

  static void* allocate(std::size_t frame_bytes) {
    if constexpr (kFits) {
      const std::size_t before = lead(frame_bytes);
      auto* frame = static_cast<std::byte*>(frame_allocate(before + frame_bytes)) + before;
      ::new (static_cast<void*>(frame - sizeof(Tail)))
          Tail{static_cast<std::uint32_t>(frame_bytes), false};
      return frame;
    } else {
      return frame_allocate(frame_bytes);
    }
  }
  static void deallocate(void* frame, std::size_t frame_bytes) noexcept {
    if constexpr (kFits) {
      if (!tail_of(frame).join_state) {  // else the join state frees the block
        const std::size_t before = lead(frame_bytes);
        frame_deallocate(static_cast<std::byte*>(frame) - before, before + frame_bytes);
      }
    } else {
      frame_deallocate(frame, frame_bytes);
    }
  }
};

template <class T>
class JoinState : public JoinStateBase {
 public:
  JoinState(Pool* runs_on, ScopeState* scope, std::uint32_t refs) noexcept
      : JoinStateBase(runs_on, scope, refs) {}
  ~JoinState() override { reset_result(); }

  /// Makes `J` (JoinState<T> or TreeJoinState<T>) in the room in front of
  /// `frame` if it has one, else on its own.
  template <class J>
  static J* make(void* frame, Pool* runs_on, ScopeState* scope, std::uint32_t refs) {
    if constexpr (JoinRoom<T>::kFits) {
      auto& tail = JoinRoom<T>::tail_of(frame);
      if (JoinRoom<T>::roomy(tail.frame_bytes)) {
        auto* js = ::new (static_cast<void*>(JoinRoom<T>::block_of(frame))) J(runs_on, scope, refs);
        js->in_frame_ = true;
        tail.join_state = true;
        return js;
      }
    }
    return new J(runs_on, scope, refs);
  }

  /// Undoes make() for a task that will not be spawned after all: the frame
  /// keeps (and frees) its block. Only with no other reference taken.
  void unmake(void* frame) noexcept {
    if (!in_frame_) {
      delete this;
      return;
    }
    JoinRoom<T>::tail_of(frame).join_state = false;
    this->~JoinState();  // virtual: the most derived type
  }

  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }

  void dispose() noexcept override {
    if (!in_frame_) {
      delete this;
      return;
    }
    // In a room: the block starts here, and the frame behind the room was
    // destroyed before the last reference went (its Tail outlives it).
    auto* block = reinterpret_cast<std::byte*>(this);
    auto* frame = block + JoinRoom<T>::kBytes;
    const std::size_t bytes = JoinRoom<T>::kBytes + JoinRoom<T>::tail_of(frame).frame_bytes;
    this->~JoinState();  // virtual: the most derived type
    frame_deallocate(block, bytes);
  }

  // The outcome: set by the task before complete(), taken once by the
  // handle. Kept as its parts, not as a Result<T>: a code in
  // JoinStateBase's padding, then the value or the exception. A Result's
  // error_code and discriminator would cost two or three words in every
  // task's room, and its code is always one of sluice's here.
  template <class... Args>
  void set_value(Args&&... args) {
    reset_result();
    if constexpr (!std::is_void_v<T>) {
      ::new (static_cast<void*>(&storage_.value)) Stored(std::forward<Args>(args)...);
    }
    outcome_ = kValue;
  }
  /// `code` is one of errc's values (outcome_of() makes one): another
  /// would alias kEmpty or kValue.
  void set_failure(errc code, std::exception_ptr exception) noexcept {
    reset_result();
    ::new (static_cast<void*>(&storage_.exception)) std::exception_ptr(std::move(exception));
    outcome_ = static_cast<std::uint8_t>(code);
  }
  void set_result(Result<T>&& r) {
    if (!r.has_value()) {
      set_failure(outcome_of(r.error()), r.exception());
    } else if constexpr (std::is_void_v<T>) {
      set_value();
    } else {
      set_value(std::move(r).value());
    }
  }
  [[nodiscard]] bool has_result() const noexcept { return outcome_ != kEmpty; }
  /// The failure's exception; null for a value. Only with has_result().
  [[nodiscard]] std::exception_ptr exception() const noexcept {
    return outcome_ == kValue ? nullptr : storage_.exception;
  }
  /// Moves the value out, or rethrows the failure's exception. Only with
  /// has_result().
  T take() {
    const Reset reset{this};
    if (outcome_ != kValue) {
      std::rethrow_exception(storage_.exception);
    }
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_reference_v<T>) {
      return static_cast<T>(storage_.value.get());
    } else {
      return std::move(storage_.value);
    }
  }
  /// Moves the outcome out, as a Result. Only with has_result().
  Result<T> take_result() {
    const Reset reset{this};
    if (outcome_ != kValue) {
      return Result<T>::failure(make_error_code(static_cast<errc>(outcome_)),
                                std::move(storage_.exception));
    }
    if constexpr (std::is_void_v<T>) {
      return Result<T>();
    } else if constexpr (std::is_reference_v<T>) {
      return Result<T>(storage_.value.get());
    } else {
      return Result<T>(std::move(storage_.value));
    }
  }
  void reset_result() noexcept {
    if (outcome_ == kValue) {
      if constexpr (!std::is_void_v<T>) {
        storage_.value.~Stored();
      }
    } else if (outcome_ != kEmpty) {
      storage_.exception.~exception_ptr();
    }
    outcome_ = kEmpty;
  }

 private:
  // outcome_: kEmpty, kValue, or the errc of a failure (1 to 5).
  static constexpr std::uint8_t kEmpty = 0;
  static constexpr std::uint8_t kValue = 255;

  // Empties the outcome when a take leaves, by return or by throw.
  struct Reset {
    JoinState* state;
    ~Reset() { state->reset_result(); }
  };

  struct NoValue {};
  using Stored =
      std::conditional_t<std::is_void_v<T>, NoValue,
                         std::conditional_t<std::is_reference_v<T>,
                                            std::reference_wrapper<std::remove_reference_t<T>>, T>>;
  union Storage {
    Storage() noexcept {}  // NOLINT(modernize-use-equals-default): leaves both unconstructed
    ~Storage() {}          // NOLINT(modernize-use-equals-default)
    Stored value;
    std::exception_ptr exception;
  } storage_;
};

/// The join state of a task in a scope that counts spawn trees: a separate
/// type, so that tasks of bounded scopes do not carry the links.
template <class T>
class TreeJoinState final : public JoinState<T> {
 public:
  using JoinState<T>::JoinState;
  TreeLinks* tree_links() noexcept override { return &links_; }
  TreeLinks& links() noexcept { return links_; }

 private:
  TreeLinks links_;
};

}  // namespace sluice::detail
