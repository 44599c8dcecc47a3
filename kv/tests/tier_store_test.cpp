// kv/tests/tier_store_test.cpp — host_tier (G2) and disk_tier (G3): LRU with
// frequency protection; the slab: checksums, torn slots at recovery, encryption, slot reuse, degrade.
#include <gtest/gtest.h>

#include <thread>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "kv/tiers/disk_tier.hpp"
#include "kv/tiers/host_tier.hpp"

namespace yard::kv::tiers {
namespace {
namespace fs = std::filesystem;

bytes make_block(std::uint64_t seed, std::size_t n = 4096) {
  bytes b(n);
  std::mt19937_64 rng(seed);
  for (auto& x : b) x = static_cast<std::byte>(rng());
  return b;
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("yard_tier_test_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() { std::error_code ec; fs::remove_all(path, ec); }
  static int& counter() { static int c = 0; return c; }
};

disk_tier_options disk_options(const fs::path& dir, std::size_t cap) {
  disk_tier_options o;
  o.dir = dir;
  o.capacity_blocks = cap;
  return o;
}

std::unique_ptr<disk_tier> open_disk(const fs::path& dir, std::size_t cap = 64,
                                     std::optional<fs::path> key = std::nullopt) {
  auto o = disk_options(dir, cap);
  o.key_file = key;
  auto r = disk_tier::open(o);
  EXPECT_TRUE(r.ok());
  return std::move(r.value());
}

fs::path write_key(const fs::path& dir, const std::string& name, char fill) {
  auto p = dir / name;
  std::ofstream(p, std::ios::binary) << std::string(32, fill);
  return p;
}

TEST(host_tier, lru_evicts_oldest_and_calls_back) {
  host_tier t({.capacity_blocks = 2, .protect_hits = 0});
  std::vector<block_hash> evicted;
  t.set_evict_callback([&](block_hash h, bytes&& b) { evicted.push_back(h); EXPECT_EQ(b, make_block(h)); });
  for (block_hash h = 1; h <= 3; ++h) t.put(h, make_block(h));
  EXPECT_EQ(evicted, std::vector<block_hash>{1});
  EXPECT_FALSE(t.contains(1));
  ASSERT_TRUE(t.get(2).ok());  // 2 becomes most recent
  t.put(4, make_block(4));
  EXPECT_EQ(evicted, (std::vector<block_hash>{1, 3}));
  EXPECT_EQ(*t.get(4), make_block(4));
  EXPECT_EQ(t.get(99).err().code, errc::not_found);
  EXPECT_TRUE(t.erase(4));
  EXPECT_EQ(t.size(), 1u);
}

TEST(host_tier, frequently_hit_block_outlives_cold_ones) {
  host_tier t({.capacity_blocks = 3, .protect_hits = 2});
  t.put(1, make_block(1));
  ASSERT_TRUE(t.get(1).ok());
  ASSERT_TRUE(t.get(1).ok());  // protected now
  t.put(2, make_block(2));
  t.put(3, make_block(3));
  ASSERT_TRUE(t.get(2).ok());  // 2 more recent than 3 but 1 is older than both
  for (block_hash h = 10; h < 14; ++h) t.put(h, make_block(h));
  EXPECT_TRUE(t.contains(1));  // cold blocks went first despite 1 being least recently used
  EXPECT_GE(t.stats().evictions, 4u);
}

TEST(host_tier, get_into_checks_size) {
  host_tier t;
  t.put(7, make_block(7, 100));
  bytes small(10);
  EXPECT_EQ(t.get_into(7, small).err().code, errc::bad_request);
  bytes out(100);
  ASSERT_TRUE(t.get_into(7, out).ok());
  EXPECT_EQ(out, make_block(7, 100));
}

// Overwrites `n` bytes at `offset` of the slab with `fill` (a torn or tampered slot).
void scribble(const fs::path& slab, std::uint64_t offset, std::size_t n, char fill) {
  std::fstream f(slab, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good());
  f.seekp(static_cast<std::streamoff>(offset));
  for (std::size_t i = 0; i < n; ++i) f.put(fill);
}

TEST(disk_tier, roundtrip_and_capacity_lru) {
  temp_dir d;
  auto t = open_disk(d.path, 3);
  std::vector<block_hash> evicted;
  t->set_evict_callback([&](block_hash h) { evicted.push_back(h); });
  for (block_hash h = 1; h <= 3; ++h) ASSERT_TRUE(t->put(h, make_block(h)).ok());
  ASSERT_TRUE(t->get(1).ok());  // touch 1
  ASSERT_TRUE(t->put(4, make_block(4)).ok());
  EXPECT_EQ(evicted, std::vector<block_hash>{2});
  EXPECT_FALSE(t->contains(2));
  for (block_hash h : {1, 3, 4}) {
    auto r = t->get(h);
    ASSERT_TRUE(r.ok()) << r.err().describe();
    EXPECT_EQ(*r, make_block(h));
  }
  EXPECT_EQ(t->get(2).err().code, errc::not_found);
  EXPECT_EQ(t->slot_bytes(), 8192u);  // 128-byte header + 4096 payload, rounded to 4096
}

TEST(disk_tier, recovery_drops_torn_slots_and_the_old_layouts_files) {
  temp_dir d;
  std::uint64_t off3 = 0;
  fs::path slab;
  {
    auto t = open_disk(d.path);
    for (block_hash h = 1; h <= 4; ++h) ASSERT_TRUE(t->put(h, make_block(h)).ok());
    off3 = *t->slot_offset_for_testing(3);
    slab = t->slab_path();
  }
  // Block 3's slot half rewritten (power loss mid-write: old header, other payload bytes).
  scribble(slab, off3 + 128 + 1000, 600, '\x33');
  // Files of the previous one-file-per-block layout.
  std::ofstream(d.path / "0000000000000009.ykvb.tmp.0", std::ios::binary) << "partial";
  std::ofstream(d.path / "0000000000000005.ykvb", std::ios::binary) << "YK";
  std::ofstream(d.path / "unrelated.txt") << "not ours";
  auto t = open_disk(d.path);
  auto r = t->recover();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<block_hash>{1, 2, 4}));  // oldest write first
  EXPECT_FALSE(fs::exists(d.path / "0000000000000005.ykvb"));
  EXPECT_FALSE(fs::exists(d.path / "0000000000000009.ykvb.tmp.0"));
  EXPECT_TRUE(fs::exists(d.path / "unrelated.txt"));
  EXPECT_EQ(*t->get(4), make_block(4));
  EXPECT_EQ(t->get(3).err().code, errc::not_found);
  // The torn slot is free again: five more blocks fit without growing past 4 + 5 slots.
  for (block_hash h = 10; h < 15; ++h) ASSERT_TRUE(t->put(h, make_block(h)).ok());
  EXPECT_LE(fs::file_size(slab), 4096u + 8u * 8192u);
}

TEST(disk_tier, recovery_keeps_the_newest_blocks_and_their_order) {
  temp_dir d;
  {
    auto t = open_disk(d.path, 8);
    for (block_hash h = 1; h <= 6; ++h) ASSERT_TRUE(t->put(h, make_block(h)).ok());
    ASSERT_TRUE(t->put(2, make_block(2)).ok());  // rewritten: now the newest
  }
  auto t = open_disk(d.path, 3);  // a smaller capacity than what the slab holds
  auto r = t->recover();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<block_hash>{5, 6, 2}));
  std::vector<block_hash> evicted;
  t->set_evict_callback([&](block_hash h) { evicted.push_back(h); });
  ASSERT_TRUE(t->put(7, make_block(7)).ok());
  EXPECT_EQ(evicted, std::vector<block_hash>{5});  // the recovered LRU order holds
  EXPECT_EQ(*t->get(2), make_block(2));
}

