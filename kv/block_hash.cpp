#include "kv/block_hash.hpp"

#include <cstring>

#define XXH_STATIC_LINKING_ONLY  // for the stack-allocated XXH3_state_t
#include <xxhash.h>

namespace yard::kv {

block_hash salt_root(std::optional<std::string_view> salt) {
  if (!salt || salt->empty()) return root_seed;
  return XXH3_64bits(salt->data(), salt->size()) ^ root_seed;
}

block_hash hash_block(block_hash parent, const token_id* tokens, std::size_t n, std::uint64_t extra) {
  static_assert(sizeof(token_id) == 4);
  // Little-endian hosts only (x86-64, aarch64): the token array is hashed as is.
  if (extra == 0) return XXH3_64bits_withSeed(tokens, n * sizeof(token_id), parent);
  XXH3_state_t st;
  XXH3_64bits_reset_withSeed(&st, parent);
  XXH3_64bits_update(&st, tokens, n * sizeof(token_id));
  XXH3_64bits_update(&st, &extra, sizeof(extra));
  return XXH3_64bits_digest(&st);
}

std::vector<block_hash> hash_blocks(const std::vector<token_id>& tokens, std::uint32_t block_size,
                                    std::optional<std::string_view> salt, std::uint64_t extra) {
  std::vector<block_hash> out;
  if (block_size == 0) return out;
  out.reserve(tokens.size() / block_size);
  block_hash parent = salt_root(salt);
  for (std::size_t off = 0; off + block_size <= tokens.size(); off += block_size) {
    parent = hash_block(parent, tokens.data() + off, block_size, extra);
    out.push_back(parent);
  }
  return out;
}

std::vector<block_hash> hash_blocks(const std::vector<token_id>& prompt, const std::vector<token_id>& resumed,
                                    std::uint32_t block_size, std::optional<std::string_view> salt) {
  if (resumed.empty()) return hash_blocks(prompt, block_size, salt);
  std::vector<token_id> all = prompt;
  all.insert(all.end(), resumed.begin(), resumed.end());
  return hash_blocks(all, block_size, salt);
}

}  // namespace yard::kv
