// backends/chat/tool_calls/tool_call_types.hpp — the values tool-call parsing
// hands to the server: whole-output results and streamed steps.
//
// Owns: parsed_tool_call, tool_call_result (non-streamed message.tool_calls
// and content), tool_call_delta and stream_step (streamed delta.tool_calls and
// delta.content), and append_stream_step, which folds steps into a result.
// Must not touch: parsing (tool_call_stream_parser), OpenAI wire JSON (the
// server maps these fields: id, type "function", function.name,
// function.arguments as a string).
// Thread-safety: plain values; safe to copy between threads.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace yard::backends::chat {

// One call found in the output: OpenAI message.tool_calls[i].
struct parsed_tool_call {
  std::string id;         // "call_" + 24 alphanumerics, or 9 alphanumerics for mistral
  std::string name;       // function.name
  std::string arguments;  // function.arguments: compact JSON object text, keys in the model's order
};

// The whole output split into what the client reads and the calls. `calls`
// non-empty means finish_reason "tool_calls".
struct tool_call_result {
  std::string content;                  // all text that is not part of a valid call, in order
  std::vector<parsed_tool_call> calls;  // in output order
};

// One entry of a streamed delta.tool_calls. A call's first delta carries id
// and name; later deltas of the same index carry only arguments text. The
// concatenated arguments_fragment of one index is that call's arguments.
struct tool_call_delta {
  std::size_t index = 0;            // position of the call in this output, from 0
  std::optional<std::string> id;    // set on the call's first delta only
  std::optional<std::string> name;  // set on the call's first delta only
  std::string arguments_fragment;   // may be empty
};

// What may be sent to the client after one piece of output text.
struct stream_step {
  std::string content;                // delta.content ("" = none this step)
  std::vector<tool_call_delta> calls; // delta.tool_calls, in order

  bool empty() const { return content.empty() && calls.empty(); }
};

// Folds `step` into `result` as a client would: content appended, a new index
// starts a call, a known index appends arguments. Deltas must come in the
// order the parser emitted them (indices are dense from 0).
void append_stream_step(tool_call_result& result, const stream_step& step);

}  // namespace yard::backends::chat