TEST(disk_tier, corrupt_checksum_is_an_error_and_frees_the_slot) {
  temp_dir d;
  auto t = open_disk(d.path);
  ASSERT_TRUE(t->put(42, make_block(42)).ok());
  scribble(t->slab_path(), *t->slot_offset_for_testing(42) + 128 + 100, 1,
           '\x5a' ^ static_cast<char>(make_block(42)[100]));
  auto r = t->get(42);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::corrupt);
  EXPECT_FALSE(t->contains(42));
  ASSERT_TRUE(t->put(43, make_block(43)).ok());
  EXPECT_EQ(*t->get(43), make_block(43));
  EXPECT_EQ(fs::file_size(t->slab_path()), 4096u + 8192u);  // 43 took 42's slot
}

TEST(disk_tier, encrypted_roundtrip_and_wrong_key_cannot_read) {
  temp_dir d;
  temp_dir keys;
  auto k1 = write_key(keys.path, "k1", 'a');
  auto k2 = write_key(keys.path, "k2", 'b');
  std::uint64_t off = 0;
  {
    auto t = open_disk(d.path, 64, k1);
    ASSERT_TRUE(t->put(5, make_block(5)).ok());
    EXPECT_EQ(*t->get(5), make_block(5));
    off = *t->slot_offset_for_testing(5);
  }
  {  // the stored bytes are not the plaintext
    std::ifstream f(d.path / "blocks.ykvs", std::ios::binary);
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto plain = make_block(5);
    ASSERT_GE(s.size(), off + 128 + plain.size());
    EXPECT_NE(0, std::memcmp(s.data() + off + 128, plain.data(), plain.size()));
  }
  auto t = open_disk(d.path, 64, k2);
  auto rec = t->recover();  // checksum of the stored bytes is fine: recovered
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->size(), 1u);
  auto r = t->get(5);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::corrupt);
}

