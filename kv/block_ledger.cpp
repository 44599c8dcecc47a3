// kv/block_ledger.cpp — see block_ledger.hpp.
#include "kv/block_ledger.hpp"

#include <algorithm>

namespace yard::kv {

std::size_t block_ledger::apply(std::span<const msg::kv_event> events) {
  std::size_t bad = 0;
  for (const auto& e : events) {
    if (e.kind == msg::kv_event_kind::cleared) {
      clear();
      continue;
    }
    if (e.tier < 1 || e.tier > 3) {
      ++bad;
      continue;
    }
    auto& t = tiers_[e.tier - 1];
    if (e.kind == msg::kv_event_kind::removed) {
      for (auto h : e.block_hashes) t.erase(h);
      continue;
    }
    // stored: a chain; each block's parent is the block before it.
    std::optional<std::uint64_t> parent = e.parent_hash;
    for (auto h : e.block_hashes) {
      t[h] = parent;
      parent = h;
    }
  }
  return bad;
}

std::vector<msg::kv_event> block_ledger::snapshot() const {
  std::vector<msg::kv_event> out;
  out.reserve(size());
  for (std::size_t i = 0; i < tiers_.size(); ++i) {
    std::vector<std::pair<std::uint64_t, std::optional<std::uint64_t>>> blocks(tiers_[i].begin(), tiers_[i].end());
    std::sort(blocks.begin(), blocks.end());
    for (const auto& [h, parent] : blocks) {
      msg::kv_event e;
      e.kind = msg::kv_event_kind::stored;
      e.block_hashes.push_back(h);
      e.parent_hash = parent;
      e.tier = static_cast<std::uint8_t>(i + 1);
      out.push_back(std::move(e));
    }
  }
  return out;
}

std::size_t block_ledger::size() const {
  std::size_t n = 0;
  for (const auto& t : tiers_) n += t.size();
  return n;
}

std::size_t block_ledger::size(std::uint8_t tier) const {
  return tier >= 1 && tier <= 3 ? tiers_[tier - 1].size() : 0;
}

bool block_ledger::holds(std::uint8_t tier, std::uint64_t hash) const {
  return tier >= 1 && tier <= 3 && tiers_[tier - 1].count(hash) != 0;
}

void block_ledger::clear() {
  for (auto& t : tiers_) t.clear();
}

}  // namespace yard::kv
