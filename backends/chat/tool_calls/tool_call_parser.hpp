// backends/chat/tool_calls/tool_call_parser.hpp — the whole-output tool-call
// parse, for non-streamed replies.
//
// Owns: parse_tool_calls. It is tool_call_stream_parser fed the whole text
// once, so streamed and non-streamed replies follow one set of rules
// (documented in tool_call_stream_parser.hpp) and agree exactly.
// Must not touch: OpenAI wire JSON, the request's tool list.
// Thread-safety: pure apart from drawing ids from the borrowed id_source.
#pragma once

#include <string_view>

#include "backends/chat/tool_calls/tool_call_format.hpp"
#include "backends/chat/tool_calls/tool_call_id.hpp"
#include "backends/chat/tool_calls/tool_call_stream_parser.hpp"
#include "backends/chat/tool_calls/tool_call_types.hpp"

namespace yard::backends::chat {

// Splits a complete output into content and calls. Text that does not form a
// valid call stays content (never dropped, never an exception). Draws one id
// from `ids` per call without its own valid id, in call order.
tool_call_result parse_tool_calls(tool_call_format format, std::string_view text, id_source& ids);

}  // namespace yard::backends::chat