// One tier per slab: a second opener waits for the first to close, and gives up with a clear error.
TEST(disk_tier, a_slab_in_use_by_another_tier_is_refused_until_it_closes) {
  temp_dir d;
  auto o = disk_options(d.path, 4);
  o.lock_wait_ms = 100;
  auto first = disk_tier::open(o);
  ASSERT_TRUE(first.ok()) << first.err().describe();
  ASSERT_TRUE((*first)->put(1, make_block(1)).ok());
  auto second = disk_tier::open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.err().code, errc::conflict);
  EXPECT_NE(second.err().message.find("--kv-disk-dir"), std::string::npos) << second.err().message;
  // The first closes while the next opener waits: it gets the slab, blocks included.
  o.lock_wait_ms = 5000;
  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    first->reset();
  });
  auto third = disk_tier::open(o);
  closer.join();
  ASSERT_TRUE(third.ok()) << third.err().describe();
  ASSERT_TRUE((*third)->recover().ok());
  EXPECT_TRUE((*third)->contains(1));
}

TEST(disk_tier, bad_key_file_is_rejected) {
  temp_dir d;
  auto p = d.path / "short.key";
  std::ofstream(p) << "too short";
  disk_tier_options o;
  o.dir = d.path / "blocks";
  o.key_file = p;
  auto r = disk_tier::open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::bad_request);
}

TEST(disk_tier, a_header_edited_to_another_hash_serves_neither) {
  temp_dir d;
  std::uint64_t off = 0;
  {
    auto t = open_disk(d.path);
    ASSERT_TRUE(t->put(1, make_block(1)).ok());
    off = *t->slot_offset_for_testing(1);
  }
  scribble(d.path / "blocks.ykvs", off + 8, 1, '\x02');  // the header's block hash: 1 -> 2
  auto t2 = open_disk(d.path);
  auto rec = t2->recover();
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->empty());  // the checksum covers the header
  EXPECT_FALSE(t2->contains(2));
  EXPECT_FALSE(t2->contains(1));
}

TEST(disk_tier, erased_blocks_stay_gone_after_a_restart) {
  temp_dir d;
  {
    auto t = open_disk(d.path);
    for (block_hash h = 1; h <= 3; ++h) ASSERT_TRUE(t->put(h, make_block(h)).ok());
    EXPECT_TRUE(t->erase(2));
    EXPECT_FALSE(t->erase(2));
    EXPECT_FALSE(t->contains(2));
  }
  auto t = open_disk(d.path);
  auto rec = t->recover();
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(*rec, (std::vector<block_hash>{1, 3}));
}

TEST(disk_tier, a_block_larger_than_a_slot_is_refused) {
  temp_dir d;
  disk_tier_options o;
  o.dir = d.path;
  o.block_bytes = 4096;
  auto t = std::move(disk_tier::open(o).value());
  EXPECT_EQ(t->slot_bytes(), 8192u);
  ASSERT_TRUE(t->put(1, make_block(1, 4096)).ok());
  ASSERT_TRUE(t->put(2, make_block(2, 1000)).ok());  // smaller fits
  auto big = t->put(3, make_block(3, 8192));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.err().code, errc::bad_request);
  EXPECT_FALSE(t->try_put_async(4, make_block(4, 8192)).has_value());
  EXPECT_EQ(t->stats().dropped, 1u);
  EXPECT_FALSE(t->disabled());
  EXPECT_EQ(*t->get(2), make_block(2, 1000));
  EXPECT_FALSE(t->contains(3));
}

