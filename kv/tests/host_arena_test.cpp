// kv/tests/host_arena_test.cpp — G2's slab: slots, leases that outlive an eviction, a replacement and the
// tier itself, page-locking through the owner's hooks, blocks of another size on the heap.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>

#include "kv/tiers/host_arena.hpp"
#include "kv/tiers/host_tier.hpp"

namespace yard::kv::tiers {
namespace {

bytes make_block(std::uint64_t seed, std::size_t n = 1024) {
  bytes b(n);
  std::mt19937_64 rng(seed);
  for (auto& x : b) x = static_cast<std::byte>(rng());
  return b;
}

bytes copy_of(std::span<const std::byte> s) { return bytes(s.begin(), s.end()); }

// Hooks that record what they were asked to lock, like cudaHostRegister/cudaHostUnregister would.
struct pin_recorder {
  void* pinned_at = nullptr;
  std::size_t pinned_bytes = 0;
  void* unpinned_at = nullptr;
  bool answer = true;
  host_pinning hooks() {
    return {[this](void* p, std::size_t n) {
              pinned_at = p;
              pinned_bytes = n;
              return answer;
            },
            [this](void* p) { unpinned_at = p; }};
  }
};

TEST(host_arena, slots_are_reused_only_after_the_block_and_every_lease_are_gone) {
  auto a = host_arena::create(2, 64);
  ASSERT_NE(a, nullptr);
  auto s0 = a->acquire(), s1 = a->acquire();
  ASSERT_TRUE(s0 && s1);
  EXPECT_NE(*s0, *s1);
  EXPECT_FALSE(a->acquire()) << "two slots, both held";
  std::memset(a->slot(*s0).data(), 0x11, 64);
  host_lease l = a->lease(*s0);
  host_lease copy = l;  // copies share the hold
  a->release(*s0);      // the block left G2, the lease still reads it
  EXPECT_FALSE(a->acquire()) << "a leased slot is not free";
  EXPECT_EQ(a->leased_slots(), 1u);
  l = host_lease{};
  EXPECT_FALSE(a->acquire()) << "one copy of the lease still holds it";
  EXPECT_EQ(copy.bytes()[63], std::byte{0x11});
  copy = host_lease{};
  auto again = a->acquire();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *s0);
  EXPECT_EQ(a->free_slots(), 0u);
}

TEST(host_arena, refuses_sizes_it_cannot_hold) {
  EXPECT_EQ(host_arena::create(0, 64), nullptr);
  EXPECT_EQ(host_arena::create(4, 0), nullptr);
  EXPECT_EQ(host_arena::create(SIZE_MAX / 2, 4), nullptr);  // overflows, or more than the address space
}

TEST(host_arena, the_whole_slab_is_page_locked_once_and_unlocked_with_the_last_lease) {
  pin_recorder rec;
  host_lease survivor;
  {
    auto a = host_arena::create(8, 256, rec.hooks());
    ASSERT_NE(a, nullptr);
    EXPECT_TRUE(a->pinned());
    EXPECT_EQ(rec.pinned_bytes, 8u * 256u);
    EXPECT_EQ(rec.pinned_at, a->slot(0).data()) << "one region: the slab from its first slot";
    auto s = a->acquire();
    survivor = a->lease(*s);
  }
  EXPECT_EQ(rec.unpinned_at, nullptr) << "a lease still reads the slab";
  survivor = host_lease{};
  EXPECT_EQ(rec.unpinned_at, rec.pinned_at);
}

TEST(host_arena, a_refused_page_lock_is_not_undone) {
  pin_recorder rec;
  rec.answer = false;  // no device, or the driver said no
  {
    auto a = host_arena::create(4, 128, rec.hooks());
    ASSERT_NE(a, nullptr);
    EXPECT_FALSE(a->pinned());
  }
  EXPECT_EQ(rec.unpinned_at, nullptr);
}

TEST(host_tier_slab, a_lease_reads_the_block_in_place_and_outlives_its_eviction) {
  host_tier t({.capacity_blocks = 2, .protect_hits = 0, .block_bytes = 1024});  // 3 slots: one spare for a put
  std::vector<block_hash> evicted;
  t.set_evict_callback([&](block_hash h, bytes&& b) {
    evicted.push_back(h);
    EXPECT_EQ(b, make_block(h)) << "an evicted slab block cascades with its bytes";
  });
  t.put(1, make_block(1));
  t.put(2, make_block(2));
  host_lease l = t.lease(1);
  ASSERT_TRUE(l);
  EXPECT_EQ(copy_of(l.bytes()), make_block(1));
  EXPECT_EQ(t.stats().hits, 1u) << "a lease is a hit";
  t.put(3, make_block(3));  // the spare slot; evicts 2 (1 was just read), whose slot is free again
  t.put(4, make_block(4));  // 2's old slot; evicts 1, whose slot stays lent
  EXPECT_EQ(evicted, (std::vector<block_hash>{2, 1}));
  EXPECT_FALSE(t.contains(1));
  t.put(5, make_block(5));  // no free slot (1's is lent): the heap takes it, the lent bytes are not overwritten
  EXPECT_EQ(copy_of(l.bytes()), make_block(1));
  EXPECT_EQ(*t.get(5), make_block(5));
  EXPECT_FALSE(t.lease(99));
}

TEST(host_tier_slab, replacing_a_lent_block_leaves_the_lent_bytes_alone) {
  host_tier t({.capacity_blocks = 4, .protect_hits = 0, .block_bytes = 1024});
  t.put(7, make_block(70));
  host_lease l = t.lease(7);
  t.put(7, make_block(71));  // the same hash, new bytes (a recomputed block)
  EXPECT_EQ(copy_of(l.bytes()), make_block(70));
  EXPECT_EQ(*t.get(7), make_block(71));
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.stats().bytes_held, 1024u);
}

