// backends/external/kv_event_translator.cpp — see kv_event_translator.hpp.
#include "backends/external/kv_event_translator.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "kv/block_hash.hpp"

namespace yard::backends::external {
namespace {

std::uint8_t bit(std::uint8_t tier) { return static_cast<std::uint8_t>(1u << (tier - 1)); }

// Logs the first few of a recurring problem, then one in a thousand.
bool worth_logging(std::uint64_t& n) { return n++ < 10 || n % 1000 == 0; }

}  // namespace

kv_event_translator::kv_event_translator(kv_event_source source, std::uint32_t block_size)
    : source_(source), block_size_(block_size), log_(component_logger("kv_events")) {}

std::optional<std::uint64_t> kv_event_translator::replay_from(std::uint64_t seq) const {
  if (last_seq_ && seq > *last_seq_ + 1) return *last_seq_ + 1;
  return std::nullopt;
}

void kv_event_translator::on_batch(std::uint64_t seq, std::string_view payload,
                                   const std::vector<replayed_batch>& replayed, std::vector<msg::kv_event>& out) {
  if (last_seq_ && seq <= *last_seq_) {
    log_->warn("{} KV events: seq {} after {}: the engine's publisher restarted; clearing its blocks",
               to_string(source_), seq, *last_seq_);
    reset(out);
  }
  if (last_seq_ && seq > *last_seq_ + 1) {
    ++stats_.gaps;
    std::uint64_t expected = *last_seq_ + 1;
    std::vector<const replayed_batch*> in_gap;
    for (const auto& r : replayed)
      if (r.seq >= expected && r.seq < seq) in_gap.push_back(&r);
    std::stable_sort(in_gap.begin(), in_gap.end(), [](auto* a, auto* b) { return a->seq < b->seq; });
    bool resynced = false;
    std::uint64_t recovered = 0;
    for (const auto* r : in_gap) {
      if (r->seq < expected) continue;  // a duplicate
      if (r->seq > expected && !resynced) {
        resync(out);
        resynced = true;
      }
      apply_payload(r->payload, out);
      ++stats_.replayed_batches;
      ++recovered;
      expected = r->seq + 1;
    }
    if (expected != seq && !resynced) {
      resync(out);
      resynced = true;
    }
    log_->warn("{} KV events: gap before seq {} ({} batches missing): {} recovered by replay{}", to_string(source_),
               seq, seq - *last_seq_ - 1, recovered, resynced ? ", resynced (cleared + snapshot)" : "");
  }
  apply_payload(payload, out);
  ++stats_.batches;
  last_seq_ = seq;
}

void kv_event_translator::on_restart(std::vector<msg::kv_event>& out) {
  log_->warn("{} KV events: the engine's publisher restarted; clearing its blocks", to_string(source_));
  reset(out);
}

void kv_event_translator::apply_payload(std::string_view payload, std::vector<msg::kv_event>& out) {
  auto batch = decode_engine_kv_batch(source_, payload);
  if (!batch) {
    ++stats_.decode_errors;
    if (worth_logging(logged_decode_errors_))
      log_->warn("{} KV events: batch of {} bytes skipped: {}", to_string(source_), payload.size(),
                 batch.err().describe());
    return;
  }
  stats_.unknown_events += batch->unknown_events;
  if (batch->malformed_events > 0) {
    stats_.decode_errors += batch->malformed_events;
    if (worth_logging(logged_decode_errors_))
      log_->warn("{} KV events: {} events skipped: {}", to_string(source_), batch->malformed_events, batch->first_error);
  }
  for (const auto& ev : batch->events) {
    ++stats_.events;
    if (const auto* s = std::get_if<engine_block_stored>(&ev)) {
      apply_stored(*s, out);
    } else if (const auto* r = std::get_if<engine_block_removed>(&ev)) {
      apply_removed(*r, out);
    } else {
      blocks_.clear();
      emit(msg::kv_event{msg::kv_event_kind::cleared, {}, std::nullopt, 1}, out);
    }
  }
}

void kv_event_translator::apply_stored(const engine_block_stored& e, std::vector<msg::kv_event>& out) {
  if (e.group_idx && *e.group_idx != 0)
    return void(rejected(logged_group_, "group_idx " + std::to_string(*e.group_idx) + " (only group 0 is indexed)"));
  const auto tier = tier_of(e.medium);
  if (!tier) return;
  if (e.block_size != block_size_)
    return void(rejected(logged_block_size_, "block_size " + std::to_string(e.block_size) + " but Switchyard's is " +
                                                 std::to_string(block_size_)));
  const std::size_t n = e.block_hashes.size();
  if (n == 0) return;
  if (e.token_ids.empty()) {
    // An offload event without tokens: translate the blocks already known, one event each.
    for (const auto& h : e.block_hashes) {
      auto it = blocks_.find(h);
      if (it == blocks_.end()) {
        ++stats_.unknown_parents;
        continue;
      }
      it->second.tiers |= bit(*tier);
      emit(msg::kv_event{msg::kv_event_kind::stored, {it->second.hash}, it->second.parent, *tier}, out);
    }
    return;
  }
  if (e.token_ids.size() != n * block_size_)
    return void(rejected(logged_tokens_, std::to_string(e.token_ids.size()) + " token ids for " + std::to_string(n) +
                                             " blocks of " + std::to_string(block_size_)));

  std::optional<std::uint64_t> parent;
  std::uint64_t chain = 0;
  if (e.parent) {
    auto it = blocks_.find(*e.parent);
    if (it == blocks_.end()) {
      ++stats_.unknown_parents;
      if (worth_logging(logged_unknown_parents_))
        log_->info("{} KV events: {} stored blocks skipped: their parent was never seen", to_string(source_), n);
      return;
    }
    parent = it->second.hash;
    chain = it->second.hash;
  } else {
    chain = kv::salt_root(e.cache_salt ? std::optional<std::string_view>(*e.cache_salt) : std::nullopt);
  }
  std::uint64_t lora = 0;
  if (e.lora_id && *e.lora_id != 0) lora = static_cast<std::uint64_t>(*e.lora_id);
  else if (e.lora_name) lora = kv::salt_root(*e.lora_name);

  msg::kv_event ev{msg::kv_event_kind::stored, {}, parent, *tier};
  ev.block_hashes.reserve(n);
  std::optional<std::uint64_t> prev = parent;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t extra = lora;
    if (i < e.extra_keys.size() && !e.extra_keys[i].empty()) extra ^= kv::salt_root(e.extra_keys[i]);
    chain = kv::hash_block(chain, e.token_ids.data() + i * block_size_, block_size_, extra);
    auto& info = blocks_[e.block_hashes[i]];
    if (info.hash != chain) info.tiers = 0;  // a reused engine hash now names another block
    info.hash = chain;
    info.parent = prev;
    info.tiers |= bit(*tier);
    ev.block_hashes.push_back(chain);
    prev = chain;
  }
  emit(std::move(ev), out);
}

