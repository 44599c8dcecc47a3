// backends/engine.hpp — the interface every inference engine implements.
//
// Owns: the contract between a worker (actors/worker_actor, sim/) and an engine
// (mock_engine, native engine). An engine is a step machine: requests are
// added, each step() runs one scheduler iteration (a batch of prefill chunks
// and decode tokens) and returns what each sequence produced, plus how long
// the step took in model time. The caller decides when to call step() (a live
// worker right away or after the emulated step time; the simulator on its
// virtual clock).
// Must not touch: NATS, actors, wall-clock sleeping (engines never sleep).
// Thread-safety: not thread-safe; one owner calls every method.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "kv/block_hash.hpp"
#include "kv/block_pool.hpp"
#include "backends/chat/tool_calls/tool_call_format.hpp"
#include "backends/kv_tier_store.hpp"
#include "backends/prompt_tokenizer.hpp"
#include "backends/sampling/output_constraint.hpp"
#include "backends/structured/token_trie.hpp"
#include "messages/types.hpp"

namespace yard::backends {

using msg::token_id;

struct engine_request {
  std::string request_id;
  std::vector<token_id> prompt;          // prompt tokens (already tokenized)
  std::vector<token_id> resume_tokens;   // already-delivered output (migration); generation continues after them
  msg::sampling_params sampling;
  std::uint32_t max_tokens = 16;         // includes resume_tokens; 0 = until the context ends
  std::vector<token_id> stop_token_ids;
  std::vector<std::string> stop;         // stop strings
  std::optional<std::string> cache_salt; // seeds the block-hash chain
  std::int32_t priority = 0;             // higher is admitted first when requests wait (default 0)
  msg::latency_class latency = msg::latency_class::interactive;  // batch yields to interactive (default interactive)
  // Structured output: the rule on which tokens may come next (default none).
  std::shared_ptr<output_constraint> constraint;
  // Structured output for an engine that constrains by schema (constrains_by_schema()): the JSON
  // schema the whole output must follow, as JSON text (default none).
  std::optional<std::string> output_schema;
  // Tool calls: parse the output in this format into tool_call deltas (default none: all text is content).
  std::optional<chat::tool_call_format> tool_format;
};

struct sequence_output {
  std::string request_id;
  std::vector<token_id> new_tokens;       // tokens produced this step (usually 0 or 1)
  std::string text_delta;                 // their text, valid UTF-8
  std::vector<float> logprobs;            // per new token when requested
  std::vector<msg::token_logprob> token_logprobs;  // per new token when requested: text and top alternatives
  std::optional<msg::finish_kind> finish_reason;
  msg::usage usage_info;                  // filled when finish_reason is set
  std::optional<std::string> error_message;  // with finish_reason error
  // With finish_reason error: its class. unavailable = the engine lost what serves it (an external
  // engine's upstream died): the client's frontend resumes the request elsewhere from the tokens it has.
  errc error_code = errc::internal;
  std::vector<msg::tool_call_delta> tool_calls;  // tool calls parsed from the output (their text is not in text_delta)
};

struct step_result {
  std::vector<sequence_output> outputs;
  double model_time_ms = 0.0;  // emulated (mock) or measured (native) duration of the step
};

// An engine tokenizes like the tokenizer it serves (prompt_tokenizer: name,
// tokenize, apply_chat_template) and adds the step machine.
class engine : public prompt_tokenizer {
 public:
  virtual std::string detokenize(const std::vector<token_id>& tokens) const = 0;

  // Queues a request. Fails (and queues nothing) on a bad request, e.g. a
  // prompt longer than the context, a max_tokens the context cannot hold
  // (bad_request naming max_tokens), or a duplicate id.
  virtual status add_request(engine_request req) = 0;
  // Like add_request, with the full-block hashes of prompt + resume tokens
  // already computed (same block size and cache salt: a router or the worker
  // hashed them once); engines that do not use them ignore them.
  virtual status add_request_prehashed(engine_request req, std::vector<kv::block_hash> prompt_hashes) {
    return add_request(std::move(req));
  }

  // Stops a request; its next step output carries finish_reason cancelled
  // and its blocks are released. Unknown ids are ignored.
  virtual void cancel(const std::string& request_id) = 0;

  // True while any request is queued or running.
  virtual bool has_work() const = 0;

  // Why the engine cannot take work now (an external engine whose upstream
  // server is down); nullopt = it can. The worker then refuses new requests
  // and announces itself draining until this clears.
  virtual std::optional<std::string> unavailable_reason() const { return std::nullopt; }

  // Runs one scheduler iteration.
  virtual step_result step() = 0;

