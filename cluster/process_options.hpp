// cluster/process_options.hpp — flags every `yard` process shares.
//
// Owns: the NATS connection flags (--nats, auth, TLS), --namespace, logging
// flags (--log-level, --log-json), and turning them into nats_options and
// log_options; the engine flags and the engine factory (mock or native).
// Must not touch: actors (callers spawn them).
// Thread-safety: plain values; parse on the main thread.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "backends/engine.hpp"
#include "backends/kv_tiering.hpp"
#include "cluster/nats_secrets.hpp"
#include "common/log.hpp"
#include "transport/nats_connection.hpp"

namespace yard::cluster {

struct process_options {
  std::string nats_urls;           // comma-separated; empty = embedded server (yard up only)
  std::string ns = "default";      // subject namespace (default "default")
  transport::nats_options nats;    // auth/TLS fields filled from flags, secret files and YARD_NATS_* (nats_secrets.hpp)
  nats_secret_files secrets;       // --nats-password-file, --nats-token-file
  log_options log;
};

void add_process_flags(CLI::App& app, process_options& o, bool nats_required);

// A flag whose value becomes one subject token (a namespace, an id): messages/subject_token.hpp's rule.
CLI::Validator subject_token_check();
// Fills o.nats.servers from o.nats_urls and the auth fields from secret files
// and the environment; exits 2 with a message naming the file when a secret
// cannot be read (start-up only, before anything runs).
void finish_process_options(process_options& o, const std::string& client_name);

// --engine openai: a worker in front of an OpenAI-compatible engine server
// (backends/external/openai_upstream_engine.hpp).
struct upstream_engine_options {
  std::string url;                 // --upstream http(s)://host:port (required with --engine openai)
  std::string model;               // --upstream-model: the server's model name ("" = the first it lists)
  std::string api_key_file;        // --upstream-api-key-file (else $YARD_UPSTREAM_API_KEY; default none)
  std::string health_path = "/health";
  std::string metrics_path = "/metrics";
  std::uint32_t max_inflight = 256;
  int poll_ms = 500;
  int health_timeout_ms = 5000;    // --upstream-health-timeout-ms: a slower health answer is a failed check
  std::string kv_events_endpoint, kv_events_replay_endpoint, kv_events_topic;  // the server's ZeroMQ KV events
  std::string kv_events_source = "vllm";                                        // vllm | sglang
  std::string structured_output = "response_format";  // response_format | sglang | llama.cpp | none
};

struct engine_options {
  std::string engine = "mock";       // mock | native | openai (default mock)
  // model name (mock), model folder (native), tokenizer folder or "mock" (openai: the byte tokenizer); default "mock"
  std::string model;
  double token_delay_ms = 10.0;      // mock: model time per decode step (default 10 ms)
  double speedup = 1.0;              // mock: divides model time (default 1)
  std::string profile;               // mock: timing profile JSON; set = profile mode (default: fixed delay)
  std::uint32_t block_size = 16;     // mock: KV block size in tokens (default 16)
  std::uint32_t num_blocks = 16384;  // mock: KV pool capacity in blocks (default 16384)
  std::uint32_t max_context = 0;     // mock: prompt + output limit; 0 = profile's or 4096 (default 0)
  // native: where the model runs: cpu, cuda or cuda:N (--device); empty = $YARD_DEVICE
  // (the node agent sets it per worker group), else cpu. The mock ignores it.
  std::string device;
  // native: how linear weights are kept (--quantize): none (as stored: f32, f16 or bf16) or int8
  // (per output row, at load; CPU only). Default none; another value is an error naming it.
  std::string quantize = "none";
  // KV tiers under either engine (--kv-host-blocks, --kv-disk-dir, --kv-disk-blocks,
  // --kv-disk-key-file, --kv-g2-gbps, --kv-g3-gbps); default off. The disk
  // directory belongs to one worker: give each worker its own.
  backends::kv_tier_options tiers;
  upstream_engine_options upstream;  // --engine openai
};

void add_engine_flags(CLI::App& app, engine_options& o);
// The served model name: "mock" for the mock engine, the folder's name for native; for openai the
// --upstream-model when given, else the tokenizer folder's name (or "mock").
std::string served_model_name(const engine_options& o);
result<std::unique_ptr<backends::engine>> make_engine(const engine_options& o);
// The tokenizer of the engine `o` describes, without the engine: what a router
// loads (the mock's byte tokenizer, or a model folder's tokenizer.json and chat
// template, never its weights). Errors name the missing or bad file.
result<std::shared_ptr<const backends::prompt_tokenizer>> make_prompt_tokenizer(const engine_options& o);

// Resolves a device name (empty = $YARD_DEVICE, else "cpu") to "cpu" or "cuda".
// "cuda:N" narrows CUDA_VISIBLE_DEVICES to device N before CUDA starts (N must be
// in the list when one is already set, as the node agent does). A malformed
// name, or a device not in the visible list, is errc::bad_request naming it.
result<std::string> resolve_device(const std::string& requested);

// Installs SIGINT/SIGTERM handlers (call first in a command); then
// wait_for_stop_signal() blocks until one arrives and returns it. Works
// whichever thread the kernel delivers the signal to.
void block_stop_signals();
int wait_for_stop_signal();

}  // namespace yard::cluster
