// kv/block_ledger.hpp — what one worker has told the cluster it holds.
//
// Owns: the set of (tier, block hash) a worker's published KV events say it
// holds, with each block's parent link, rebuilt event by event: stored adds,
// removed drops, cleared drops every tier (as the router's indexer reads it).
// Its snapshot() is the same set as one stored event per block, so a
// snapshot answered from the ledger matches the event stream exactly up to
// the last batch applied, whatever the engine has done since.
// Must not touch: the block pool (the engine's), NATS, actors.
// Thread-safety: not thread-safe; one owner (a worker's kv_block_manager).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "messages/types.hpp"

namespace yard::kv {

class block_ledger {
 public:
  // Applies events in order. Returns how many were malformed (tier outside 1..3): skipped.
  std::size_t apply(std::span<const msg::kv_event> events);
  // Every held block as one stored event (tier, hash, parent); order by tier then hash.
  std::vector<msg::kv_event> snapshot() const;
  std::size_t size() const;                       // (tier, hash) entries held
  std::size_t size(std::uint8_t tier) const;      // entries at one tier (1..3)
  bool holds(std::uint8_t tier, std::uint64_t hash) const;
  void clear();

 private:
  // tier-1 index -> hash -> parent (absent: chain root)
  std::array<std::unordered_map<std::uint64_t, std::optional<std::uint64_t>>, 3> tiers_;
};

}  // namespace yard::kv