  // Current load, for routing.
  virtual msg::load_report load() const = 0;

  // KV events produced since the last call (block stored/removed/cleared).
  virtual std::vector<msg::kv_event> drain_kv_events() { return {}; }

  // Every block the engine holds now, as "stored" events (a router that lost
  // events resyncs from this).
  virtual std::vector<msg::kv_event> kv_snapshot() const { return {}; }

  // Longest prompt + output this engine accepts, in tokens.
  virtual std::uint32_t max_context() const = 0;

  // KV block size in tokens (for the router's block hashing).
  virtual std::uint32_t block_size() const { return 16; }

  // ---- KV block bytes (disaggregated prefill, tiers); see backends/kv_exchange.hpp ----
  // Bytes of one block in the engine's portable layout; 0 = nothing to move.
  virtual std::size_t kv_block_bytes() const { return 0; }
  // The KV pool is in GPU memory: block copies to and from host buffers (KV staging, G2) are DMA, which
  // wants those buffers page-locked. Default false (CPU engines, external servers).
  virtual bool kv_on_gpu() const { return false; }
  // Leading blocks of `hashes` (full-block hashes of a prompt, this engine's
  // block size and salt) cached in the engine's pool now.
  virtual std::size_t cached_blocks(std::span<const kv::block_hash> hashes) const { return 0; }
  // Copies the cached leading blocks of `hashes` into `out`; returns how many.
  virtual std::size_t export_kv(std::span<const kv::block_hash> hashes, std::span<std::byte> out) const { return 0; }
  // Stores blocks computed elsewhere as cached blocks (they then serve a
  // later request's prefix like blocks computed here). Returns how many.
  virtual result<std::size_t> import_kv(std::span<const kv::block_hash> hashes, std::optional<kv::block_hash> parent,
                                        std::span<const std::byte> data) {
    return make_error(errc::bad_request, name() + " cannot import KV blocks");
  }

  // ---- KV tiers below the pool (backends/kv_tier_store.hpp) ----
  // The bytes of a block G1 evicts, handed over while still valid.
  using evicted_block_sink = std::function<void(kv::block_hash, std::span<const std::byte>)>;
  // Hands the engine's KV tiers to another owner (a worker's kv_block_manager
  // actor): from then on each evicted block goes to `evicted`, and requests are
  // no longer onboarded inside step() — the owner does it (onboard_question,
  // then onboard_kv with what the tiers read). nullptr, and nothing changes,
  // when the engine has no tiers.
  virtual std::unique_ptr<kv_tier_store> release_tiers(evicted_block_sink evicted) { return nullptr; }
  // Hands the engine's G1 block pool to another owner (a worker's
  // kv_block_manager actor): `owner` gets the pool and returns the client the
  // engine allocates through from then on (every block call becomes a message
  // to the owner; the pool's eviction callback moves to the client). Call it
  // after release_tiers. False, and `owner` is not called, when the engine has
  // no pool (an external engine), has handed it over already, or still runs
  // its tiers in-process.
  using g1_owner = std::function<std::unique_ptr<kv::block_allocator>(std::unique_ptr<kv::block_pool>)>;
  virtual bool hand_over_g1(const g1_owner& owner) { return false; }
  // What the tiers are asked when a request with these full-block hashes and
  // `prompt_tokens` tokens (prompt + resume) is admitted (see make_onboard_ask).
  virtual onboard_ask onboard_question(std::span<const kv::block_hash> hashes, std::size_t prompt_tokens) const {
    return onboard_ask{};
  }
  // Imports what the tiers read for `ask` into the pool (import_onboarded);
  // `f.modelled_ms` is charged to the next step where the engine models time.
  virtual result<std::size_t> onboard_kv(const onboard_ask& ask, const onboard_fetch& f) {
    return make_error(errc::bad_request, name() + " cannot import KV blocks");
  }

  // ---- agents: structured output and tool calls (backends/output_rules.hpp) ----
  // Every token's bytes and the end-of-text ids, for constrained decoding
  // (built once, shared by requests); null: this engine cannot constrain.
  virtual std::shared_ptr<const structured::token_vocabulary> vocabulary() const { return nullptr; }
  // True: this engine's server enforces structured output itself from a JSON schema
  // (engine_request::output_schema; backends/output_rules_upstream), so it needs no vocabulary.
  virtual bool constrains_by_schema() const { return false; }
  // The tool-call format of this engine's model family (a worker flag may override it).
  virtual chat::tool_call_format default_tool_format() const { return chat::tool_call_format::hermes; }
};

}  // namespace yard::backends
