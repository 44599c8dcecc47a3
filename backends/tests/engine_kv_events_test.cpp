// backends/tests/engine_kv_events_test.cpp — vLLM and SGLang KV-event batches decode from each
// engine's layouts: int and bytes hashes, omitted trailing defaults, extra trailing fields, the
// map encoding of newer vLLM, SGLang's metadata, unknown tags, malformed input.
#include "backends/external/engine_kv_events.hpp"

#include <gtest/gtest.h>

#include "backends/tests/engine_kv_events_util.hpp"

namespace yard::backends::external {
namespace {

using namespace testing;

const engine_block_stored& as_stored(const engine_kv_event& e) { return std::get<engine_block_stored>(e); }
const engine_block_removed& as_removed(const engine_kv_event& e) { return std::get<engine_block_removed>(e); }

TEST(engine_kv_events, vllm_v09_array_layout_with_int_hashes) {
  auto toks = token_run(100, 32);
  auto b = decode_engine_kv_batch(kv_event_source::vllm,
                                  batch({stored({11, 12}, std::nullopt, toks), removed({11}), cleared()}));
  ASSERT_TRUE(b.ok()) << b.err().describe();
  EXPECT_DOUBLE_EQ(b->ts, 1700000000.5);
  EXPECT_FALSE(b->dp_rank.has_value());
  ASSERT_EQ(b->events.size(), 3u);
  const auto& s = as_stored(b->events[0]);
  EXPECT_EQ(s.block_hashes, (std::vector<engine_hash>{engine_hash_of(11), engine_hash_of(12)}));
  EXPECT_FALSE(s.parent.has_value());
  EXPECT_EQ(s.token_ids, toks);
  EXPECT_EQ(s.block_size, 16u);
  EXPECT_FALSE(s.lora_id.has_value());
  EXPECT_EQ(s.medium, "");
  EXPECT_TRUE(s.extra_keys.empty());
  EXPECT_EQ(as_removed(b->events[1]).block_hashes, std::vector<engine_hash>{engine_hash_of(11)});
  EXPECT_TRUE(std::holds_alternative<engine_all_cleared>(b->events[2]));
  EXPECT_EQ(b->unknown_events, 0u);
}

TEST(engine_kv_events, an_integer_hash_is_its_eight_big_endian_bytes_and_a_negative_one_its_twos_complement) {
  EXPECT_EQ(engine_hash_of(0x0102030405060708ULL), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  auto payload = batch({tagged("BlockRemoved", {[](packer& pk) {
    pk.pack_array(1);
    pk.pack_int64(-2);
  }})});
  auto b = decode_engine_kv_batch(kv_event_source::vllm, payload);
  ASSERT_TRUE(b.ok()) << b.err().describe();
  EXPECT_EQ(as_removed(b->events[0]).block_hashes[0], engine_hash_of(0xFFFFFFFFFFFFFFFEULL));
}

TEST(engine_kv_events, vllm_bytes_hashes_medium_extra_keys_and_unknown_trailing_fields) {
  const std::string h1(32, '\x11'), h2(32, '\x22'), parent(32, '\x33');
  auto toks = token_run(7, 32);
  auto ev = tagged("BlockStored", {[&](packer& pk) {
                                     pk.pack_array(2);
                                     bin(pk, h1);
                                     bin(pk, h2);
                                   },
                                   [&](packer& pk) { bin(pk, parent); },
                                   [&](packer& pk) { tokens(pk, toks); },
                                   integer(16), integer(3), text("CPU"), text("adapter-a"),
                                   [](packer& pk) {  // extra_keys: none for block 0, a tuple for block 1
                                     pk.pack_array(2);
                                     pk.pack_nil();
                                     pk.pack_array(1);
                                     str(pk, "mm-hash");
                                   },
                                   integer(0), text("full_attention"), nil(),
                                   text("a field from a newer vLLM")});
  auto b = decode_engine_kv_batch(kv_event_source::vllm, batch({ev}, 2));
  ASSERT_TRUE(b.ok()) << b.err().describe();
  EXPECT_EQ(b->dp_rank, 2);
  const auto& s = as_stored(b->events[0]);
  EXPECT_EQ(s.block_hashes, (std::vector<engine_hash>{h1, h2}));
  EXPECT_EQ(s.parent, parent);
  EXPECT_EQ(s.lora_id, 3);
  EXPECT_EQ(s.lora_name, "adapter-a");
  EXPECT_EQ(s.medium, "CPU");
  ASSERT_EQ(s.extra_keys.size(), 2u);
  EXPECT_TRUE(s.extra_keys[0].empty());
  EXPECT_FALSE(s.extra_keys[1].empty());
  EXPECT_EQ(s.group_idx, 0);
}

TEST(engine_kv_events, omitted_trailing_defaults_take_their_defaults) {
  // omit_defaults: a BlockStored without lora_id, a BlockRemoved without medium/group_idx.
  auto ev = tagged("BlockStored", {[](packer& pk) { u64s(pk, {5}); }, nil(),
                                   [](packer& pk) { tokens(pk, token_run(0, 16)); }, integer(16)});
  auto b = decode_engine_kv_batch(kv_event_source::vllm, batch({ev, removed({5})}));
  ASSERT_TRUE(b.ok()) << b.err().describe();
  EXPECT_FALSE(as_stored(b->events[0]).lora_id.has_value());
  EXPECT_FALSE(as_stored(b->events[0]).group_idx.has_value());
  EXPECT_EQ(as_removed(b->events[1]).medium, "");
  EXPECT_FALSE(as_removed(b->events[1]).group_idx.has_value());
}

TEST(engine_kv_events, vllm_map_encoded_events_in_an_array_batch_and_in_a_map_batch) {
  auto stored_map = [](packer& pk) {
    pk.pack_map(7);
    str(pk, "type");
    str(pk, "BlockStored");
    str(pk, "block_hashes");
    u64s(pk, {15760518052499183552ULL});
    str(pk, "parent_block_hash");
    pk.pack_nil();
    str(pk, "token_ids");
    tokens(pk, token_run(151644, 16));
    str(pk, "block_size");
    pk.pack_uint32(16);
    str(pk, "medium");
    str(pk, "GPU");
    str(pk, "kv_cache_spec_kind");
    str(pk, "full_attention");
  };
  auto removed_map = [](packer& pk) {
    pk.pack_map(3);
    str(pk, "type");
    str(pk, "BlockRemoved");
    str(pk, "block_hashes");
    u64s(pk, {15760518052499183552ULL});
    str(pk, "group_idx");
    pk.pack_uint32(0);
  };
  // v0.26: [ts, [{...}], rank]
  auto a = decode_engine_kv_batch(kv_event_source::vllm, batch({stored_map, removed_map}, 0));
  ASSERT_TRUE(a.ok()) << a.err().describe();
  ASSERT_EQ(a->events.size(), 2u);
  EXPECT_EQ(as_stored(a->events[0]).block_hashes[0], engine_hash_of(15760518052499183552ULL));
  EXPECT_EQ(as_stored(a->events[0]).medium, "GPU");
  EXPECT_EQ(as_removed(a->events[1]).group_idx, 0);
  // main after #42892: {"ts", "events", "data_parallel_rank"}
  auto m = decode_engine_kv_batch(kv_event_source::vllm, pack([&](packer& pk) {
                                    pk.pack_map(3);
                                    str(pk, "ts");
                                    pk.pack_double(1.5);
                                    str(pk, "events");
                                    pk.pack_array(1);
                                    stored_map(pk);
                                    str(pk, "data_parallel_rank");
                                    pk.pack_uint32(1);
                                  }));
  ASSERT_TRUE(m.ok()) << m.err().describe();
  EXPECT_DOUBLE_EQ(m->ts, 1.5);
  EXPECT_EQ(m->dp_rank, 1);
  EXPECT_EQ(as_stored(m->events[0]).token_ids.size(), 16u);
}

TEST(engine_kv_events, sglang_medium_metadata_cache_salt_and_attn_dp_rank) {
  auto salted = stored({1}, std::nullopt, token_run(0, 16), 16, {text("GPU"), [](packer& pk) {
                         pk.pack_map(1);
                         str(pk, "cache_salt");
                         str(pk, "tenant-a");
                       }});
  auto plain = stored({2}, 1, token_run(16, 16), 16, {nil()});  // no omit_defaults: medium sent as nil
  auto b = decode_engine_kv_batch(kv_event_source::sglang,
                                  batch({salted, plain, removed({1}, {text("CPU_PINNED")})}, 3));
  ASSERT_TRUE(b.ok()) << b.err().describe();
  EXPECT_EQ(b->dp_rank, 3);
  EXPECT_EQ(as_stored(b->events[0]).cache_salt, "tenant-a");
  EXPECT_EQ(as_stored(b->events[0]).medium, "GPU");
  EXPECT_FALSE(as_stored(b->events[1]).cache_salt.has_value());
  EXPECT_EQ(as_stored(b->events[1]).parent, engine_hash_of(1));
  EXPECT_EQ(as_removed(b->events[2]).medium, "CPU_PINNED");
  // The same position in vLLM's layout is lora_name, a string: a map there breaks that event.
  auto as_vllm = decode_engine_kv_batch(kv_event_source::vllm, batch({salted}));
  ASSERT_TRUE(as_vllm.ok());
  EXPECT_EQ(as_vllm->malformed_events, 1u);
  EXPECT_NE(as_vllm->first_error.find("lora_name"), std::string::npos) << as_vllm->first_error;
}

TEST(engine_kv_events, sglang_cache_salt_as_a_plain_string_field_or_map_key) {
  auto positional = stored({1}, std::nullopt, token_run(0, 16), 16, {text("GPU"), text("tenant-b"), nil()});
  auto keyed = [](packer& pk) {
    pk.pack_map(6);
    str(pk, "type");
    str(pk, "BlockStored");
    str(pk, "block_hashes");
    u64s(pk, {2});
    str(pk, "token_ids");
    tokens(pk, token_run(0, 16));
    str(pk, "block_size");
    pk.pack_uint32(16);
    str(pk, "cache_salt");
    str(pk, "tenant-c");
    str(pk, "session_id");
    str(pk, "s-1");
  };
  auto b = decode_engine_kv_batch(kv_event_source::sglang, batch({positional, keyed}));
  ASSERT_TRUE(b.ok()) << b.err().describe();
  ASSERT_EQ(b->events.size(), 2u);
  EXPECT_EQ(as_stored(b->events[0]).cache_salt, "tenant-b");
  EXPECT_EQ(as_stored(b->events[1]).cache_salt, "tenant-c");
}

TEST(engine_kv_events, an_unknown_event_tag_is_skipped_and_counted) {
  auto b = decode_engine_kv_batch(kv_event_source::vllm,
                                  batch({tagged("BlockPinned", {integer(1)}), removed({9})}));
  ASSERT_TRUE(b.ok()) << b.err().describe();
  EXPECT_EQ(b->unknown_events, 1u);
  ASSERT_EQ(b->events.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<engine_block_removed>(b->events[0]));
}

TEST(engine_kv_events, a_malformed_batch_is_an_error_value) {
  auto bad = [](std::string payload) { return decode_engine_kv_batch(kv_event_source::vllm, payload); };
  EXPECT_FALSE(bad("").ok());
  EXPECT_FALSE(bad("\xc1 not msgpack").ok());
  auto good = batch({stored({1}, std::nullopt, token_run(0, 16))});
  EXPECT_FALSE(bad(good.substr(0, good.size() - 3)).ok());  // truncated
  EXPECT_FALSE(bad(good + "x").ok());                       // trailing bytes
  EXPECT_FALSE(bad(pack([](packer& pk) { pk.pack_uint32(7); })).ok());
  EXPECT_FALSE(bad(pack([](packer& pk) {  // events not an array
                 pk.pack_array(2);
                 pk.pack_double(1);
                 pk.pack_uint32(3);
               })).ok());
  EXPECT_FALSE(bad(pack([](packer& pk) {  // no ts
                 pk.pack_map(1);
                 str(pk, "events");
                 pk.pack_array(0);
               })).ok());
}

TEST(engine_kv_events, a_malformed_event_is_skipped_naming_its_field_and_the_rest_decodes) {
  auto one = [](writer ev) {
    auto b = decode_engine_kv_batch(kv_event_source::vllm, batch({ev, removed({9})}));
    EXPECT_TRUE(b.ok());
    if (b.ok()) {
      EXPECT_EQ(b->malformed_events, 1u);
      EXPECT_EQ(b->events.size(), 1u);  // the removal after it
    }
    return b.ok() ? b->first_error : std::string("batch failed");
  };
  auto tokens_of = [](std::function<void(packer&)> toks) {
    return tagged("BlockStored", {[](packer& pk) { u64s(pk, {1}); }, nil(), toks, integer(16)});
  };
  EXPECT_NE(one(tokens_of([](packer& pk) {
              pk.pack_array(1);
              str(pk, "x");
            })).find("token_ids"),
            std::string::npos);
  EXPECT_NE(one(tokens_of([](packer& pk) {  // SGLang bigram pages: pairs
              pk.pack_array(1);
              pk.pack_array(2);
              pk.pack_uint32(1);
              pk.pack_uint32(2);
            })).find("token_ids"),
            std::string::npos);
  EXPECT_NE(one(tokens_of([](packer& pk) {
              pk.pack_array(1);
              pk.pack_int64(-5);
            })).find("token_ids"),
            std::string::npos);
  EXPECT_NE(one(tagged("BlockRemoved", {[](packer& pk) {
              pk.pack_array(1);
              str(pk, "abc");
            }})).find("block_hashes"),
            std::string::npos);
  EXPECT_NE(one(tagged("BlockStored", {})).find("block_hashes"), std::string::npos);
  EXPECT_NE(one(stored({1}, std::nullopt, token_run(0, 16), 0)).find("block_size"), std::string::npos);
  EXPECT_NE(one(integer(4)).find("event 0"), std::string::npos);  // not tagged
  EXPECT_NE(one([](packer& pk) {                                    // a map without "type"
              pk.pack_map(1);
              str(pk, "block_hashes");
              u64s(pk, {1});
            }).find("type"),
            std::string::npos);
}

}  // namespace
}  // namespace yard::backends::external
