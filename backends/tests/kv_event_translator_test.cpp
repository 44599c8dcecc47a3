// backends/tests/kv_event_translator_test.cpp — engine KV events -> Switchyard KV events without
// sockets: hashes equal kv::hash_blocks of the token ids, removal, clear, unknown parents,
// rejected events, tiers, SGLang salts, and the sequence rules (gap + replay, resync, restart).
#include "backends/external/kv_event_translator.hpp"

#include <gtest/gtest.h>

#include "backends/tests/engine_kv_events_util.hpp"
#include "kv/block_hash.hpp"

namespace yard::backends::external {
namespace {

using namespace testing;
using msg::kv_event_kind;

struct feed {
  explicit feed(kv_event_source s = kv_event_source::vllm) : t(s, 16) {}
  // Applies batch `seq` with no replay answer.
  std::vector<msg::kv_event> at(std::uint64_t seq, const std::string& payload,
                                const std::vector<replayed_batch>& replayed = {}) {
    std::vector<msg::kv_event> out;
    t.on_batch(seq, payload, replayed, out);
    return out;
  }
  kv_event_translator t;
};

const auto prompt = token_run(1000, 48);  // three blocks of 16
std::vector<msg::token_id> slice(std::size_t from, std::size_t n) {
  return {prompt.begin() + from, prompt.begin() + from + n};
}

TEST(kv_event_translator, stored_hashes_equal_hash_blocks_of_the_token_ids_across_events) {
  feed f;
  const auto want = kv::hash_blocks(prompt, 16);
  auto a = f.at(0, batch({stored({101, 102}, std::nullopt, slice(0, 32))}));
  auto b = f.at(1, batch({stored({103}, 102, slice(32, 16))}));
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, kv_event_kind::stored);
  EXPECT_EQ(a[0].block_hashes, (std::vector<std::uint64_t>{want[0], want[1]}));
  EXPECT_FALSE(a[0].parent_hash.has_value());
  EXPECT_EQ(a[0].tier, 1);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].block_hashes, std::vector<std::uint64_t>{want[2]});
  EXPECT_EQ(b[0].parent_hash, want[1]);
  EXPECT_EQ(f.t.known_blocks(), 3u);
  EXPECT_EQ(f.t.stats().events, 2u);
  EXPECT_EQ(f.t.stats().batches, 2u);
}

TEST(kv_event_translator, bytes_hashes_translate_like_int_ones) {
  feed f;
  const std::string h0(32, 'a'), h1(32, 'b');
  auto ev = tagged("BlockStored", {[&](packer& pk) {
                                     pk.pack_array(2);
                                     bin(pk, h0);
                                     bin(pk, h1);
                                   },
                                   nil(), [](packer& pk) { tokens(pk, slice(0, 32)); }, integer(16), nil(),
                                   text("GPU")});
  auto out = f.at(0, batch({ev}));
  ASSERT_EQ(out.size(), 1u);
  auto want = kv::hash_blocks(slice(0, 32), 16);
  EXPECT_EQ(out[0].block_hashes, want);
  auto rm = f.at(1, batch({tagged("BlockRemoved", {[&](packer& pk) {
                                                     pk.pack_array(1);
                                                     bin(pk, h1);
                                                   },
                                                   text("GPU")})}));
  ASSERT_EQ(rm.size(), 1u);
  EXPECT_EQ(rm[0].block_hashes, std::vector<std::uint64_t>{want[1]});
}

