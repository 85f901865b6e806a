// Frame cache: per-thread size-class free lists over a shared depot.
//
// Each thread keeps, per 16-byte size class, an intrusive singly linked list
// of free blocks (the first word of a free block is the link). Frees push to
// the calling thread's list; when it holds 2 * kBatch blocks, kBatch of them
// move to the depot as one batch. Allocations pop from the calling thread's
// list; when it is empty, one batch comes back from the depot, and only when
// the depot is empty too is `malloc` called. The depot's lock is therefore
// taken at most once per kBatch frames, and producer/consumer thread pairs
// (spawn on one worker, finish on another) reach a steady state with no
// malloc at all. The depot keeps at most kDepotBytes per class; beyond it,
// batches go back to `free`.
#include "sluice/detail/frame_allocator.hpp"

#include <array>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SLUICE_FRAME_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define SLUICE_FRAME_CACHE 0
#endif
#endif
#ifndef SLUICE_FRAME_CACHE
#define SLUICE_FRAME_CACHE 1
#endif

namespace sluice::detail {
namespace {

// 16 bytes: the frame's alignment, so a frame with its join state's room
// (JoinRoom) wastes no granule on rounding.
constexpr std::size_t kGranule = 16;
constexpr std::size_t kClasses = kMaxCachedFrame / kGranule;
constexpr std::size_t kBatch = 64;
// Per class. A program rarely uses more than a few classes heavily; the
// worst case (all 64 full) is 2 GiB.
constexpr std::size_t kDepotBytes = std::size_t{32} << 20;

std::size_t class_of(std::size_t size) noexcept { return (size + kGranule - 1) / kGranule - 1; }
std::size_t block_size(std::size_t cls) noexcept { return (cls + 1) * kGranule; }

struct FreeBlock {
  FreeBlock* next;
};

struct Batch {
  FreeBlock* head = nullptr;
  std::size_t count = 0;
};

void free_list(FreeBlock* head) noexcept {
  while (head != nullptr) {
    FreeBlock* next = head->next;
    std::free(head);  // NOLINT(cppcoreguidelines-no-malloc)
    head = next;
  }
}

class Depot {
 public:
  Batch take(std::size_t cls) noexcept {
    auto& c = classes_[cls];
    std::lock_guard lock(c.mutex);
    if (c.batches.empty()) {
      return {};
    }
    Batch b = c.batches.back();
    c.batches.pop_back();
    return b;
  }

  void give(std::size_t cls, Batch b) noexcept {
    auto& c = classes_[cls];
    {
      std::lock_guard lock(c.mutex);
      if ((c.batches.size() + 1) * kBatch * block_size(cls) <= kDepotBytes) {
        try {
          c.batches.push_back(b);
          return;
        } catch (const std::bad_alloc&) {  // fall through: free the blocks
        }
      }
    }
    free_list(b.head);
  }

 private:
  struct Class {
    std::mutex mutex;
    std::vector<Batch> batches;  // guarded by mutex
  };
  std::array<Class, kClasses> classes_;
};

// Leaked on purpose: threads may free frames during static destruction.
Depot& depot() noexcept {
  static Depot* d = new Depot;
  return *d;
}

class ThreadCache {
 public:
  ThreadCache() = default;
  ThreadCache(const ThreadCache&) = delete;
  ThreadCache& operator=(const ThreadCache&) = delete;
  ~ThreadCache() {
    for (std::size_t cls = 0; cls < kClasses; ++cls) {
      if (lists_[cls].count != 0) {
        depot().give(cls, lists_[cls]);
      }
    }
  }

  void* allocate(std::size_t cls) {
    Batch& list = lists_[cls];
    if (list.head == nullptr) {
      list = depot().take(cls);
      if (list.head == nullptr) {
        void* p = std::malloc(block_size(cls));  // NOLINT(cppcoreguidelines-no-malloc)
        if (p == nullptr) {
          throw std::bad_alloc();
        }
        return p;
      }
    }
    FreeBlock* b = list.head;
    list.head = b->next;
    --list.count;
    return b;
  }

  void deallocate(void* p, std::size_t cls) noexcept {
    Batch& list = lists_[cls];
    auto* b = static_cast<FreeBlock*>(p);
    b->next = list.head;
    list.head = b;
    if (++list.count == 2 * kBatch) {
      // Keep the kBatch blocks freed last (still warm in cache); the older
      // kBatch go to the depot.
      FreeBlock* last_kept = list.head;
      for (std::size_t i = 1; i < kBatch; ++i) {
        last_kept = last_kept->next;
      }
      const Batch spill{last_kept->next, kBatch};
      last_kept->next = nullptr;
      list.count = kBatch;
      depot().give(cls, spill);
    }
  }

 private:
  std::array<Batch, kClasses> lists_{};
};

ThreadCache& thread_cache() {
  thread_local ThreadCache cache;
  return cache;
}

}  // namespace

void* frame_allocate(std::size_t size) {
  if (SLUICE_FRAME_CACHE == 0 || size > kMaxCachedFrame || size == 0) {
    void* p = std::malloc(size == 0 ? 1 : size);  // NOLINT(cppcoreguidelines-no-malloc)
    if (p == nullptr) {
      throw std::bad_alloc();
    }
    return p;
  }
  return thread_cache().allocate(class_of(size));
}

void frame_deallocate(void* block, std::size_t size) noexcept {
  if (block == nullptr) {
    return;
  }
  if (SLUICE_FRAME_CACHE == 0 || size > kMaxCachedFrame || size == 0) {
    std::free(block);  // NOLINT(cppcoreguidelines-no-malloc)
    return;
  }
  thread_cache().deallocate(block, class_of(size));
}

}  // namespace sluice::detail
