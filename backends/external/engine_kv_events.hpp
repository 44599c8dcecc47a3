// backends/external/engine_kv_events.hpp — vLLM's and SGLang's KV-event batches, decoded.
//
// Owns: the wire layouts of the msgpack payloads both engines publish over ZeroMQ
// (the third frame of [topic, seq, payload]) and their decoding into neutral structs.
// Must not touch: sockets, Switchyard's block hashes (kv_event_translator maps them),
// logging. Thread-safety: pure functions over plain values.
//
// Layouts followed (msgspec structs; `tag=True` puts the class name first, `array_like=True`
// encodes a struct as an array of its fields in declaration order, `omit_defaults=True` drops
// trailing fields still at their default):
//
//   vLLM  vllm/distributed/kv_events.py
//     v0.9.x (commit b4e69e0af33f): array_like everywhere, int hashes.
//       batch  [ts, events]
//       stored ["BlockStored", block_hashes, parent_block_hash, token_ids, block_size, lora_id]
//       removed["BlockRemoved", block_hashes]         cleared ["AllBlocksCleared"]
//     later releases append fields, in this order at commit 0181ea3173e5: stored + medium
//       ("GPU"/"CPU"), lora_name, extra_keys, group_idx, kv_cache_spec_kind,
//       kv_cache_spec_sliding_window; removed [tag, block_hashes, medium, group_idx]; batch +
//       data_parallel_rank; hashes become ExternalBlockHash = bytes | int (sha256 bytes unless
//       converted to an int; the struct and hash changes landed for v0.10.2, commit 82dfb12e).
//     main after vllm-project/vllm#42892 (commit 0181ea3173e5): array_like dropped: events are
//       maps {"type": "BlockStored", "block_hashes": ..., ...}; the batch is an array in the
//       releases that shipped event maps first (v0.26) and a map {"ts", "events",
//       "data_parallel_rank"} at 0181ea3173e5.
//   SGLang python/sglang/srt/disaggregation/kv_events.py
//     commit 612d579090db: the vLLM v0.9 layout, batch + attn_dp_rank, int hashes.
//     2026 main (BlockStoredWithMetadata, snapshot-v1): no omit_defaults, stored + medium
//       ("GPU", "CPU_PINNED", "DISK", "EXTERNAL") + metadata {"cache_salt": str} (only when a
//       request had a salt); removed [tag, block_hashes, medium]. Later SGLang passes
//       cache_salt (then session_id, lora_name, namespaced_*) to BlockStored directly; that
//       struct was not available to check, so position 6 (or key "cache_salt"/"metadata") is
//       read as the salt when it is a string or a {cache_salt} map and ignored otherwise.
//     Page tails: SGLang stores a trailing partial page with block_size < page size; those are
//       rejected by the translator's block_size check (Switchyard hashes full blocks only).
//
// Every level is accepted as an array or a map, fields past the known ones are ignored (newer
// engines append fields), missing trailing optional fields take their defaults, and an event
// whose tag is unknown is skipped and counted, not an error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.hpp"
#include "messages/types.hpp"

namespace yard::backends::external {

// Which engine publishes the stream: decides the meaning of fields past `medium`.
enum class kv_event_source : std::uint8_t { vllm, sglang };

// An engine's block hash as opaque bytes: an integer hash as its 8 big-endian bytes (a
// negative int64 as its two's complement), a bytes hash (newer vLLM: 32-byte sha256) as is.
using engine_hash = std::string;

struct engine_block_stored {
  std::vector<engine_hash> block_hashes;    // one per full block, chained in order
  std::optional<engine_hash> parent;        // the block before the first one; absent = root
  std::vector<msg::token_id> token_ids;     // [block_hashes.size() * block_size]; empty in
                                            // some offload events (lookup by hash only)
  std::uint32_t block_size = 0;             // tokens per block on the engine side
  std::optional<std::int64_t> lora_id;      // vLLM's deprecated id, SGLang's id
  std::optional<std::string> lora_name;     // vLLM only
  std::string medium;                       // "" when not sent (= the engine's GPU pool)
  std::vector<std::string> extra_keys;      // vLLM: per block, the msgpack bytes of its extra
                                            // key tuple ("" = none); empty when not sent
  std::optional<std::int64_t> group_idx;    // vLLM KV-cache group (hybrid models)
  std::optional<std::string> cache_salt;    // SGLang metadata.cache_salt
};

struct engine_block_removed {
  std::vector<engine_hash> block_hashes;
  std::string medium;                       // "" when not sent
  std::optional<std::int64_t> group_idx;
};

struct engine_all_cleared {};

using engine_kv_event = std::variant<engine_block_stored, engine_block_removed, engine_all_cleared>;

struct engine_kv_batch {
  double ts = 0;                            // engine wall clock, seconds since epoch
  std::vector<engine_kv_event> events;
  std::optional<std::int64_t> dp_rank;      // vLLM data_parallel_rank / SGLang attn_dp_rank
  std::uint32_t unknown_events = 0;         // events with a tag this build does not know: skipped
  std::uint32_t malformed_events = 0;       // known events with a missing or mistyped field: skipped
  std::string first_error;                  // why the first malformed event was skipped
};

// Decodes one payload. Malformed msgpack or a batch that is not [ts, events, ...] or
// {ts, events, ...} is errc::bad_request. A known event with a missing or mistyped field (e.g.
// SGLang's bigram pages, whose token ids are pairs) is skipped and counted in malformed_events,
// first_error naming its index and field; the rest of the batch still decodes. Never throws.
result<engine_kv_batch> decode_engine_kv_batch(kv_event_source source, std::string_view payload);

// The 8-byte big-endian encoding of an integer engine hash (what decode produces for ints).
engine_hash engine_hash_of(std::uint64_t h);

std::string_view to_string(kv_event_source s);

}  // namespace yard::backends::external
