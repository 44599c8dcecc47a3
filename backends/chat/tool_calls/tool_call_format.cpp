// backends/chat/tool_calls/tool_call_format.cpp — see tool_call_format.hpp.
#include "backends/chat/tool_calls/tool_call_format.hpp"

#include <array>
#include <utility>

namespace yard::backends::chat {

namespace {

constexpr std::array<std::pair<std::string_view, tool_call_format>, 4> k_names{{
    {"none", tool_call_format::none},
    {"llama3_json", tool_call_format::llama3_json},
    {"hermes", tool_call_format::hermes},
    {"mistral", tool_call_format::mistral},
}};

}  // namespace

std::optional<tool_call_format> parse_tool_call_format(std::string_view name) {
  for (const auto& [n, f] : k_names)
    if (n == name) return f;
  return std::nullopt;
}

std::string_view tool_call_format_name(tool_call_format format) {
  for (const auto& [n, f] : k_names)
    if (f == format) return n;
  return "none";
}

tool_call_format default_tool_call_format(std::string_view chat_family) {
  if (chat_family == "llama3") return tool_call_format::llama3_json;
  if (chat_family == "mistral" || chat_family == "llama2") return tool_call_format::mistral;
  // "chatml", "qwen" and everything unknown.
  return tool_call_format::hermes;
}

}  // namespace yard::backends::chat