TEST(kv_event_translator, removed_maps_hashes_and_skips_unknown_ones) {
  feed f;
  const auto want = kv::hash_blocks(prompt, 16);
  f.at(0, batch({stored({1, 2, 3}, std::nullopt, prompt)}));
  auto out = f.at(1, batch({removed({3, 77})}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, kv_event_kind::removed);
  EXPECT_EQ(out[0].block_hashes, std::vector<std::uint64_t>{want[2]});
  EXPECT_EQ(f.t.stats().unknown_removed, 1u);
  EXPECT_EQ(f.t.known_blocks(), 2u);
  EXPECT_EQ(f.t.snapshot().size(), 2u);
}

TEST(kv_event_translator, all_blocks_cleared_empties_the_map) {
  feed f;
  f.at(0, batch({stored({1, 2}, std::nullopt, slice(0, 32))}));
  auto out = f.at(1, batch({cleared()}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, kv_event_kind::cleared);
  EXPECT_EQ(f.t.known_blocks(), 0u);
  EXPECT_TRUE(f.t.snapshot().empty());
  // The children of a cleared block can no longer be hashed.
  EXPECT_TRUE(f.at(2, batch({stored({3}, 2, slice(32, 16))})).empty());
  EXPECT_EQ(f.t.stats().unknown_parents, 1u);
}

TEST(kv_event_translator, an_unknown_parent_skips_the_chain_and_counts) {
  feed f;
  EXPECT_TRUE(f.at(0, batch({stored({5}, 4, slice(0, 16))})).empty());
  EXPECT_EQ(f.t.stats().unknown_parents, 1u);
  EXPECT_EQ(f.t.known_blocks(), 0u);
}

TEST(kv_event_translator, a_foreign_block_size_or_token_count_or_group_is_rejected) {
  feed f;
  EXPECT_TRUE(f.at(0, batch({stored({1}, std::nullopt, token_run(0, 32), 32)})).empty());  // block_size 32
  EXPECT_TRUE(f.at(1, batch({stored({1}, std::nullopt, token_run(0, 20))})).empty());      // 20 tokens
  EXPECT_TRUE(f.at(2, batch({stored({1}, std::nullopt, token_run(0, 16), 16,
                                    {text("GPU"), nil(), nil(), integer(1)})})).empty());  // group 1
  EXPECT_TRUE(f.at(3, batch({stored({1}, std::nullopt, token_run(0, 16), 16, {text("REMOTE")})})).empty());
  EXPECT_EQ(f.t.stats().rejected_events, 4u);
  EXPECT_EQ(f.t.known_blocks(), 0u);
}

TEST(kv_event_translator, media_map_to_tiers_and_a_removal_keeps_the_other_tier) {
  feed f;
  const auto want = kv::hash_blocks(slice(0, 16), 16);
  f.at(0, batch({stored({1}, std::nullopt, slice(0, 16))}));
  auto cpu = f.at(1, batch({stored({1}, std::nullopt, slice(0, 16), 16, {text("CPU")})}));
  ASSERT_EQ(cpu.size(), 1u);
  EXPECT_EQ(cpu[0].tier, 2);
  EXPECT_EQ(cpu[0].block_hashes, want);
  // An offload event without tokens is translated by lookup.
  auto disk = f.at(2, batch({stored({1}, std::nullopt, {}, 16, {text("DISK")})}));
  ASSERT_EQ(disk.size(), 1u);
  EXPECT_EQ(disk[0].tier, 3);
  EXPECT_EQ(disk[0].block_hashes, want);
  auto gone = f.at(3, batch({removed({1}, {text("GPU")})}));
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].tier, 1);
  EXPECT_EQ(f.t.known_blocks(), 1u);
  EXPECT_EQ(f.t.snapshot().size(), 2u);  // tiers 2 and 3
}

TEST(kv_event_translator, lora_ids_change_the_hash) {
  feed f;
  auto out = f.at(0, batch({stored({1}, std::nullopt, slice(0, 16), 16, {})}));
  auto lora = f.at(1, batch({tagged("BlockStored", {[](packer& pk) { u64s(pk, {2}); }, nil(),
                                                    [](packer& pk) { tokens(pk, slice(0, 16)); }, integer(16),
                                                    integer(7)})}));
  ASSERT_EQ(lora.size(), 1u);
  EXPECT_EQ(lora[0].block_hashes[0], kv::hash_block(kv::salt_root(std::nullopt), slice(0, 16).data(), 16, 7));
  EXPECT_NE(lora[0].block_hashes[0], out[0].block_hashes[0]);
}

TEST(kv_event_translator, sglang_cache_salt_roots_the_chain_like_a_salted_request) {
  feed f(kv_event_source::sglang);
  auto out = f.at(0, batch({stored({1, 2}, std::nullopt, slice(0, 32), 16, {text("GPU"), [](packer& pk) {
                                       pk.pack_map(1);
                                       str(pk, "cache_salt");
                                       str(pk, "tenant-a");
                                     }})}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].block_hashes, kv::hash_blocks(slice(0, 32), 16, std::string_view("tenant-a")));
}

