// backends/chat/tool_calls/tool_call_stream_parser.hpp — turns a model's
// output text, as it arrives, into content and tool-call deltas.
//
// Owns: one output's parse state: the text not yet decided (a tail that may
// start a call marker, an open call block, or for llama3_json a whole reply
// that starts like a call), the calls emitted so far and their ids (unique
// within the output).
// Must not touch: tokens, stop strings (applied before this, on the text),
// the request's tool list (a call to an unknown function is still a call;
// the server may check names), OpenAI wire JSON.
// Thread-safety: a per-output value; the borrowed id_source is used from the
// calling thread only.
//
// Rules, the same for the whole-output parse_tool_calls (which is this parser
// fed once):
// - Text outside valid call blocks is content, byte for byte, except the
//   whitespace right after a valid block (up to the next other byte), which is
//   dropped so a reply of several calls has no "\n" content between them.
// - A block that is not a valid call (bad JSON, no name, arguments that are
//   not a JSON object or a string holding one, hermes without </tool_call>,
//   unterminated at the end) is content: for hermes/mistral its marker becomes
//   content and the text after it is scanned again; for llama3_json the whole
//   reply is content. Nothing is dropped and nothing throws.
// - Content is never sent while it may still be the start of a marker: a tail
//   that is a prefix of <tool_call> / [TOOL_CALLS] is held until decided; a
//   llama3_json reply that starts with '{' or <|python_tag|> (after
//   whitespace) is held to the end of output, since text after the calls would
//   make the whole reply content.
// - Arguments are emitted at close, not incrementally: a call is emitted as
//   one delta {index, id, name, complete compact arguments} once its block is
//   known valid (hermes: at </tool_call>; mistral: when the array closes;
//   llama3_json: at finish()). Streaming argument text earlier would send a
//   call that later text can still turn into content, and the streamed result
//   would then differ from the whole parse.
// So for any split of the same text into feed() calls, the concatenated
// content and calls equal parse_tool_calls on the whole text (given id
// sources seeded alike).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backends/chat/tool_calls/tool_call_blocks.hpp"
#include "backends/chat/tool_calls/tool_call_format.hpp"
#include "backends/chat/tool_calls/tool_call_id.hpp"
#include "backends/chat/tool_calls/tool_call_types.hpp"

namespace yard::backends::chat {

class tool_call_stream_parser {
 public:
  // `ids` is borrowed, not owned, and must outlive the parser: the caller
  // chooses a random or a seeded source (tests, replays).
  tool_call_stream_parser(tool_call_format format, id_source& ids);

  // The next piece of decoded output text (any split, a marker's included).
  // Returns what may be sent now. Held-back bytes are all ASCII (marker
  // prefixes) or whole blocks, so content splits UTF-8 only where the input
  // did. Not after finish().
  stream_step feed(std::string_view text_delta);

  // End of output: every held byte is decided (an open or unterminated block
  // becomes content). Call once; later feed()/finish() calls are bugs.
  stream_step finish();

  // A valid call has been emitted: finish_reason "tool_calls".
  bool saw_tool_call() const { return next_index_ > 0; }

  tool_call_format format() const { return format_; }

 private:
  enum class mode {
    pass,          // everything is content (format none, or llama3_json decided content)
    scan,          // hermes/mistral: looking for the next marker
    block,         // hermes/mistral: pending_ starts with a marker, block undecided
    llama3_start,  // llama3_json: the reply's first bytes do not yet say what it is
    llama3_reply,  // llama3_json: the reply may be calls; held until finish()
  };

  void drain(bool last, stream_step& out);
  void emit_content(std::string_view text, stream_step& out);
  void emit_calls(std::vector<decoded_call>& calls, stream_step& out);
  std::string take_id(const std::optional<std::string>& wanted);

  tool_call_format format_;
  id_source& ids_;
  mode mode_;
  std::string pending_;              // received, not yet emitted or dropped
  block_progress progress_;          // of the block at the start of pending_ (mode block)
  bool after_call_ = false;          // drop whitespace: a valid block just ended
  std::size_t next_index_ = 0;       // calls emitted so far
  std::vector<std::string> used_ids_;
  bool finished_ = false;
};

}  // namespace yard::backends::chat
