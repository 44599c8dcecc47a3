// backends/external/openai_upstream_wire.hpp — what an external engine worker says to an
// OpenAI-compatible server, and how it reads the answers.
//
// Owns: the body of the streamed /v1/completions request a worker sends for one
// engine_request (prompt as token ids, the sampling fields the server takes,
// vLLM's `return_token_ids`), the server's SSE stream split into `data:`
// payloads, and one payload read into an upstream_delta (text, token ids,
// completions-style logprobs, finish reason, usage, an in-stream error).
// Servers spoken to: vLLM, SGLang, llama.cpp's llama-server, TensorRT-LLM's
// trtllm-serve, and Switchyard's own frontend — every one takes token-id
// prompts on /v1/completions.
// Must not touch: sockets, threads, the engine's state (pure functions).
// Thread-safety: pure functions; sse_splitter is a plain value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/engine.hpp"
#include "common/status.hpp"

namespace yard::backends::external {

// The JSON body for POST /v1/completions: `prompt` = prompt + resume tokens
// (a migrated request goes on after what was delivered), `max_tokens` = what is
// left of the budget (a budget of 0 = up to `context_tokens`, or the server's
// default when that is 0: the server's context is not known), stream with
// usage, only the sampling fields that differ from their defaults, so a
// strict server is not sent fields it may not know, and the output schema in
// the server's dialect.
// How a request's output_schema is put to the server: as OpenAI's
// `response_format` {"type": "json_schema", ...} (vLLM's /v1/completions reads
// it, as do Switchyard's frontend and other OpenAI-compatible servers; the
// default), as SGLang's `json_schema` (the schema as a JSON string), as
// llama.cpp's llama-server `json_schema` (the schema as an object), or not at
// all (`none`: such requests are refused).
enum class schema_dialect : std::uint8_t { response_format, sglang, llama_cpp, none };
std::optional<schema_dialect> parse_schema_dialect(std::string_view name);  // "response_format" | "sglang" | "llama.cpp" | "none"

std::string completion_body(const engine_request& r, const std::string& model, std::uint32_t context_tokens,
                            schema_dialect schemas = schema_dialect::response_format);

// One SSE `data:` payload, read.
struct upstream_delta {
  std::string text;
  std::optional<std::vector<msg::token_id>> token_ids;  // absent: the server does not send them
  std::vector<msg::token_logprob> logprobs;             // when asked for and sent
  std::optional<msg::finish_kind> finish;
  std::optional<msg::usage> usage;
  std::optional<error> server_error;  // {"error": ...} inside the stream
  bool done = false;                  // the `[DONE]` sentinel
};

// Reads one payload (choice 0; a usage-only chunk has no choices). Malformed
// JSON is errc::corrupt naming what was wrong.
result<upstream_delta> parse_stream_payload(std::string_view payload);

// Maps a server finish reason to ours: stop/length; vLLM's "abort" is
// cancelled; anything else (e.g. tool_calls, which we parse ourselves) is stop.
msg::finish_kind finish_of(std::string_view reason);

// Splits a byte stream of Server-Sent Events into `data:` payloads, across
// arbitrary chunk boundaries (LF or CRLF line ends; multi-line data joined with
// "\n"; comments and other fields skipped).
class sse_splitter {
 public:
  // Feeds bytes; returns the payloads of the events completed by them.
  std::vector<std::string> feed(std::string_view bytes);
  // Bytes held while waiting for the end of an event.
  std::size_t pending() const { return buf_.size(); }

 private:
  std::string buf_;
};

// The error a non-2xx HTTP answer stands for: 400/404/413/422 are the
// request's fault (bad_request and kin, passed to the client); 429 is
// rate_limited; anything else (5xx, odd codes) is unavailable — the request
// may be tried elsewhere. The message carries the server's error text.
error http_error(int status, std::string_view body);

}  // namespace yard::backends::external
