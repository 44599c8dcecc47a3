// messages/disagg.hpp — wire types of disaggregated prefill (decode worker <-> router <-> prefill worker).
//
// Owns: remote_prefill_request (decode worker -> router.prefill -> one prefill
// worker), remote_prefill_reply (prefill worker -> the decode worker's inbox:
// the first token plus where the prompt's KV blocks can be read over UCX) and
// kv_release (decode worker -> prefill worker: the blocks may be freed).
// Must not touch: behaviour (actors/worker_actor, actors/kv_transfer_agent).
// Thread-safety: plain values.
//
// Flow: the decode worker picks remote prefill for a long uncached prompt; the
// router picks a prefill worker KV-aware and forwards the request unchanged
// (the reply goes straight back to the decode worker); the prefill worker
// computes the prompt and samples the first token, copies the prompt's full
// blocks into its registered staging memory under a lease, and replies; the
// decode worker streams the first token, pulls the blocks (per-block xxh3
// checksums), imports them, sends kv_release and decodes on. Any failure on
// that path (error reply, timeout, dead peer, corrupt block) makes the decode
// worker prefill locally; a lease nobody releases expires on the prefill side.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "messages/kv_transfer.hpp"
#include "messages/types.hpp"

namespace yard::msg {

struct remote_prefill_request {
  std::string request_id;                  // required: the client request id
  std::uint32_t attempt = 0;               // dispatch attempt on the decode side
  std::string model;                       // model (picks the prefill pool; "" = any)
  std::vector<token_id> token_ids;         // required: the prompt tokens
  sampling_params sampling;                // for the first token
  std::vector<token_id> stop_token_ids;    // a first token that stops ends the request
  std::vector<std::string> stop;
  std::uint32_t max_tokens = 16;           // the client's budget (1 ends after the first token; 0 = until the context ends)
  std::optional<std::string> cache_salt;
  std::uint32_t block_size = 16;           // the decode worker's block size (must match the prefill worker's)
  std::string decode_worker_id;            // for logs and the lease
};
template <class V> void describe(V& v, remote_prefill_request& x) {
  v.req("request_id", x.request_id);
  v.opt("attempt", x.attempt);
  v.opt("model", x.model);
  v.req("token_ids", x.token_ids);
  v.opt("sampling", x.sampling);
  v.opt("stop_token_ids", x.stop_token_ids);
  v.opt("stop", x.stop);
  v.opt("max_tokens", x.max_tokens);
  v.opt("cache_salt", x.cache_salt);
  v.opt("block_size", x.block_size);
  v.opt("decode_worker_id", x.decode_worker_id);
}

struct remote_prefill_reply {
  std::string request_id;                  // required
  std::uint32_t attempt = 0;
  std::optional<error_reply> error;        // set: no prefill happened (the decode side prefills locally)
  std::string prefill_worker_id;
  std::vector<token_id> first_tokens;      // the token sampled from the prompt's logits (0 or 1)
  std::string text;                        // its text delta
  std::vector<float> logprobs;
  std::vector<token_logprob> token_logprobs;  // with sampling.logprobs: the first token's text and alternatives
  std::optional<finish_kind> finish_reason;  // the first token already ended the request
  usage usage_info;                        // prompt/cached tokens on the prefill side
  std::uint64_t lease_id = 0;              // 0 = no blocks held
  std::uint32_t lease_ms = 0;              // blocks are freed after this long without a kv_release
  std::optional<kv_region_descriptor> region;  // where the blocks are
  std::vector<kv_block_ref> blocks;        // the prompt's leading full blocks, in order
  std::string release_subject;             // where kv_release goes
};
template <class V> void describe(V& v, remote_prefill_reply& x) {
  v.req("request_id", x.request_id);
  v.opt("attempt", x.attempt);
  v.opt("error", x.error);
  v.opt("prefill_worker_id", x.prefill_worker_id);
  v.opt("first_tokens", x.first_tokens);
  v.opt("text", x.text);
  v.opt("logprobs", x.logprobs);
  v.opt("token_logprobs", x.token_logprobs);
  v.opt("finish_reason", x.finish_reason);
  v.opt("usage", x.usage_info);
  v.opt("lease_id", x.lease_id);
  v.opt("lease_ms", x.lease_ms);
  v.opt("region", x.region);
  v.opt("blocks", x.blocks);
  v.opt("release_subject", x.release_subject);
}

struct kv_release {
  std::uint64_t lease_id = 0;  // required
  std::string request_id;      // for logs
};
template <class V> void describe(V& v, kv_release& x) {
  v.req("lease_id", x.lease_id);
  v.opt("request_id", x.request_id);
}

}  // namespace yard::msg