TEST(disk_tier, a_slab_for_another_block_size_starts_empty) {
  temp_dir d;
  {
    auto t = open_disk(d.path);
    ASSERT_TRUE(t->put(1, make_block(1)).ok());
  }
  disk_tier_options o;
  o.dir = d.path;
  o.block_bytes = 16384;  // another model's blocks
  auto t = std::move(disk_tier::open(o).value());
  auto rec = t->recover();
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->empty());
  EXPECT_EQ(t->slot_bytes(), 20480u);
  ASSERT_TRUE(t->put(2, make_block(2, 16384)).ok());
  EXPECT_EQ(*t->get(2), make_block(2, 16384));
  {  // and a file that is not a slab at all is started over, not trusted
    temp_dir e;
    std::ofstream(e.path / "blocks.ykvs", std::ios::binary) << std::string(10000, 'x');
    auto u = open_disk(e.path);
    auto r = u->recover();
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->empty());
    ASSERT_TRUE(u->put(9, make_block(9)).ok());
    EXPECT_EQ(*u->get(9), make_block(9));
  }
}

TEST(disk_tier, a_read_racing_an_eviction_misses) {
  temp_dir d;
  auto o = disk_options(d.path, 1);
  o.io_threads = 1;
  auto t = std::move(disk_tier::open(o).value());
  ASSERT_TRUE(t->put(1, make_block(1)).ok());
  ASSERT_TRUE(t->put(2, make_block(2)).ok());  // evicts 1: 2 in slot 1, slot 0 free
  t->hold_writes_for_testing(true);
  auto put3 = t->put_async(3, make_block(3));  // queued first: evicts 2 when it lands
  auto get2 = t->get_async(2);                 // 2 is still held when asked
  t->hold_writes_for_testing(false);
  ASSERT_TRUE(put3.get().ok());
  auto r = get2.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::not_found);
  EXPECT_EQ(*t->get(3), make_block(3));
}

TEST(disk_tier, the_slab_stays_bounded_by_capacity) {
  temp_dir d;
  auto t = open_disk(d.path, 4);
  for (block_hash h = 1; h <= 100; ++h) ASSERT_TRUE(t->put(h, make_block(h)).ok());
  EXPECT_EQ(t->size(), 4u);
  // capacity + one slot per I/O thread (a write lands in a free slot before its victim leaves)
  EXPECT_LE(fs::file_size(t->slab_path()), 4096u + (4u + 2u) * 8192u);
  for (block_hash h = 97; h <= 100; ++h) EXPECT_EQ(*t->get(h), make_block(h));
}

TEST(disk_tier, write_failure_degrades_to_no_g3) {
  temp_dir d;
  auto t = open_disk(d.path);
  std::vector<block_hash> dropped;
  t->set_evict_callback([&](block_hash h) { dropped.push_back(h); });
  ASSERT_TRUE(t->put(1, make_block(1)).ok());
  t->fail_writes_for_testing(true);
  EXPECT_TRUE(t->put(2, make_block(2)).ok());  // degrade is not an error for the caller
  EXPECT_TRUE(t->disabled());
  EXPECT_EQ(t->get(1).err().code, errc::not_found);
  EXPECT_EQ(t->get(2).err().code, errc::not_found);
  EXPECT_TRUE(t->put(3, make_block(3)).ok());
  EXPECT_EQ(t->size(), 0u);
  EXPECT_EQ(dropped, std::vector<block_hash>{1});
}

TEST(disk_tier, parallel_puts_and_gets) {
  temp_dir d;
  auto t = open_disk(d.path, 1000);
  std::vector<std::future<status>> puts;
  for (block_hash h = 1; h <= 64; ++h) puts.push_back(t->put_async(h, make_block(h, 8192)));
  for (auto& f : puts) ASSERT_TRUE(f.get().ok());
  std::vector<std::future<result<bytes>>> gets;
  for (block_hash h = 1; h <= 64; ++h) gets.push_back(t->get_async(h));
  for (block_hash h = 1; h <= 64; ++h) {
    auto r = gets[h - 1].get();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, make_block(h, 8192));
  }
  EXPECT_TRUE(t->sync().ok());
}

}  // namespace
}  // namespace yard::kv::tiers
