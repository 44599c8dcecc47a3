// backends/chat/tool_calls/tool_call_blocks.hpp — recognizing one tool-call
// block of each format in text that may still be arriving.
//
// Owns: the call markers (<tool_call>, </tool_call>, [TOOL_CALLS],
// <|python_tag|>) and the rules that decide whether the text at a marker is a
// valid block: hermes (one call object, then </tool_call>), mistral (an array
// of call objects, or one object), llama3_json (the whole reply: call objects
// separated by ';'). Each answer depends only on the text seen so far and is
// "need more" while later text could still change it, which is what makes the
// streamed parse agree with the whole one under any chunking.
// Must not touch: content emission, ids, streaming deltas
// (tool_call_stream_parser owns those).
// Thread-safety: pure functions; block_progress is a per-block value.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

#include "backends/chat/tool_calls/tool_call_format.hpp"
#include "backends/chat/tool_calls/tool_call_json.hpp"

namespace yard::backends::chat {

inline constexpr std::string_view k_hermes_open = "<tool_call>";
inline constexpr std::string_view k_hermes_close = "</tool_call>";
inline constexpr std::string_view k_mistral_marker = "[TOOL_CALLS]";
inline constexpr std::string_view k_llama3_python_tag = "<|python_tag|>";

// The marker that opens a block inside the text: hermes and mistral; "" for
// none and llama3_json (llama3_json has no in-text blocks, only a whole reply).
std::string_view block_marker(tool_call_format format);

// The length of the longest tail of `text` that is a proper prefix of
// `marker`: those bytes may still become the marker and must not be sent yet.
std::size_t partial_marker_tail(std::string_view text, std::string_view marker);

struct block_scan {
  enum class outcome {
    need_more,  // later text decides; at the end of output this means invalid
    invalid,    // not a call: the marker is plain content
    valid,      // `length` bytes from the marker are the block with `calls`
  };
  outcome what = outcome::need_more;
  std::size_t length = 0;           // bytes of the block, marker included (valid)
  std::vector<decoded_call> calls;  // in order, at least one (valid)
};

// What scan_block has learned about one block so far, so that text fed in
// pieces is walked once. A fresh value per block.
struct block_progress {
  std::optional<json_extent_scanner> json;          // started at the first byte after marker + whitespace
  std::optional<std::vector<decoded_call>> calls;   // the JSON closed and decoded as calls
};

// `text` starts with block_marker(format) (hermes or mistral) and holds all
// the output from there that has arrived; `progress` must be the same value
// for every call about this block.
//  hermes:  <tool_call> ws {call object} ws </tool_call>
//  mistral: [TOOL_CALLS] ws [call object, ...] (non-empty) or {call object};
//           a mistral call's own "id" is kept in decoded_call::id.
block_scan scan_block(tool_call_format format, std::string_view text, block_progress& progress);

// llama3_json's decision on how a reply starts, from its first bytes.
enum class llama3_start {
  undecided,  // only whitespace, or whitespace then a proper prefix of <|python_tag|>
  reply,      // first non-whitespace is '{' or <|python_tag|>: the reply may be calls
  content,    // anything else: the whole reply is content
};
llama3_start classify_llama3_start(std::string_view text);

// A complete llama3_json reply: ws [<|python_tag|> ws] {call} ws (; ws {call} ws)* [;] ws.
// valid (length = text.size()) or invalid; never need_more.
block_scan scan_llama3_reply(std::string_view text);

}  // namespace yard::backends::chat
