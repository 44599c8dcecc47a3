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
// JSON, and token ids past 2^32 - 1, are errc::corrupt naming what was wrong;
// usage counts out of range are left out. At most `max_top` alternatives per
// token and one logprob entry per token id (when ids are sent) are kept: what
// was asked for, not what a server sends. A finish reason of "abort" (vLLM:
// the server gave the request up; we cancel by closing the connection, so it
// was not us) is a server_error, unavailable: the request resumes elsewhere.
result<upstream_delta> parse_stream_payload(std::string_view payload, std::uint32_t max_top = 20);

// Maps a server finish reason to ours: stop/length; "abort"/"cancelled" are
// cancelled (parse_stream_payload makes a server's abort an error first);
// anything else (e.g. tool_calls, which we parse ourselves) is stop.
msg::finish_kind finish_of(std::string_view reason);

// Splits a byte stream of Server-Sent Events into `data:` payloads, across
// arbitrary chunk boundaries (LF or CRLF line ends; multi-line data joined with
// "\n"; comments and other fields skipped). Each byte is scanned once (a
// large event arriving in small reads costs linear time), and an event longer
// than `max_event_bytes` is not held: overflowed() turns true, the buffer is
// dropped and feed() returns nothing more (the caller ends the stream).
class sse_splitter {
 public:
  static constexpr std::size_t default_max_event_bytes = 4u << 20;  // 4 MiB: a token event is a few KB
  explicit sse_splitter(std::size_t max_event_bytes = default_max_event_bytes) : max_event_(max_event_bytes) {}
  // Feeds bytes; returns the payloads of the events completed by them.
  std::vector<std::string> feed(std::string_view bytes);
  // Bytes held while waiting for the end of an event.
  std::size_t pending() const { return buf_.size(); }
  bool overflowed() const { return overflowed_; }
  std::size_t max_event_bytes() const { return max_event_; }

 private:
  std::string buf_;
  std::size_t scanned_ = 0;  // of buf_, the bytes already searched for an event's end
  std::size_t max_event_;
  bool overflowed_ = false;
};

// The error a non-2xx HTTP answer stands for: 400/404/413/422 are the
// request's fault (bad_request and kin, passed to the client); 429 is
// rate_limited; anything else (5xx, odd codes) is unavailable — the request
// may be tried elsewhere. The message carries the server's error text, cut to
// its first 2000 bytes (on a UTF-8 character boundary).
error http_error(int status, std::string_view body);

}  // namespace yard::backends::external