TEST(host_tier_slab, a_lease_outlives_the_tier) {
  host_lease l;
  {
    host_tier t({.capacity_blocks = 4, .protect_hits = 0, .block_bytes = 1024});
    t.put(9, make_block(9));
    l = t.lease(9);
  }
  EXPECT_EQ(copy_of(l.bytes()), make_block(9));
}

TEST(host_tier_slab, blocks_of_another_size_live_on_the_heap_and_are_not_lent) {
  host_tier t({.capacity_blocks = 4, .protect_hits = 0});  // the slab is sized by the first block
  t.put(1, make_block(1, 512));
  t.put(2, make_block(2, 300));
  EXPECT_TRUE(t.lease(1));
  EXPECT_FALSE(t.lease(2)) << "not in the slab: read it with get_into";
  bytes out(300);
  ASSERT_TRUE(t.get_into(2, out).ok());
  EXPECT_EQ(out, make_block(2, 300));
  EXPECT_EQ(t.stats().bytes_held, 812u);
}

TEST(host_tier_slab, a_slab_too_large_to_allocate_leaves_blocks_on_the_heap) {
  host_tier t({.capacity_blocks = std::size_t{1} << 40, .protect_hits = 0, .block_bytes = 4096});  // 4 PiB
  EXPECT_EQ(t.slab_bytes(), 0u);
  t.put(1, make_block(1, 4096));
  EXPECT_EQ(*t.get(1), make_block(1, 4096));
  EXPECT_FALSE(t.lease(1)) << "nothing to lend in place";
}

TEST(host_tier_slab, pinning_hooks_reach_the_slab) {
  pin_recorder rec;
  {
    host_tier t({.capacity_blocks = 16, .protect_hits = 0, .block_bytes = 4096, .pinning = rec.hooks()});
    EXPECT_TRUE(t.pinned());
    EXPECT_EQ(rec.pinned_bytes, 17u * 4096u) << "capacity plus the spare slot";
    EXPECT_EQ(t.slab_bytes(), 17u * 4096u);
  }
  EXPECT_EQ(rec.unpinned_at, rec.pinned_at);
  host_tier unpinned({.capacity_blocks = 16, .protect_hits = 0, .block_bytes = 4096});
  EXPECT_FALSE(unpinned.pinned());
}

TEST(host_tier_slab, leases_dropped_on_other_threads_while_blocks_come_and_go) {
  host_tier t({.capacity_blocks = 8, .protect_hits = 0, .block_bytes = 256});
  std::vector<std::thread> readers;
  std::size_t lent = 0;
  for (block_hash h = 0; h < 64; ++h) {
    t.put(h, make_block(h, 256));
    host_lease l = t.lease(h);
    if (!l) {  // every free slot lent out at that moment: the block went to the heap, read it by copy
      EXPECT_EQ(*t.get(h), make_block(h, 256));
      continue;
    }
    ++lent;
    readers.emplace_back([l = std::move(l), h] { EXPECT_EQ(copy_of(l.bytes()), make_block(h, 256)); });
  }
  for (auto& r : readers) r.join();
  EXPECT_GE(lent, 9u) << "the first nine blocks found free slots";
  EXPECT_EQ(t.size(), 8u);
  for (block_hash h = 56; h < 64; ++h) EXPECT_EQ(*t.get(h), make_block(h, 256));
}

}  // namespace
}  // namespace yard::kv::tiers
