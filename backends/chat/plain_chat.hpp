// backends/chat/plain_chat.hpp — the fallback chat format, tools included.
//
// Owns: rendering chat messages for an engine without a chat template (the
// mock's byte tokenizer, a model folder without one): "<|role|>\ncontent\n"
// per message, ending with the assistant's turn. With tools: a
// "<|tools|>\n[...]\n" block first (the OpenAI tools array as JSON), an
// assistant's tool calls as Hermes blocks ("<tool_call>\n{"name": ...,
// "arguments": ...}\n</tool_call>"), so the hermes tool-call format reads what
// this format writes, and tool results as "<|tool|>\ncontent\n".
// Must not touch: tokenization. Thread-safety: a pure function.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/types.hpp"

namespace yard::backends::chat {

std::string render_plain_chat(const std::vector<msg::chat_message>& messages, const msg::json_value* tools);

// A call's arguments as JSON for a prompt: the JSON text parsed back (chat
// templates expect an object), else the text itself as a JSON string.
nlohmann::ordered_json arguments_json(const std::string& arguments);

// A tool call as the hermes format writes it: {"name": ..., "arguments": ...}.
std::string hermes_call_json(const msg::tool_call& call);

}  // namespace yard::backends::chat
