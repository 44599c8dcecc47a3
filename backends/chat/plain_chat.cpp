// backends/chat/plain_chat.cpp — see plain_chat.hpp.
#include "backends/chat/plain_chat.hpp"

namespace yard::backends::chat {

nlohmann::ordered_json arguments_json(const std::string& arguments) {
  auto args = nlohmann::ordered_json::parse(arguments, nullptr, false);
  return args.is_discarded() ? nlohmann::ordered_json(arguments) : args;
}

std::string hermes_call_json(const msg::tool_call& call) {
  nlohmann::ordered_json j;
  j["name"] = call.function.name;
  j["arguments"] = arguments_json(call.function.arguments);
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string render_plain_chat(const std::vector<msg::chat_message>& messages, const msg::json_value* tools) {
  std::string s;
  if (tools && tools->v.is_array() && !tools->v.empty())
    s += "<|tools|>\n" + tools->v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  for (const auto& m : messages) {
    s += "<|" + m.role + "|>\n" + m.content;
    for (const auto& c : m.tool_calls) s += "<tool_call>\n" + hermes_call_json(c) + "\n</tool_call>";
    s += "\n";
  }
  s += "<|assistant|>\n";
  return s;
}

}  // namespace yard::backends::chat