TEST(kv_event_translator, a_gap_is_closed_by_the_replayed_batches) {
  feed f;
  const auto want = kv::hash_blocks(prompt, 16);
  f.at(0, batch({stored({1}, std::nullopt, slice(0, 16))}));
  EXPECT_EQ(f.t.replay_from(1), std::nullopt);
  EXPECT_EQ(f.t.replay_from(3), 1u);
  std::vector<replayed_batch> replay{{1, batch({stored({2}, 1, slice(16, 16))})},
                                     {2, batch({removed({1})})},
                                     {3, "ignored: the live batch itself"}};
  auto out = f.at(3, batch({stored({3}, 2, slice(32, 16))}), replay);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].block_hashes, std::vector<std::uint64_t>{want[1]});
  EXPECT_EQ(out[1].kind, kv_event_kind::removed);
  EXPECT_EQ(out[2].block_hashes, std::vector<std::uint64_t>{want[2]});
  EXPECT_EQ(f.t.stats().gaps, 1u);
  EXPECT_EQ(f.t.stats().replayed_batches, 2u);
  EXPECT_EQ(f.t.stats().resyncs, 0u);
  EXPECT_EQ(f.t.stats().decode_errors, 0u);
}

TEST(kv_event_translator, a_gap_replay_cannot_close_resyncs_with_cleared_then_the_known_blocks) {
  feed f;
  const auto want = kv::hash_blocks(prompt, 16);
  f.at(0, batch({stored({1}, std::nullopt, slice(0, 16))}));
  // Batch 1 (block 2) is lost for good; batch 2 stores block 3 under it.
  auto out = f.at(2, batch({stored({3}, 2, slice(32, 16))}));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, kv_event_kind::cleared);
  EXPECT_EQ(out[1].kind, kv_event_kind::stored);
  EXPECT_EQ(out[1].block_hashes, std::vector<std::uint64_t>{want[0]});
  EXPECT_EQ(f.t.stats().resyncs, 1u);
  EXPECT_EQ(f.t.stats().unknown_parents, 1u);
  // The map survived: block 1 still translates.
  auto rm = f.at(3, batch({removed({1})}));
  ASSERT_EQ(rm.size(), 1u);
  EXPECT_EQ(rm[0].block_hashes, std::vector<std::uint64_t>{want[0]});
}

TEST(kv_event_translator, a_partial_replay_applies_what_came_and_resyncs_at_the_hole) {
  feed f;
  f.at(0, batch({stored({1}, std::nullopt, slice(0, 16))}));
  // The engine's buffer starts at 2: batch 1 is gone, batch 2 comes back.
  auto out = f.at(3, batch({}), {{2, batch({stored({2}, 1, slice(16, 16))})}});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].kind, kv_event_kind::cleared);
  EXPECT_EQ(out[1].kind, kv_event_kind::stored);  // block 1, from the snapshot
  EXPECT_EQ(out[2].kind, kv_event_kind::stored);  // block 2, replayed
  EXPECT_EQ(f.t.stats().resyncs, 1u);
  EXPECT_EQ(f.t.stats().replayed_batches, 1u);
}

TEST(kv_event_translator, seq_going_back_is_a_restart_and_the_first_seq_is_free) {
  feed f;
  f.at(41, batch({stored({1}, std::nullopt, slice(0, 16))}));  // first batch: any seq
  EXPECT_EQ(f.t.stats().gaps, 0u);
  auto out = f.at(0, batch({stored({9}, std::nullopt, slice(16, 16))}));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, kv_event_kind::cleared);
  EXPECT_EQ(out[1].kind, kv_event_kind::stored);
  EXPECT_EQ(f.t.stats().restarts, 1u);
  EXPECT_EQ(f.t.known_blocks(), 1u);
  EXPECT_EQ(f.t.replay_from(1), std::nullopt);
}

TEST(kv_event_translator, a_malformed_payload_counts_and_keeps_the_sequence) {
  feed f;
  f.at(0, batch({stored({1}, std::nullopt, slice(0, 16))}));
  EXPECT_TRUE(f.at(1, "garbage").empty());
  EXPECT_EQ(f.t.stats().decode_errors, 1u);
  EXPECT_EQ(f.t.replay_from(2), std::nullopt);
  EXPECT_EQ(f.at(2, batch({removed({1})})).size(), 1u);
  // One broken event does not lose the rest of its batch.
  auto out = f.at(3, batch({tagged("BlockStored", {}), stored({1}, std::nullopt, slice(0, 16))}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, kv_event_kind::stored);
  EXPECT_EQ(f.t.stats().decode_errors, 2u);
}

}  // namespace
}  // namespace yard::backends::external
