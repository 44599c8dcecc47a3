// messages/types.hpp — every wire type, defined once.
//
// Owns: the plain value structs that travel between processes, and their field
// lists (`describe`), which the msgpack and JSON codecs in codec.hpp walk.
// Must not touch: behaviour, I/O, actors. Adding a field is backwards
// compatible (decoders ignore unknown fields and keep defaults for absent
// optional ones); renaming or retyping one is not.
// Thread-safety: plain values.
//
// describe(v, x) lists fields in wire order. v.req(...) fields must be present
// on input; v.opt(...) fields may be absent and keep their default (the default
// is written in the field comment).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "messages/json_value.hpp"
#include "messages/wire_enum.hpp"

namespace yard::msg {

using token_id = std::uint32_t;

// One logit_bias entry: `bias` is added to token `token`'s logit before
// sampling (-100 bans it, +100 all but forces it).
struct logit_bias_entry {
  token_id token = 0;
  float bias = 0.0f;  // [-100, 100]
};
template <class V> void describe(V& v, logit_bias_entry& x) {
  v.req("token", x.token);
  v.req("bias", x.bias);
}

// Logits processing runs in this order (backends/sampling/logits_processor):
// repetition_penalty, frequency/presence penalties, logit_bias, min_tokens ban.
struct sampling_params {
  double temperature = 0.0;            // 0 = greedy (default 0)
  double top_p = 1.0;                  // nucleus mass (default 1 = off)
  std::int32_t top_k = 0;              // 0 = off (default 0)
  std::optional<std::uint64_t> seed;   // absent = engine-chosen
  bool logprobs = false;               // return the chosen token's logprob (default false)
  std::uint32_t top_logprobs = 0;      // with logprobs: this many most likely alternatives per token, 0..20 (default 0)
  double presence_penalty = 0.0;       // OpenAI: subtracted once from every token already in the output, [-2, 2] (default 0)
  double frequency_penalty = 0.0;      // OpenAI: subtracted per occurrence in the output, [-2, 2] (default 0)
  double repetition_penalty = 1.0;     // HF/vLLM: logits of prompt+output tokens divided (>0) or multiplied (<0) by it, (0, 2] (default 1 = off)
  std::vector<logit_bias_entry> logit_bias;  // (default none)
  std::uint32_t min_tokens = 0;        // no EOS, stop token or stop string before this many output tokens (default 0)
};
template <class V> void describe(V& v, sampling_params& x) {
  v.opt("temperature", x.temperature);
  v.opt("top_p", x.top_p);
  v.opt("top_k", x.top_k);
  v.opt("seed", x.seed);
  v.opt("logprobs", x.logprobs);
  v.opt("top_logprobs", x.top_logprobs);
  v.opt("presence_penalty", x.presence_penalty);
  v.opt("frequency_penalty", x.frequency_penalty);
  v.opt("repetition_penalty", x.repetition_penalty);
  v.opt("logit_bias", x.logit_bias);
  v.opt("min_tokens", x.min_tokens);
}

// One tool call an assistant made (OpenAI `tool_calls[]` entry).
struct tool_call_function {
  std::string name;
  std::string arguments;  // the arguments as JSON text (OpenAI sends a string)
};
template <class V> void describe(V& v, tool_call_function& x) {
  v.req("name", x.name);
  v.opt("arguments", x.arguments);
}
struct tool_call {
  std::string id;                 // "call_..." (default "")
  std::string type = "function";  // the only type OpenAI defines (default "function")
  tool_call_function function;
};
template <class V> void describe(V& v, tool_call& x) {
  v.opt("id", x.id);
  v.opt("type", x.type);
  v.req("function", x.function);
}

struct chat_message {
  std::string role;     // "system", "developer", "user", "assistant", "tool"
  std::string content;  // text (default ""; an assistant turn that only calls tools has none)
  std::optional<std::string> name;          // the participant's or (role tool) the function's name (default none)
  std::optional<std::string> tool_call_id;  // role tool: the call this answers (default none)
  std::vector<tool_call> tool_calls;        // role assistant: the calls it made (default none)
};
template <class V> void describe(V& v, chat_message& x) {
  v.req("role", x.role);
  v.opt("content", x.content);
  v.opt("name", x.name);
  v.opt("tool_call_id", x.tool_call_id);
  v.opt("tool_calls", x.tool_calls);
}

// How urgent a request is (agent hint): a busy worker admits interactive work
// before batch work (backends/scheduler), and the simulator models the same.
enum class latency_class : std::uint8_t { interactive, batch };
constexpr std::array<std::string_view, 2> wire_names(latency_class) { return {"interactive", "batch"}; }

// A request to generate tokens. Sent to the router's generate subject with a
// NATS reply inbox; token_chunk messages stream back to that inbox.
struct generate_request {
  std::string request_id;                  // unique per client request; absent = the router (or worker) names one
  std::string model;                       // default "" = the deployment's model
  std::optional<std::string> prompt;       // text prompt (one of prompt/token_ids)
  std::optional<std::vector<token_id>> token_ids;  // pre-tokenized prompt
  std::optional<std::vector<chat_message>> messages;  // chat: the engine applies its template
  sampling_params sampling;
  std::vector<std::string> stop;           // stop strings (default none)
  std::vector<token_id> stop_token_ids;    // stop tokens (default none)
  // Completion budget; 0 = until the context ends: the engine resolves it to
  // its max context length minus the prompt (default 0). A budget larger than
  // what the context leaves is rejected (400 naming max_tokens).
  std::uint32_t max_tokens = 0;
  bool stream = true;                      // stream chunks (default true)
  std::optional<std::string> tenant;       // tenant id, for accounting
  std::int32_t priority = 0;               // higher is admitted first on a busy worker (API-key tenants; default 0)
  std::optional<std::string> cache_salt;   // isolates prefix-cache blocks
  // Tokens already delivered to the client by an earlier attempt (request
  // migration): the worker continues after them without re-sending them.
  std::vector<token_id> resume_tokens;
  std::uint32_t attempt = 0;               // 0 for the first dispatch
  // Set by a router that tokenized the prompt with the workers' tokenizer
  // (token_ids is then the prompt): the chained full-block hashes of token_ids
  // followed by resume_tokens, with cache_salt, at hash_block_size tokens per
  // block. A worker with that block size uses them instead of hashing again;
  // any other worker ignores them (default none).
  std::vector<std::uint64_t> block_hashes;
  std::uint32_t hash_block_size = 0;
  // ---- tools and structured output (OpenAI shapes, passed through as JSON) ----
  std::optional<json_value> tools;            // [{"type":"function","function":{name, description, parameters}}] (default none)
  std::optional<json_value> tool_choice;      // "auto" | "none" | "required" | {"type":"function","function":{"name"}} (default auto)
  std::optional<json_value> response_format;  // {"type":"text"|"json_object"} | {"type":"json_schema","json_schema":{name, schema}} (default text)
  // ---- agent hints ----
  latency_class latency = latency_class::interactive;  // (default interactive)
  std::optional<std::string> session_id;      // keeps a conversation on one worker while it is not overloaded (default none)
  std::uint32_t expected_output_tokens = 0;   // the caller's estimate, for routing and the simulator (default 0 = unknown)
};
template <class V> void describe(V& v, generate_request& x) {
  v.opt("request_id", x.request_id);
  v.opt("model", x.model);
  v.opt("prompt", x.prompt);
  v.opt("token_ids", x.token_ids);
  v.opt("messages", x.messages);
  v.opt("sampling", x.sampling);
  v.opt("stop", x.stop);
  v.opt("stop_token_ids", x.stop_token_ids);
  v.opt("max_tokens", x.max_tokens);
  v.opt("stream", x.stream);
  v.opt("tenant", x.tenant);
  v.opt("priority", x.priority);
  v.opt("cache_salt", x.cache_salt);
  v.opt("resume_tokens", x.resume_tokens);
  v.opt("attempt", x.attempt);
  v.opt("block_hashes", x.block_hashes);
  v.opt("hash_block_size", x.hash_block_size);
  v.opt("tools", x.tools);
  v.opt("tool_choice", x.tool_choice);
  v.opt("response_format", x.response_format);
  v.opt("latency_class", x.latency);
  v.opt("session_id", x.session_id);
  v.opt("expected_output_tokens", x.expected_output_tokens);
}

struct usage {
  std::uint32_t prompt_tokens = 0;
  std::uint32_t completion_tokens = 0;
  std::uint32_t cached_tokens = 0;  // prompt tokens served from the prefix cache
};
template <class V> void describe(V& v, usage& x) {
  v.opt("prompt_tokens", x.prompt_tokens);
  v.opt("completion_tokens", x.completion_tokens);
  v.opt("cached_tokens", x.cached_tokens);
}

struct error_reply {
  std::int32_t code = 500;  // yard::errc value (HTTP-like)
  std::string message;
};
template <class V> void describe(V& v, error_reply& x) {
  v.req("code", x.code);
  v.opt("message", x.message);
}

// One alternative for an output position (OpenAI's top_logprobs entry).
struct top_logprob {
  token_id token = 0;
  std::string text;       // the token's bytes (may be a partial UTF-8 sequence)
  float logprob = 0.0f;
};
template <class V> void describe(V& v, top_logprob& x) {
  v.req("token", x.token);
  v.opt("text", x.text);
  v.req("logprob", x.logprob);
}

// One output token's logprob with its text and the most likely alternatives
// (sampling.top_logprobs of them, most likely first).
struct token_logprob {
  token_id token = 0;
  std::string text;       // the token's bytes (may be a partial UTF-8 sequence)
  float logprob = 0.0f;
  std::vector<top_logprob> top;
};
template <class V> void describe(V& v, token_logprob& x) {
  v.req("token", x.token);
  v.opt("text", x.text);
  v.req("logprob", x.logprob);
  v.opt("top", x.top);
}

// Why a generation ended; on the wire (and in OpenAI responses) its name.
// tool_calls: the output ended in tool calls (the chunks carried them).
enum class finish_kind : std::uint8_t { stop, length, cancelled, error, tool_calls };
constexpr std::array<std::string_view, 5> wire_names(finish_kind) {
  return {"stop", "length", "cancelled", "error", "tool_calls"};
}

// One streamed piece of a tool call (OpenAI `delta.tool_calls[]`): the first
// piece of call `index` carries its id and name, later ones argument text.
// The concatenated `arguments` of one index are the call's JSON arguments.
struct tool_call_delta {
  std::uint32_t index = 0;
  std::optional<std::string> id;
  std::optional<std::string> name;
  std::string arguments;  // (default "")
};
template <class V> void describe(V& v, tool_call_delta& x) {
  v.req("index", x.index);
  v.opt("id", x.id);
  v.opt("name", x.name);
  v.opt("arguments", x.arguments);
}

// One streamed piece of a generation. seq starts at 0 and increases by one per
// chunk; the last chunk has finish_reason set; an error chunk also carries `error`. A worker that admits a
// request first sends an acknowledgement: seq 0, no tokens, its worker_id.
struct token_chunk {
  std::string request_id;
  std::uint64_t seq = 0;
  std::vector<token_id> token_ids;
  std::string text;                       // text delta (valid UTF-8)
  std::optional<finish_kind> finish_reason;
  std::optional<usage> usage_info;        // on the last chunk
  std::optional<error_reply> error;       // on an error chunk
  std::string worker_id;                  // who produced it
  std::vector<float> logprobs;            // per token when requested
  std::vector<token_logprob> token_logprobs;  // per token when requested: text and alternatives (default none)
  // Tool calls parsed from the output (requests with `tools`): the text that
  // formed them is not in `text` (default none).
  std::vector<tool_call_delta> tool_calls;
};
template <class V> void describe(V& v, token_chunk& x) {
  v.req("request_id", x.request_id);
  v.req("seq", x.seq);
  v.opt("token_ids", x.token_ids);
  v.opt("text", x.text);
  v.opt("finish_reason", x.finish_reason);
  v.opt("usage", x.usage_info);
  v.opt("error", x.error);
  v.opt("worker_id", x.worker_id);
  v.opt("logprobs", x.logprobs);
  v.opt("token_logprobs", x.token_logprobs);
  v.opt("tool_calls", x.tool_calls);
}

// Asks whoever is generating request_id to stop and free its resources.
struct cancel_request {
  std::string request_id;
  std::string reason;                     // default "" (free text for logs)
  std::optional<std::uint32_t> attempt;   // only this dispatch attempt (default: every attempt)
};
template <class V> void describe(V& v, cancel_request& x) {
  v.req("request_id", x.request_id);
  v.opt("reason", x.reason);
  v.opt("attempt", x.attempt);
}

// Periodic load report from a worker (also carried inside heartbeats).
// A worker's KV tiers below G1 (all 0 when it runs none): blocks held in G2
// (host) and G3 (disk) now; counters since start of blocks offloaded from G1,
// blocks onboarded back from G2/G3, and G3 writes dropped by back-pressure.
// On the wire its fields sit flat in load_report (no nested map).
struct kv_tier_load {
  std::uint64_t g2_kv_blocks = 0;
  std::uint64_t g3_kv_blocks = 0;
  std::uint64_t kv_offloaded_blocks = 0;
  std::uint64_t kv_onboarded_blocks = 0;
  std::uint64_t g3_dropped_writes = 0;
  bool g3_disabled = false;                 // G3 failed (disk full, I/O error) and runs degraded
};
template <class V> void describe(V& v, kv_tier_load& x) {
  v.opt("g2_kv_blocks", x.g2_kv_blocks);
  v.opt("g3_kv_blocks", x.g3_kv_blocks);
  v.opt("kv_offloaded_blocks", x.kv_offloaded_blocks);
  v.opt("kv_onboarded_blocks", x.kv_onboarded_blocks);
  v.opt("g3_dropped_writes", x.g3_dropped_writes);
  v.opt("g3_disabled", x.g3_disabled);
}

struct load_report {
  std::string worker_id;
  std::uint32_t active_requests = 0;        // sequences being decoded
  std::uint32_t queued_requests = 0;        // waiting for admission
  std::uint64_t pending_prefill_tokens = 0; // prompt tokens not yet prefilled
  std::uint32_t active_kv_blocks = 0;       // blocks referenced by live sequences
  std::uint32_t total_kv_blocks = 0;        // pool capacity
  std::uint64_t timestamp_ms = 0;           // sender wall clock, ms since epoch
  kv_tier_load tiers;                       // KV tiers below G1 (flat on the wire)
};
template <class V> void describe(V& v, load_report& x) {
  v.req("worker_id", x.worker_id);
  v.opt("active_requests", x.active_requests);
  v.opt("queued_requests", x.queued_requests);
  v.opt("pending_prefill_tokens", x.pending_prefill_tokens);
  v.opt("active_kv_blocks", x.active_kv_blocks);
  v.opt("total_kv_blocks", x.total_kv_blocks);
  v.opt("timestamp_ms", x.timestamp_ms);
  describe(v, x.tiers);
}

// Liveness and discovery: every instance publishes one every interval_ms.
// A peer that misses lease_ms of heartbeats is considered gone.
// What a worker does in disaggregated serving: everything (both), only
// prefills for decode workers (prefill), or decodes and sends long prompts to
// the prefill pool (decode).
enum class worker_role : std::uint8_t { both, prefill, decode };
constexpr std::array<std::string_view, 3> wire_names(worker_role) { return {"both", "prefill", "decode"}; }

// What kind of instance a heartbeat comes from; on the wire its name ("worker", ...).
enum class component_kind : std::uint8_t { worker, router, frontend, agent };
constexpr std::array<std::string_view, 4> wire_names(component_kind) { return {"worker", "router", "frontend", "agent"}; }

struct heartbeat {
  std::string instance_id;
  component_kind component = component_kind::worker;  // required on the wire
  worker_role role = worker_role::both;
  std::string model;            // served model name
  std::string generate_subject; // where to send this instance's work
  std::uint32_t lease_ms = 3000;
  std::uint32_t block_size = 16;      // KV block size in tokens (workers)
  std::optional<load_report> load;
  bool draining = false;        // true while the instance refuses new work
  std::uint64_t incarnation = 0;  // random per process start: a restarted instance with the same id differs
  std::uint32_t leased_kv_blocks = 0;  // prefill workers: KV blocks staged for decode workers, not yet released
  std::uint64_t tokenizer_fingerprint = 0;  // workers: backends::tokenizer_fingerprint (0 = unknown)
  // Workers: the id of this incarnation's KV event stream (kv_event_batch::stream); a router takes KV batches and
  // snapshots of that stream only, so a forged batch cannot claim a newer stream (0 = not announced: any).
  std::uint64_t kv_stream = 0;
};
template <class V> void describe(V& v, heartbeat& x) {
  v.req("instance_id", x.instance_id);
  v.req("component", x.component);
  v.opt("role", x.role);
  v.opt("model", x.model);
  v.opt("generate_subject", x.generate_subject);
  v.opt("lease_ms", x.lease_ms);
  v.opt("block_size", x.block_size);
  v.opt("load", x.load);
  v.opt("draining", x.draining);
  v.opt("incarnation", x.incarnation);
  v.opt("leased_kv_blocks", x.leased_kv_blocks);
  v.opt("tokenizer_fingerprint", x.tokenizer_fingerprint);
  v.opt("kv_stream", x.kv_stream);
}

// KV events: the router's view of which blocks each worker holds.
// stored: block_hashes chained after parent_hash; removed: those blocks are
// gone; cleared: every block of the worker (at that tier) is gone.
enum class kv_event_kind : std::uint8_t { stored, removed, cleared };
constexpr std::array<std::string_view, 3> wire_names(kv_event_kind) { return {"stored", "removed", "cleared"}; }

struct kv_event {
  kv_event_kind kind = kv_event_kind::stored;
  std::vector<std::uint64_t> block_hashes;
  std::optional<std::uint64_t> parent_hash;  // absent = chain starts at the root
  std::uint8_t tier = 1;                     // 1 device/engine pool, 2 host, 3 disk
};
template <class V> void describe(V& v, kv_event& x) {
  v.req("kind", x.kind);
  v.opt("block_hashes", x.block_hashes);
  v.opt("parent_hash", x.parent_hash);
  v.opt("tier", x.tier);
}

// A batch of KV events from one worker; seq increases by one per batch so the
// indexer can detect a lost batch and ask for a snapshot.
struct kv_event_batch {
  std::string worker_id;
  std::uint64_t seq = 0;
  std::vector<kv_event> events;
  std::uint64_t timestamp_ms = 0;  // sender wall clock, ms since epoch (0 = not sent): routers measure event lag
  // Which stream of this worker the batch (or snapshot) belongs to: a new one
  // per engine incarnation, larger than every earlier one (the sender's wall
  // clock in µs when the stream opened). A router drops batches and snapshots
  // of a stream older than the newest it has seen. 0 = not sent (older
  // senders): sequence numbers alone decide.
  std::uint64_t stream = 0;
};
template <class V> void describe(V& v, kv_event_batch& x) {
  v.req("worker_id", x.worker_id);
  v.req("seq", x.seq);
  v.opt("events", x.events);
  v.opt("timestamp_ms", x.timestamp_ms);
  v.opt("stream", x.stream);
}

}  // namespace yard::msg
