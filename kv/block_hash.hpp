// kv/block_hash.hpp — chained 64-bit hashes of full KV blocks.
//
// Owns: the one block-hashing scheme every component shares (router indexer,
// block pools, tiers, simulator). Must not touch: anything with state.
// Thread-safety: pure functions.
//
// Scheme (pinned by kv/tests/block_hash_test.cpp; changing it invalidates every
// persisted G3 block and every router index):
//   root     = salt ? XXH3_64bits(salt bytes) ^ 0x5357594152440001 : 0x5357594152440001
//   hash(b)  = XXH3_64bits_withSeed(bytes(b), seed = parent)
//   bytes(b) = the block's tokens as little-endian uint32, then, when extra != 0,
//              extra as little-endian uint64 (LoRA id, multimodal key, ...)
//   parent   = root for the first block, else the previous block's hash.
// Only full blocks are hashed; a trailing partial block has no hash.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "messages/types.hpp"

namespace yard::kv {

using block_hash = std::uint64_t;
using msg::token_id;

inline constexpr block_hash root_seed = 0x5357594152440001ULL;  // "SWYARD\0\1"

// The chain's starting parent for a cache salt (tenant or LoRA id).
block_hash salt_root(std::optional<std::string_view> salt);

// Hash of one block of `n` tokens chained after `parent`.
block_hash hash_block(block_hash parent, const token_id* tokens, std::size_t n, std::uint64_t extra = 0);

// Hashes of every full block of `tokens`.
std::vector<block_hash> hash_blocks(const std::vector<token_id>& tokens, std::uint32_t block_size,
                                    std::optional<std::string_view> salt = std::nullopt, std::uint64_t extra = 0);
// Hashes of every full block of `prompt` followed by `resumed` (a migrated
// request's delivered tokens): what its KV holds once it is prefilled again.
std::vector<block_hash> hash_blocks(const std::vector<token_id>& prompt, const std::vector<token_id>& resumed,
                                    std::uint32_t block_size, std::optional<std::string_view> salt = std::nullopt);

}  // namespace yard::kv
