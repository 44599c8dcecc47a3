// backends/external/openai_upstream_engine.hpp — a Switchyard engine in front of any
// OpenAI-compatible engine server (vLLM, SGLang, llama.cpp's llama-server,
// TensorRT-LLM's trtllm-serve, another Switchyard frontend).
//
// Owns: one streamed POST /v1/completions per request (prompt as token ids,
// see openai_upstream_wire.hpp), on its own thread with its own connection,
// at most `max_inflight` at once (the rest wait here, counted as queued); the
// server's chunks turned into sequence_outputs (text, token ids, logprobs,
// tool calls parsed out of the text as the native engine does, usage with
// the server's cached-token count); cancel = close that request's connection
// (the server sees the client go away and aborts it); a poller thread that
// reads the server's health endpoint and Prometheus metrics (load, see
// upstream_load.hpp) every poll period; optionally the server's KV events
// over ZeroMQ (vLLM/SGLang, kv_event_subscriber.hpp), turned into
// Switchyard-hashed events for the router.
// A dead upstream (a connection refused or cut mid-stream, then a failed
// health check) makes unavailable_reason() say so: the worker refuses new
// requests and announces itself draining; an open stream that is cut ends with
// an `unavailable` error, and so does one that has been silent for the health
// timeout (or two poll periods) while the server is called down (a hung
// server); the client's frontend answers that error by resuming the request on
// another worker from the tokens already delivered. Streams still flowing go
// on. When the health check passes again the worker serves again. A server that
// passes its health check but fails requests (3 `unavailable` failures in a
// row: 5xx, a refused API key, cut streams) drains the worker for
// `failure_hold`, so the client's retries go elsewhere.
// What the worker streams keeps the request's max_tokens and stop strings
// whatever the server does (upstream_output_guard.hpp); the server's numbers
// are range-checked (openai_upstream_wire.hpp, upstream_load.hpp), its
// metrics page is read up to 4 MiB.
// The tokenizer is the model folder's (or the mock's byte tokenizer): the
// router and this worker hash blocks alike, and prompts go upstream as ids.
// Structured output is the server's to enforce: the worker turns response_format
// (or a forced tool call in the llama3_json format) into a JSON schema
// (backends/output_rules_upstream) and the body carries it in the server's
// dialect (`structured_output`). A migrated constrained request is refused (the
// server would start the value over after the delivered part), and so is one
// when the dialect is `none`. Not supported here: KV block export/import (no
// disaggregation through an external engine).
// Must not touch: NATS, actors.
// Thread-safety: like every engine, one owner calls the methods; the request
// threads and the poller talk to it through a mutex-guarded queue. step()
// waits up to 5 ms for a chunk when streams are open (the owner's other
// messages wait that long at most).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "backends/engine.hpp"

namespace yard::backends::external {

struct openai_upstream_options {
  std::string upstream;                   // http(s)://host:port[/prefix]; a trailing "/v1" is dropped
  std::string model;                      // the server's model name ("" = the first id of its GET /v1/models)
  std::string api_key;                    // sent as "Authorization: Bearer <key>" (default none)
  std::string health_path = "/health";    // GET; 2xx = alive ("" = use GET /v1/models)
  std::string metrics_path = "/metrics";  // Prometheus text ("" = no load from the server: local counts only)
  std::uint32_t block_size = 16;          // block size of the hashes the router and the KV events use
  std::uint32_t max_context = 0;          // 0 = the server's max_model_len from /v1/models, else 8192
  std::uint32_t max_inflight = 256;       // streams open to the server at once
  int poll_ms = 500;                      // health and metrics period
  int health_timeout_ms = 5000;           // a health (or metrics) answer slower than this counts as a failed check
  int connect_timeout_ms = 2000;
  int idle_timeout_ms = 300000;           // a stream silent this long fails (unavailable)
  int unhealthy_after = 2;                // failed health checks in a row before draining (1 after a cut stream)
  std::shared_ptr<const prompt_tokenizer> tokenizer;                  // required
  std::function<std::string(const std::vector<token_id>&)> detokenize;  // required
  // The server's KV events over ZeroMQ (vLLM / SGLang publishers): its PUB endpoint ("" = none: the
  // router routes this worker approximately), its replay endpoint ("" = none), the layout and the topic.
  std::string kv_events_endpoint, kv_events_replay_endpoint, kv_events_topic;
  std::string kv_events_source = "vllm";  // vllm | sglang
  // How structured output (response_format, a forced llama3_json tool call) goes to the server as a JSON
  // schema: response_format (vLLM, Switchyard, OpenAI-compatible; default) | sglang | llama.cpp | none
  // (refused). See openai_upstream_wire.hpp.
  std::string structured_output = "response_format";
};

// Connects (GET /v1/models: the model name when not given, max_model_len) and
// starts the poller. A server that cannot be reached is an error only when
// the model name must be learnt from it; otherwise the worker starts draining
// and serves once the server answers its health check.
result<std::unique_ptr<engine>> make_openai_upstream_engine(openai_upstream_options o);

}  // namespace yard::backends::external
