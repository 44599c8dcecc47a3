// kv/tests/tier_store_test.cpp — host_tier (G2) and disk_tier (G3): LRU with
// frequency protection, checksums, torn/temp files at recovery, encryption, degrade.
#include <gtest/gtest.h>
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

std::unique_ptr<disk_tier> open_disk(const fs::path& dir, std::size_t cap = 64,
                                     std::optional<fs::path> key = std::nullopt) {
  disk_tier_options o;
  o.dir = dir;
  o.capacity_blocks = cap;
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

TEST(disk_tier, roundtrip_and_capacity_lru) {
  temp_dir d;
  auto t = open_disk(d.path, 3);
  std::vector<block_hash> evicted;
  t->set_evict_callback([&](block_hash h) { evicted.push_back(h); });
  for (block_hash h = 1; h <= 3; ++h) ASSERT_TRUE(t->put(h, make_block(h)).ok());
  ASSERT_TRUE(t->get(1).ok());  // touch 1
  ASSERT_TRUE(t->put(4, make_block(4)).ok());
  EXPECT_EQ(evicted, std::vector<block_hash>{2});
  EXPECT_FALSE(fs::exists(d.path / "0000000000000002.ykvb"));
  for (block_hash h : {1, 3, 4}) {
    auto r = t->get(h);
    ASSERT_TRUE(r.ok()) << r.err().describe();
    EXPECT_EQ(*r, make_block(h));
  }
  EXPECT_EQ(t->get(2).err().code, errc::not_found);
}

TEST(disk_tier, recovery_drops_torn_and_temp_files) {
  temp_dir d;
  {
    auto t = open_disk(d.path);
    for (block_hash h = 1; h <= 4; ++h) ASSERT_TRUE(t->put(h, make_block(h)).ok());
  }
  // Torn write under the final name (e.g. power loss without fsync) and a leftover temp.
  fs::resize_file(d.path / "0000000000000003.ykvb", 64 + 1000);
  std::ofstream(d.path / "0000000000000009.ykvb.tmp.0", std::ios::binary) << "partial";
  std::ofstream(d.path / "0000000000000005.ykvb", std::ios::binary) << "YK";  // shorter than a header
  auto t = open_disk(d.path);
  auto r = t->recover();
  ASSERT_TRUE(r.ok());
  std::vector<block_hash> got = *r;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<block_hash>{1, 2, 4}));
  EXPECT_FALSE(fs::exists(d.path / "0000000000000003.ykvb"));
  EXPECT_FALSE(fs::exists(d.path / "0000000000000005.ykvb"));
  EXPECT_FALSE(fs::exists(d.path / "0000000000000009.ykvb.tmp.0"));
  EXPECT_EQ(*t->get(4), make_block(4));
}

TEST(disk_tier, corrupt_checksum_is_an_error_and_removes_file) {
  temp_dir d;
  auto t = open_disk(d.path);
  ASSERT_TRUE(t->put(42, make_block(42)).ok());
  auto p = d.path / "000000000000002a.ykvb";
  {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64 + 100);
    f.put('\x5a' ^ static_cast<char>(make_block(42)[100]));
  }
  auto r = t->get(42);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::corrupt);
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(t->contains(42));
}

TEST(disk_tier, encrypted_roundtrip_and_wrong_key_cannot_read) {
  temp_dir d;
  temp_dir keys;
  auto k1 = write_key(keys.path, "k1", 'a');
  auto k2 = write_key(keys.path, "k2", 'b');
  {
    auto t = open_disk(d.path, 64, k1);
    ASSERT_TRUE(t->put(5, make_block(5)).ok());
    EXPECT_EQ(*t->get(5), make_block(5));
  }
  {  // the stored bytes are not the plaintext
    std::ifstream f(d.path / "0000000000000005.ykvb", std::ios::binary);
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto plain = make_block(5);
    EXPECT_NE(0, std::memcmp(s.data() + 64, plain.data(), plain.size()));
  }
  auto t = open_disk(d.path, 64, k2);
  auto rec = t->recover();  // checksum of the stored bytes is fine: recovered
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->size(), 1u);
  auto r = t->get(5);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::corrupt);
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

TEST(disk_tier, renamed_file_does_not_serve_another_hash) {
  temp_dir d;
  auto t = open_disk(d.path);
  ASSERT_TRUE(t->put(1, make_block(1)).ok());
  fs::copy_file(d.path / "0000000000000001.ykvb", d.path / "0000000000000002.ykvb");
  auto t2 = open_disk(d.path);
  auto rec = t2->recover();
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(*rec, std::vector<block_hash>{1});
  EXPECT_FALSE(t2->contains(2));
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
  for (auto& e : fs::directory_iterator(d.path))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
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
