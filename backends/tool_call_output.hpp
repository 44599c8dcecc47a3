// backends/tool_call_output.hpp — a sequence's output text run through its tool-call parser.
//
// Owns: the step every engine takes with newly decoded text when a request may
// call tools: the parser holds back what may be a call, emits content and
// whole calls as deltas, and at the end of the output decides what is left.
// engine_shell (mock, native) and the external engine share it.
// Must not touch: the parser's format rules (backends/chat/tool_calls).
// Thread-safety: a plain function over the caller's parser and output.
#pragma once

#include <string>

#include "backends/chat/tool_calls/tool_call_stream_parser.hpp"
#include "backends/engine.hpp"

namespace yard::backends {

// Feeds `text` to `parser` (finishing it when `last`) and sets out.text_delta
// to the content it releases and appends the calls it completed to out.tool_calls.
void emit_through_tool_parser(chat::tool_call_stream_parser& parser, const std::string& text, bool last,
                              sequence_output& out);

}  // namespace yard::backends