void kv_event_translator::apply_removed(const engine_block_removed& e, std::vector<msg::kv_event>& out) {
  if (e.group_idx && *e.group_idx != 0)
    return void(rejected(logged_group_, "group_idx " + std::to_string(*e.group_idx) + " (only group 0 is indexed)"));
  const auto tier = tier_of(e.medium);
  if (!tier) return;
  msg::kv_event ev{msg::kv_event_kind::removed, {}, std::nullopt, *tier};
  for (const auto& h : e.block_hashes) {
    auto it = blocks_.find(h);
    if (it == blocks_.end() || !(it->second.tiers & bit(*tier))) {
      ++stats_.unknown_removed;
      continue;
    }
    ev.block_hashes.push_back(it->second.hash);
    it->second.tiers &= static_cast<std::uint8_t>(~bit(*tier));
    if (it->second.tiers == 0) blocks_.erase(it);
  }
  if (!ev.block_hashes.empty()) emit(std::move(ev), out);
}

void kv_event_translator::emit(msg::kv_event e, std::vector<msg::kv_event>& out) {
  ledger_.apply(std::span<const msg::kv_event>(&e, 1));
  out.push_back(std::move(e));
}

void kv_event_translator::resync(std::vector<msg::kv_event>& out) {
  ++stats_.resyncs;
  auto held = ledger_.snapshot();
  emit(msg::kv_event{msg::kv_event_kind::cleared, {}, std::nullopt, 1}, out);
  for (auto& e : held) emit(std::move(e), out);
}

void kv_event_translator::reset(std::vector<msg::kv_event>& out) {
  ++stats_.restarts;
  blocks_.clear();
  last_seq_.reset();
  emit(msg::kv_event{msg::kv_event_kind::cleared, {}, std::nullopt, 1}, out);
}

std::optional<std::uint8_t> kv_event_translator::tier_of(const std::string& medium) {
  if (medium.empty() || medium == "GPU") return 1;
  if (medium == "CPU" || medium == "CPU_PINNED") return 2;
  if (medium == "DISK") return 3;
  rejected(logged_medium_, "medium '" + medium + "' is not a Switchyard tier");
  return std::nullopt;
}

bool kv_event_translator::rejected(bool& logged, const std::string& why) {
  ++stats_.rejected_events;
  if (!logged) {
    logged = true;
    log_->warn("{} KV events: event rejected: {} (logged once)", to_string(source_), why);
  }
  return false;
}

}  // namespace yard::backends::external
