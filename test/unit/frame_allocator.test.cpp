#include "sluice/detail/frame_allocator.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

using sluice::detail::frame_allocate;
using sluice::detail::frame_deallocate;

TEST_CASE("blocks are usable, aligned and independent", "[task]") {
  std::vector<std::pair<void*, std::size_t>> blocks;
  for (std::size_t size : {1, 16, 63, 64, 65, 200, 1024, 1025, 5000}) {
    for (int k = 0; k < 100; ++k) {
      void* p = frame_allocate(size);
      REQUIRE(p != nullptr);
      CHECK(reinterpret_cast<std::uintptr_t>(p) % alignof(std::max_align_t) == 0);
      std::memset(p, k, size);
      blocks.emplace_back(p, size);
    }
  }
  for (auto [p, size] : blocks) {
    frame_deallocate(p, size);
  }
}

TEST_CASE("blocks freed on other threads come back through the depot", "[task]") {
  // A producer allocates, consumers free: the pattern of spawning on one
  // worker and finishing on another. Runs long enough to cycle batches.
  // Every live block gets its own pattern; a block handed out twice would
  // have it overwritten.
  constexpr int rounds = 200;
  constexpr std::uint32_t per_round = 1000;
  std::uint64_t corrupted = 0;  // written by the consumer, read after join
  for (int r = 0; r < rounds; ++r) {
    std::vector<std::uint32_t*> blocks(per_round);
    for (std::uint32_t i = 0; i < per_round; ++i) {
      blocks[i] = static_cast<std::uint32_t*>(frame_allocate(128));
      for (int w = 0; w < 32; ++w) {
        blocks[i][w] = i;
      }
    }
    std::thread consumer([&] {
      for (std::uint32_t i = 0; i < per_round; ++i) {
        for (int w = 0; w < 32; ++w) {
          corrupted += blocks[i][w] != i ? 1 : 0;
        }
        frame_deallocate(blocks[i], 128);
      }
    });
    consumer.join();
  }
  CHECK(corrupted == 0);
}
