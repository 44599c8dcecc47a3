// backends/chat/tool_calls/tool_call_parser.cpp — see tool_call_parser.hpp.
#include "backends/chat/tool_calls/tool_call_parser.hpp"

namespace yard::backends::chat {

tool_call_result parse_tool_calls(tool_call_format format, std::string_view text, id_source& ids) {
  tool_call_stream_parser parser(format, ids);
  tool_call_result result;
  append_stream_step(result, parser.feed(text));
  append_stream_step(result, parser.finish());
  return result;
}

}  // namespace yard::backends::chat
