// backends/chat/tool_calls/tool_call_blocks.cpp — see tool_call_blocks.hpp.
#include "backends/chat/tool_calls/tool_call_blocks.hpp"

#include <algorithm>

namespace yard::backends::chat {

namespace {

using outcome = block_scan::outcome;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::size_t skip_space(std::string_view s, std::size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

block_scan answer(outcome what) {
  block_scan r;
  r.what = what;
  return r;
}

// Decodes `json`, a closed JSON value, as the calls of one block:
// hermes takes one object; mistral an object or a non-empty array of them.
std::optional<std::vector<decoded_call>> decode_calls(tool_call_format format, std::string_view json) {
  auto value = parse_json(json);
  if (!value) return std::nullopt;
  const bool take_id = format == tool_call_format::mistral;
  std::vector<decoded_call> calls;
  if (value->is_array() && format == tool_call_format::mistral) {
    for (const auto& item : *value) {
      auto call = decode_call_object(item, take_id);
      if (!call) return std::nullopt;  // one bad element spoils the block: no half-parsed arrays
      calls.push_back(std::move(*call));
    }
  } else {
    auto call = decode_call_object(*value, take_id);
    if (!call) return std::nullopt;
    calls.push_back(std::move(*call));
  }
  if (calls.empty()) return std::nullopt;
  return calls;
}

}  // namespace

std::string_view block_marker(tool_call_format format) {
  switch (format) {
    case tool_call_format::hermes: return k_hermes_open;
    case tool_call_format::mistral: return k_mistral_marker;
    case tool_call_format::llama3_json:
    case tool_call_format::none: return {};
  }
  return {};
}

std::size_t partial_marker_tail(std::string_view text, std::string_view marker) {
  if (marker.empty()) return 0;
  for (std::size_t k = std::min(marker.size() - 1, text.size()); k > 0; --k)
    if (text.substr(text.size() - k) == marker.substr(0, k)) return k;
  return 0;
}

block_scan scan_block(tool_call_format format, std::string_view text, block_progress& progress) {
  const std::string_view marker = block_marker(format);
  if (marker.empty() || !text.starts_with(marker)) return answer(outcome::invalid);

  if (!progress.json) {
    const std::size_t start = skip_space(text, marker.size());
    if (start == text.size()) return answer(outcome::need_more);
    const char open = text[start];
    const bool opens = open == '{' || (open == '[' && format == tool_call_format::mistral);
    if (!opens) return answer(outcome::invalid);
    progress.json.emplace(start);
  }

  auto& json = *progress.json;
  switch (json.scan(text)) {
    case json_extent_scanner::state::need_more: return answer(outcome::need_more);
    case json_extent_scanner::state::invalid: return answer(outcome::invalid);
    case json_extent_scanner::state::done: break;
  }

  if (!progress.calls) {
    const std::size_t start = skip_space(text, marker.size());
    auto calls = decode_calls(format, text.substr(start, json.end() - start));
    if (!calls) return answer(outcome::invalid);
    progress.calls = std::move(*calls);
  }

  std::size_t end = json.end();
  if (format == tool_call_format::hermes) {
    // The object must be followed by the closing tag (whitespace between is fine).
    end = skip_space(text, end);
    const std::string_view rest = text.substr(end);
    if (rest.size() < k_hermes_close.size()) {
      return answer(k_hermes_close.starts_with(rest) ? outcome::need_more : outcome::invalid);
    }
    if (!rest.starts_with(k_hermes_close)) return answer(outcome::invalid);
    end += k_hermes_close.size();
  }

  block_scan r;
  r.what = outcome::valid;
  r.length = end;
  r.calls = *progress.calls;
  return r;
}

llama3_start classify_llama3_start(std::string_view text) {
  const std::size_t i = skip_space(text, 0);
  if (i == text.size()) return llama3_start::undecided;
  const std::string_view rest = text.substr(i);
  if (rest[0] == '{' || rest.starts_with(k_llama3_python_tag)) return llama3_start::reply;
  if (k_llama3_python_tag.starts_with(rest)) return llama3_start::undecided;
  return llama3_start::content;
}

block_scan scan_llama3_reply(std::string_view text) {
  std::size_t i = skip_space(text, 0);
  if (text.substr(i).starts_with(k_llama3_python_tag)) i = skip_space(text, i + k_llama3_python_tag.size());

  block_scan r;
  while (true) {
    if (i == text.size() || text[i] != '{') return answer(outcome::invalid);
    json_extent_scanner json(i);
    if (json.scan(text) != json_extent_scanner::state::done) return answer(outcome::invalid);
    auto value = parse_json(text.substr(i, json.end() - i));
    if (!value) return answer(outcome::invalid);
    auto call = decode_call_object(*value, /*take_id=*/false);
    if (!call) return answer(outcome::invalid);
    r.calls.push_back(std::move(*call));

    i = skip_space(text, json.end());
    if (i == text.size()) break;
    if (text[i] != ';') return answer(outcome::invalid);
    i = skip_space(text, i + 1);
    if (i == text.size()) break;  // a trailing ';' is tolerated
  }
  r.what = outcome::valid;
  r.length = text.size();
  return r;
}

}  // namespace yard::backends::chat
