// kv/tests/block_hash_test.cpp — pins the block-hash scheme of kv/block_hash.hpp with known vectors.
//
// If one of these constants changes, the scheme changed: every persisted G3
// block and every router index built by an older binary becomes unmatched.
#include "kv/block_hash.hpp"

#include <gtest/gtest.h>
#include <xxhash.h>

namespace yard::kv {
namespace {

std::vector<token_id> tokens40() {
  std::vector<token_id> t;
  for (token_id i = 0; i < 40; ++i) t.push_back(i * 7 + 1);
  return t;
}

TEST(block_hash, known_vectors_unsalted) {
  auto h = hash_blocks(tokens40(), 16);
  ASSERT_EQ(h.size(), 2u);  // 40 tokens = 2 full blocks + a partial one (not hashed)
  EXPECT_EQ(h[0], 0x97f065fede936efeULL);
  EXPECT_EQ(h[1], 0x232a8bd35d3dbd11ULL);
}

TEST(block_hash, known_vectors_salted_and_extra) {
  auto s = hash_blocks(tokens40(), 16, "tenant-a");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0], 0xc5e426c09e80ee6aULL);
  EXPECT_EQ(s[1], 0xcc08a81df7975d70ULL);
  EXPECT_EQ(salt_root("tenant-a"), 0x300b02aab4a1f780ULL);
  auto e = hash_blocks(tokens40(), 16, std::nullopt, 42);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0], 0x2d0670e6623c0260ULL);
  EXPECT_EQ(e[1], 0x9400d2abf9d03b07ULL);
}

TEST(block_hash, matches_the_documented_formula) {
  auto t = tokens40();
  std::uint64_t h0 = XXH3_64bits_withSeed(t.data(), 16 * 4, root_seed);
  std::uint64_t h1 = XXH3_64bits_withSeed(t.data() + 16, 16 * 4, h0);
  auto h = hash_blocks(t, 16);
  EXPECT_EQ(h[0], h0);
  EXPECT_EQ(h[1], h1);
  EXPECT_EQ(salt_root(std::nullopt), root_seed);
  EXPECT_EQ(salt_root(""), root_seed);  // empty salt = no salt
  EXPECT_EQ(salt_root("x"), XXH3_64bits("x", 1) ^ root_seed);
}

TEST(block_hash, salt_isolates_every_block) {
  auto t = tokens40();
  auto a = hash_blocks(t, 8, "tenant-a");
  auto b = hash_blocks(t, 8, "tenant-b");
  auto none = hash_blocks(t, 8);
  ASSERT_EQ(a.size(), 5u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_NE(a[i], b[i]);
    EXPECT_NE(a[i], none[i]);
  }
  EXPECT_EQ(a, hash_blocks(t, 8, "tenant-a"));  // deterministic
}

TEST(block_hash, extra_key_changes_hash_and_zero_means_none) {
  auto t = tokens40();
  EXPECT_NE(hash_blocks(t, 16, std::nullopt, 1), hash_blocks(t, 16, std::nullopt, 2));
  EXPECT_EQ(hash_blocks(t, 16, std::nullopt, 0), hash_blocks(t, 16));
}

TEST(block_hash, chain_depends_on_every_earlier_block) {
  auto t = tokens40();
  auto u = t;
  u[0] += 1;  // change block 0 only
  auto a = hash_blocks(t, 16), b = hash_blocks(u, 16);
  EXPECT_NE(a[0], b[0]);
  EXPECT_NE(a[1], b[1]);  // same tokens in block 1, different parent
  auto v = t;
  v[20] += 1;  // change block 1 only
  auto c = hash_blocks(v, 16);
  EXPECT_EQ(a[0], c[0]);
  EXPECT_NE(a[1], c[1]);
}

TEST(block_hash, partial_trailing_block_is_not_hashed) {
  auto t = tokens40();
  EXPECT_EQ(hash_blocks(t, 16).size(), 2u);
  t.resize(32);
  EXPECT_EQ(hash_blocks(t, 16), hash_blocks(tokens40(), 16));  // the partial block never mattered
  t.resize(15);
  EXPECT_TRUE(hash_blocks(t, 16).empty());
  EXPECT_TRUE(hash_blocks({}, 16).empty());
  EXPECT_TRUE(hash_blocks(tokens40(), 0).empty());  // block_size 0: nothing, no crash
}

TEST(block_hash, hash_block_is_the_chain_step) {
  auto t = tokens40();
  auto h = hash_blocks(t, 16, "s", 9);
  EXPECT_EQ(hash_block(salt_root("s"), t.data(), 16, 9), h[0]);
  EXPECT_EQ(hash_block(h[0], t.data() + 16, 16, 9), h[1]);
}

}  // namespace
}  // namespace yard::kv
