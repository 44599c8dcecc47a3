// actors/openai_parse_tools.hpp — the agent-facing parts of an OpenAI request body.
//
// Owns: parsing and checking `tools`, `tool_choice`, `response_format`, the
// tool fields of chat messages (assistant `tool_calls`, tool `tool_call_id`,
// `name`) and the agent hints (`priority`, `latency_class` / `service_tier`,
// `session_id` / `prompt_cache_key`, `expected_output_tokens`, or the
// X-Priority, X-Latency-Class, X-Session-Id, X-Expected-Output-Tokens headers)
// into a generate_request. Errors are 400s naming the field, as in
// openai_parse.cpp, which calls these.
// Must not touch: sockets, NATS, the rest of the body (openai_parse.cpp).
// Thread-safety: pure functions.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "actors/openai_api.hpp"
#include "common/status.hpp"
#include "messages/types.hpp"

namespace yard::actors::openai {

// Shared by openai_parse.cpp and openai_parse_tools.cpp.
namespace parse_detail {
// A 400 with `message` (which names the field as "field 'X'").
inline error bad(const std::string& message) { return error{errc::bad_request, message}; }
// body[name], or nullptr when absent or null (a JSON null counts as absent).
inline const nlohmann::json* find(const nlohmann::json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}
}  // namespace parse_detail

// A chat message's name / tool_call_id / tool_calls (`at` is "messages[i]").
status parse_message_tools(const nlohmann::json& m, const std::string& at, msg::chat_message& cm);

// tools, tool_choice and response_format. `body` is the raw text: JSON
// schemas are re-read from it in their own key order.
status parse_tools_and_format(const std::string& body, const nlohmann::json& j, endpoint ep, msg::generate_request& r);

// priority, latency class, session, expected output length (body, then headers).
// Sets `priority_given` when the request named a priority.
status parse_agent_hints(const nlohmann::json& j, const request_hint_headers& h, msg::generate_request& r,
                         bool& priority_given);

}  // namespace yard::actors::openai
