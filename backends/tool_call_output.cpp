#include "backends/tool_call_output.hpp"

namespace yard::backends {

void emit_through_tool_parser(chat::tool_call_stream_parser& parser, const std::string& text, bool last,
                              sequence_output& out) {
  auto step = parser.feed(text);
  if (last) {
    auto rest = parser.finish();
    step.content += rest.content;
    step.calls.insert(step.calls.end(), rest.calls.begin(), rest.calls.end());
  }
  out.text_delta = std::move(step.content);
  for (auto& d : step.calls)
    out.tool_calls.push_back(msg::tool_call_delta{static_cast<std::uint32_t>(d.index), std::move(d.id), std::move(d.name),
                                                  std::move(d.arguments_fragment)});
}

}  // namespace yard::backends
