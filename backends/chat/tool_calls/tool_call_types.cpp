// backends/chat/tool_calls/tool_call_types.cpp — see tool_call_types.hpp.
#include "backends/chat/tool_calls/tool_call_types.hpp"

#include <cassert>

namespace yard::backends::chat {

void append_stream_step(tool_call_result& result, const stream_step& step) {
  result.content += step.content;
  for (const auto& d : step.calls) {
    if (d.index == result.calls.size()) {
      parsed_tool_call call;
      call.id = d.id.value_or("");
      call.name = d.name.value_or("");
      result.calls.push_back(std::move(call));
    }
    assert(d.index < result.calls.size() && "tool_call_delta indices must be dense from 0");
    if (d.index < result.calls.size()) result.calls[d.index].arguments += d.arguments_fragment;
  }
}

}  // namespace yard::backends::chat
