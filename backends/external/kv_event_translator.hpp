// backends/external/kv_event_translator.hpp — an engine's KV-event stream as Switchyard KV events.
//
// Owns: the map engine block hash -> Switchyard block hash (with parent and the tiers that hold
// it), the sequence-number check of the engine's stream (gap, replay, resync, restart), and the
// ledger of what it has emitted (for snapshot()). No sockets: kv_event_subscriber feeds it.
// Must not touch: sockets, threads, the router's index.
// Thread-safety: not thread-safe; one owner (the subscriber's thread, under its mutex).
//
// Translation. Switchyard's router indexes blocks by its own chained hashes (kv/block_hash.hpp),
// never the engine's. A BlockStored carries the token ids of its blocks, so each block is hashed
// with kv::hash_block, chained from the Switchyard hash of the engine parent (looked up in the
// map; kv::salt_root(cache_salt) when there is no parent: nullopt for vLLM, SGLang's
// metadata.cache_salt when sent, as the router hashes a salted request). `extra` is the LoRA id
// (else kv::salt_root(lora_name) when only vLLM's lora_name is sent) XOR kv::salt_root(the msgpack
// bytes of the block's vLLM extra_keys tuple): the router hashes requests with extra 0, so LoRA,
// multimodal and salted-vLLM blocks never match a plain prompt (a miss, never a false hit).
//   BlockStored  -> stored {switchyard hashes, switchyard parent or nullopt (root), tier}
//   BlockRemoved -> removed {mapped hashes, tier}; hashes never stored are skipped and counted
//   AllBlocksCleared -> cleared; the map and the ledger are emptied
// Medium -> tier: "" / "GPU" 1, "CPU" / "CPU_PINNED" 2, "DISK" 3; others (EXTERNAL, REMOTE) are
// not Switchyard tiers: rejected. A stored event is rejected (counted, logged once) when its
// block_size differs from Switchyard's, its token count is not blocks * block_size (an offload
// event without tokens is translated by hash lookup when every hash is known), or its vLLM
// group_idx is not 0 (hybrid models: Switchyard indexes the full-attention group only).
// A parent never seen (stored before the subscriber started, or lost) makes the chain
// unhashable: the event is skipped and counted in unknown_parents.
//
// Sequence numbers (the engine's 8-byte frame, one per batch, +1 each):
//   first batch         accepted whatever its seq.
//   seq == last + 1     applied.
//   seq >  last + 1     a gap (counted): replay_from() names last + 1; the caller fetches the
//                       missing batches from the engine's replay socket and hands them in. Each
//                       replayed batch in (last, seq) is applied in order. If any of them is
//                       missing (no replay socket, timeout, the engine's buffer no longer holds
//                       it) the translator resyncs at that point: it emits `cleared` followed by
//                       one `stored` event per block it still holds (the snapshot it can know),
//                       keeping the hash map so later removals and children still translate;
//                       blocks stored in the lost batches stay unknown (their children count as
//                       unknown_parents), blocks removed in them stay until removed again or
//                       cleared. Then the live batch is applied.
//   seq <= last         the engine restarted (its publisher counts from 0 again): `cleared`,
//                       map and ledger emptied, the batch applied as a first batch (restarts).
// A payload that does not decode is counted (decode_errors) and logged; its seq still counts,
// so the next batch is not a gap. A single malformed event is skipped and counted the same way;
// the rest of its batch applies. Malformed input never throws.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <spdlog/logger.h>

#include "backends/external/engine_kv_events.hpp"
#include "kv/block_ledger.hpp"
#include "messages/types.hpp"

namespace yard::backends::external {

struct kv_event_subscriber_stats {
  std::uint64_t batches = 0;           // live batches applied (replayed ones not included)
  std::uint64_t events = 0;            // engine events translated (live and replayed)
  std::uint64_t gaps = 0;              // sequence gaps seen
  std::uint64_t replayed_batches = 0;  // missing batches recovered from the replay socket
  std::uint64_t resyncs = 0;           // gaps replay could not close: cleared + snapshot emitted
  std::uint64_t decode_errors = 0;     // payloads, frames or single events that did not decode
  std::uint64_t unknown_parents = 0;   // stored events skipped: parent hash never seen
  std::uint64_t unknown_removed = 0;   // removed hashes never stored: skipped
  std::uint64_t rejected_events = 0;   // block_size / token count / medium / group mismatch
  std::uint64_t unknown_events = 0;    // events with a tag this build does not know
  std::uint64_t restarts = 0;          // seq went back: the engine's publisher restarted
};

// One batch from the engine's replay socket.
struct replayed_batch {
  std::uint64_t seq = 0;
  std::string payload;
};

class kv_event_translator {
 public:
  kv_event_translator(kv_event_source source, std::uint32_t block_size);

  // The first seq to ask the replay socket for when `seq` shows a gap; nullopt otherwise.
  std::optional<std::uint64_t> replay_from(std::uint64_t seq) const;

  // Applies live batch `seq`. `replayed` (may be empty) holds what the replay socket returned for
  // replay_from(seq); entries outside (last, seq) are ignored. Translated events are appended to
  // `out` in order.
  void on_batch(std::uint64_t seq, std::string_view payload, const std::vector<replayed_batch>& replayed,
                std::vector<msg::kv_event>& out);

  // The engine restarted for a reason the seq cannot show (SGLang's epoch changed): `cleared`,
  // state emptied, the next batch is a first batch.
  void on_restart(std::vector<msg::kv_event>& out);
  // A frame that is not [topic, 8-byte seq, payload]: counted.
  void on_bad_frame() { ++stats_.decode_errors; }

  // Every block held now, one `stored` event each (tier, hash, parent).
  std::vector<msg::kv_event> snapshot() const { return ledger_.snapshot(); }
  const kv_event_subscriber_stats& stats() const { return stats_; }
  std::size_t known_blocks() const { return blocks_.size(); }

 private:
  struct block_info {
    std::uint64_t hash = 0;                  // Switchyard's
    std::optional<std::uint64_t> parent;     // Switchyard's; nullopt = root
    std::uint8_t tiers = 0;                  // bit (tier - 1) set while that tier holds it
  };

  void apply_payload(std::string_view payload, std::vector<msg::kv_event>& out);
  void apply_stored(const engine_block_stored& e, std::vector<msg::kv_event>& out);
  void apply_removed(const engine_block_removed& e, std::vector<msg::kv_event>& out);
  void emit(msg::kv_event e, std::vector<msg::kv_event>& out);
  void resync(std::vector<msg::kv_event>& out);
  void reset(std::vector<msg::kv_event>& out);
  std::optional<std::uint8_t> tier_of(const std::string& medium);
  bool rejected(bool& logged, const std::string& why);

  kv_event_source source_;
  std::uint32_t block_size_;
  std::optional<std::uint64_t> last_seq_;
  std::unordered_map<engine_hash, block_info> blocks_;
  kv::block_ledger ledger_;                  // what out has said, for snapshot() and resync
  kv_event_subscriber_stats stats_;
  std::shared_ptr<spdlog::logger> log_;
  bool logged_block_size_ = false, logged_tokens_ = false, logged_medium_ = false, logged_group_ = false;
  std::uint64_t logged_decode_errors_ = 0, logged_unknown_parents_ = 0;
};

}  // namespace yard::backends::external
