// backends/chat/tool_calls/tool_call_stream_parser.cpp — see tool_call_stream_parser.hpp.
#include "backends/chat/tool_calls/tool_call_stream_parser.hpp"

#include <algorithm>
#include <cassert>

namespace yard::backends::chat {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

tool_call_stream_parser::tool_call_stream_parser(tool_call_format format, id_source& ids)
    : format_(format), ids_(ids) {
  switch (format) {
    case tool_call_format::none: mode_ = mode::pass; break;
    case tool_call_format::llama3_json: mode_ = mode::llama3_start; break;
    case tool_call_format::hermes:
    case tool_call_format::mistral: mode_ = mode::scan; break;
  }
}

stream_step tool_call_stream_parser::feed(std::string_view text_delta) {
  assert(!finished_ && "tool_call_stream_parser::feed after finish");
  stream_step out;
  pending_.append(text_delta);
  drain(/*last=*/false, out);
  return out;
}

stream_step tool_call_stream_parser::finish() {
  assert(!finished_ && "tool_call_stream_parser::finish called twice");
  stream_step out;
  drain(/*last=*/true, out);
  finished_ = true;
  assert(pending_.empty());
  return out;
}

// Decides as much of pending_ as the text allows; with `last`, all of it.
void tool_call_stream_parser::drain(bool last, stream_step& out) {
  using outcome = block_scan::outcome;
  while (true) {
    switch (mode_) {
      case mode::pass:
        emit_content(pending_, out);
        pending_.clear();
        return;

      case mode::llama3_start:
        switch (classify_llama3_start(pending_)) {
          case llama3_start::undecided:
            if (!last) return;
            mode_ = mode::pass;  // only whitespace or a partial tag: content
            break;
          case llama3_start::reply: mode_ = mode::llama3_reply; break;
          case llama3_start::content: mode_ = mode::pass; break;
        }
        break;

      case mode::llama3_reply: {
        if (!last) return;
        block_scan r = scan_llama3_reply(pending_);
        if (r.what != outcome::valid) {
          mode_ = mode::pass;  // the whole reply, verbatim
          break;
        }
        emit_calls(r.calls, out);
        pending_.clear();  // whitespace and ';' around the calls
        return;
      }

      case mode::scan: {
        const std::string_view marker = block_marker(format_);
        const std::size_t at = pending_.find(marker);
        if (at == std::string::npos) {
          const std::size_t hold = last ? 0 : partial_marker_tail(pending_, marker);
          const std::size_t send = pending_.size() - hold;
          emit_content(std::string_view(pending_).substr(0, send), out);
          pending_.erase(0, send);
          return;
        }
        emit_content(std::string_view(pending_).substr(0, at), out);
        pending_.erase(0, at);
        progress_ = block_progress{};
        mode_ = mode::block;
        break;
      }

      case mode::block: {
        block_scan r = scan_block(format_, pending_, progress_);
        if (r.what == outcome::need_more && !last) return;
        if (r.what == outcome::valid) {
          emit_calls(r.calls, out);
          pending_.erase(0, r.length);
          after_call_ = true;
        } else {
          // Not a call: the marker is text, and what follows is scanned again
          // (it may hold a valid block of its own).
          const std::string_view marker = block_marker(format_);
          emit_content(marker, out);
          pending_.erase(0, marker.size());
        }
        progress_ = block_progress{};
        mode_ = mode::scan;
        break;
      }
    }
  }
}

void tool_call_stream_parser::emit_content(std::string_view text, stream_step& out) {
  if (after_call_) {
    std::size_t i = 0;
    while (i < text.size() && is_space(text[i])) ++i;
    text.remove_prefix(i);
    if (text.empty()) return;
    after_call_ = false;
  }
  out.content.append(text);
}

void tool_call_stream_parser::emit_calls(std::vector<decoded_call>& calls, stream_step& out) {
  for (auto& call : calls) {
    tool_call_delta d;
    d.index = next_index_++;
    d.id = take_id(call.id);
    d.name = std::move(call.name);
    d.arguments_fragment = std::move(call.arguments);
    out.calls.push_back(std::move(d));
  }
}

// The model's own id when it is a well-formed Mistral id not used yet in this
// output (Mistral's template rejects other shapes in the next turn); otherwise
// a fresh one, drawn again on the (unlikely) clash.
std::string tool_call_stream_parser::take_id(const std::optional<std::string>& wanted) {
  const auto used = [&](const std::string& id) {
    return std::find(used_ids_.begin(), used_ids_.end(), id) != used_ids_.end();
  };
  std::string id;
  if (format_ == tool_call_format::mistral && wanted && is_mistral_tool_call_id(*wanted) && !used(*wanted)) {
    id = *wanted;
  } else {
    do id = ids_.next(format_);
    while (used(id));
  }
  used_ids_.push_back(id);
  return id;
}

}  // namespace yard::backends::chat
