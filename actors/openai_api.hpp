// actors/openai_api.hpp — OpenAI wire format <-> Switchyard messages.
//
// Owns: parsing /v1/completions and /v1/chat/completions bodies into
// generate_request, rendering token chunks as OpenAI JSON (whole responses and
// SSE events), and OpenAI's error JSON. Pure functions, no I/O.
// Must not touch: HTTP sockets, NATS, actors.
// Thread-safety: pure.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "messages/types.hpp"

namespace yard::actors::openai {

enum class endpoint { completions, chat };

// Parses a request body. Errors are errc::bad_request naming the field.
result<msg::generate_request> parse_request(const std::string& body, endpoint ep, const std::string& request_id);

// {"error": {"message", "type", "param", "code"}} and the HTTP status for it.
int http_status_for(errc code);
std::string error_body(errc code, const std::string& message);

// One SSE `data: ...\n\n` event for a chunk (text delta / finish reason / usage).
std::string sse_event(endpoint ep, const std::string& id, const std::string& model, std::int64_t created,
                      const msg::token_chunk& c, bool include_usage);

// A non-streamed response from the collected text and the last chunk.
std::string full_response(endpoint ep, const std::string& id, const std::string& model, std::int64_t created,
                          const std::string& text, const std::string& finish_reason, const msg::usage& u);

std::string models_body(const std::vector<std::string>& models, std::int64_t created);

}  // namespace yard::actors::openai
