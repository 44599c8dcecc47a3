// backends/chat/tool_calls/tool_call_format.hpp — which text format a model
// uses for tool calls, and its names.
//
// Owns: the tool_call_format enum, its wire names ("none", "llama3_json",
// "hermes", "mistral"), and the default format of a chat-template family
// (backends/native/chat_template's chat_family_name() strings, plus "qwen"
// and "mistral" for configs that name the model rather than the template).
// Must not touch: parsing of model text (tool_call_stream_parser), request
// JSON, the chat template itself.
// Thread-safety: pure functions over constants; safe from any thread.
#pragma once

#include <optional>
#include <string_view>

namespace yard::backends::chat {

// How a model writes tool calls in its output text.
enum class tool_call_format {
  none,         // no tool-call parsing: all output is content
  llama3_json,  // Llama 3.1/3.2: the whole reply is {"name", "parameters"} objects, ';'-separated,
                // optionally after <|python_tag|>
  hermes,       // Hermes/Qwen2.5: <tool_call>{"name", "arguments"}</tool_call> blocks
  mistral,      // Mistral: [TOOL_CALLS] [{"name", "arguments", "id"?}, ...]
};

// "none" | "llama3_json" | "hermes" | "mistral" (exact, case-sensitive);
// nullopt for anything else.
std::optional<tool_call_format> parse_tool_call_format(std::string_view name);

// The wire name of `format`; parse_tool_call_format(tool_call_format_name(f)) == f.
std::string_view tool_call_format_name(tool_call_format format);

// The format a model family writes when nothing else is configured:
// "llama3" -> llama3_json; "chatml", "qwen" -> hermes; "mistral", "llama2" ->
// mistral; anything else (zephyr, plain, unknown, "") -> hermes, the most
// common format among open models.
tool_call_format default_tool_call_format(std::string_view chat_family);

}  // namespace yard::backends::chat
