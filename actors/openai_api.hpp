// actors/openai_api.hpp — OpenAI wire format <-> Switchyard messages.
//
// Owns: parsing /v1/completions and /v1/chat/completions bodies into
// generate_request plus the per-response rendering options (openai_parse.cpp:
// one allow-list per endpoint, range checks, 400s naming the field), rendering
// token chunks as OpenAI JSON — whole responses and SSE events, logprobs in
// each endpoint's shape, echo, the stream_options usage chunk
// (openai_render.cpp) — and OpenAI's error JSON (openai_api.cpp).
// Must not touch: HTTP sockets, NATS, actors.
// Thread-safety: the free functions are pure; a response_renderer belongs to
// the one HTTP thread serving its response.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "messages/types.hpp"

namespace yard::actors::openai {

enum class endpoint { completions, chat };

// How a response is shaped beyond what generate_request carries.
struct render_options {
  bool include_usage = false;       // stream_options.include_usage: a last chunk with choices [] and usage (default false)
  bool logprobs = false;            // render logprobs (completions: `logprobs` given; chat: `logprobs: true`) (default false)
  std::uint32_t top_logprobs = 0;   // alternatives per token (completions: the `logprobs` int; chat: `top_logprobs`) (default 0)
  std::optional<std::string> echo;  // completions `echo`: the prompt text, prepended to the output (default none)
  std::uint32_t n = 1;              // choices per request, [1, 128] (default 1)
  // vLLM's `return_token_ids` extension: each choice also carries the output's token ids
  // (`token_ids`), so a client (another Switchyard worker, --engine openai) resumes token-exact (default false).
  bool return_token_ids = false;
};

struct parsed_request {
  msg::generate_request gen;
  render_options render;
  bool priority_given = false;  // the body or a header named a priority (API-key tenants cap it)
};

// Agent hints given as HTTP headers, for clients that cannot add body fields
// (X-Priority, X-Latency-Class, X-Session-Id, X-Expected-Output-Tokens; ""
// = absent). A body field wins over its header.
struct request_hint_headers {
  std::string priority, latency_class, session_id, expected_output_tokens;
};

// Parses a request body. Errors are errc::bad_request naming the field
// ("field 'X' ..." or "unsupported field 'X' ..."; error_body turns that
// name into OpenAI's `param`).
result<parsed_request> parse(const std::string& body, endpoint ep, const std::string& request_id,
                             const request_hint_headers& headers = {});
// parse(...).gen.
result<msg::generate_request> parse_request(const std::string& body, endpoint ep, const std::string& request_id);

// {"error": {"message", "type", "param", "code"}} and the HTTP status for it.
// `param` is the field named in the message ("field 'X'"), else null.
int http_status_for(errc code);
std::string error_body(errc code, const std::string& message);

// One response's renderer: feed it the chunks in order.
class response_renderer {
 public:
  response_renderer(endpoint ep, std::string id, std::string model, std::int64_t created, render_options o);

  // Streaming: the SSE `data: ...\n\n` event(s) for one chunk of choice
  // `index` (text delta, logprobs, finish reason; once every choice has
  // finished, the usage chunk when include_usage). The caller appends `data: [DONE]`.
  std::string sse(const msg::token_chunk& c, std::uint32_t index = 0);

  // Whole response: add() every chunk, then full_response().
  void add(const msg::token_chunk& c, std::uint32_t index = 0);
  std::string full_response() const;

  bool all_done() const;  // every choice has its finishing chunk
  msg::usage usage() const;  // the prompt once, completions summed over the choices

 private:
  struct choice_state {
    bool first = true;               // the next event is this choice's first
    bool done = false;
    std::size_t text_offset = 0;     // completions logprobs: bytes of text before the next token
    std::string text;                // whole response: text so far (echo included)
    std::vector<msg::token_logprob> lps;  // whole response: every token's logprobs
    std::vector<msg::token_id> ids;       // whole response with return_token_ids: every output token id
    std::vector<msg::tool_call> calls;    // whole response: tool calls assembled from the chunks' deltas
    std::string finish;
    msg::usage usage;
  };
  nlohmann::json logprobs_json(const std::vector<msg::token_logprob>& lps, std::size_t& text_offset) const;
  nlohmann::json envelope(nlohmann::json choices) const;

  endpoint ep_;
  std::string id_, model_;
  std::int64_t created_;
  render_options o_;
  std::vector<choice_state> choices_;  // o_.n of them
};

// Superseded by response_renderer (no logprobs, echo or usage chunk); kept
// for HTTP front ends not yet moved to it. sse_event puts usage on the
// finishing chunk when include_usage.
std::string sse_event(endpoint ep, const std::string& id, const std::string& model, std::int64_t created,
                      const msg::token_chunk& c, bool include_usage);
std::string full_response(endpoint ep, const std::string& id, const std::string& model, std::int64_t created,
                          const std::string& text, msg::finish_kind finish_reason, const msg::usage& u);

std::string models_body(const std::vector<std::string>& models, std::int64_t created);
// GET /v1/models/{id}: one model object.
std::string model_body(const std::string& id, std::int64_t created);

}  // namespace yard::actors::openai
