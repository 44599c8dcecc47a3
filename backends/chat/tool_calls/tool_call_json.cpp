// backends/chat/tool_calls/tool_call_json.cpp — see tool_call_json.hpp.
#include "backends/chat/tool_calls/tool_call_json.hpp"

namespace yard::backends::chat {

namespace {

using ordered_json = nlohmann::ordered_json;

bool only_whitespace(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// Compact text of `v`; invalid UTF-8 cannot come out of parse_json, but a
// replacement beats an exception should it ever.
std::optional<std::string> compact(const ordered_json& v) {
  try {
    return v.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

json_extent_scanner::state json_extent_scanner::scan(std::string_view text) {
  if (state_ != state::need_more) return state_;
  if (!started_) {
    if (pos_ >= text.size()) return state_;
    const char open = text[pos_];
    if (open != '{' && open != '[') return state_ = state::invalid;
    closers_.push_back(open == '{' ? '}' : ']');
    started_ = true;
    ++pos_;
  }
  for (; pos_ < text.size(); ++pos_) {
    const char c = text[pos_];
    if (in_string_) {
      if (escape_) escape_ = false;
      else if (c == '\\') escape_ = true;
      else if (c == '"') in_string_ = false;
      continue;
    }
    switch (c) {
      case '"': in_string_ = true; break;
      case '{':
      case '[':
        if (closers_.size() >= k_max_depth) return state_ = state::invalid;
        closers_.push_back(c == '{' ? '}' : ']');
        break;
      case '}':
      case ']':
        if (c != closers_.back()) return state_ = state::invalid;
        closers_.pop_back();
        if (closers_.empty()) {
          ++pos_;
          return state_ = state::done;
        }
        break;
      default: break;
    }
  }
  return state_;
}

std::optional<ordered_json> parse_json(std::string_view text) {
  try {
    ordered_json v = ordered_json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded()) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<decoded_call> decode_call_object(const ordered_json& value, bool take_id) {
  if (!value.is_object()) return std::nullopt;
  const auto name = value.find("name");
  if (name == value.end() || !name->is_string() || name->get_ref<const std::string&>().empty())
    return std::nullopt;

  decoded_call call;
  call.name = name->get<std::string>();

  auto args = value.find("arguments");
  if (args == value.end()) args = value.find("parameters");
  if (args == value.end() || args->is_null()) {
    call.arguments = "{}";
  } else if (args->is_object()) {
    auto text = compact(*args);
    if (!text) return std::nullopt;
    call.arguments = std::move(*text);
  } else if (args->is_string()) {
    // Arguments already serialized by the model: valid only if the string is a
    // JSON object; it is re-serialized so streamed and whole parses agree.
    const auto& s = args->get_ref<const std::string&>();
    if (only_whitespace(s)) {
      call.arguments = "{}";
    } else {
      auto inner = parse_json(s);
      if (!inner || !inner->is_object()) return std::nullopt;
      auto text = compact(*inner);
      if (!text) return std::nullopt;
      call.arguments = std::move(*text);
    }
  } else {
    return std::nullopt;
  }

  if (take_id) {
    const auto id = value.find("id");
    if (id != value.end() && id->is_string()) call.id = id->get<std::string>();
  }
  return call;
}

}  // namespace yard::backends::chat
