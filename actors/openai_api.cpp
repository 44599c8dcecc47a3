#include "actors/openai_api.hpp"

#include "messages/codec.hpp"

namespace yard::actors::openai {

using nlohmann::json;

namespace {

error bad(const std::string& m) { return error{errc::bad_request, m}; }

template <class T>
status read_opt(const json& body, const char* name, T& out) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return status::success();
  std::string err;
  if (!msg::detail::json_read(*it, out, err, name)) return bad(err);
  return status::success();
}

}  // namespace

result<msg::generate_request> parse_request(const std::string& body, endpoint ep, const std::string& request_id) {
  auto tree = msg::parse_json_tree(body);
  if (!tree) return bad("request body is not valid JSON: " + tree.err().message);
  const json& j = *tree;
  if (!j.is_object()) return bad("request body must be a JSON object");
  msg::generate_request r;
  r.request_id = request_id;
  r.stream = false;  // OpenAI's default
  if (auto s = read_opt(j, "model", r.model); !s) return s.err();
  if (ep == endpoint::chat) {
    auto it = j.find("messages");
    if (it == j.end()) return bad("missing required field 'messages'");
    std::vector<msg::chat_message> msgs;
    std::string err;
    if (!it->is_array() || it->empty()) return bad("field 'messages' must be a non-empty array");
    for (std::size_t i = 0; i < it->size(); ++i) {
      const auto& m = (*it)[i];
      if (!m.is_object()) return bad("field 'messages[" + std::to_string(i) + "]' must be an object");
      msg::chat_message cm;
      auto role = m.find("role");
      if (role == m.end() || !role->is_string()) return bad("field 'messages[" + std::to_string(i) + "].role' must be a string");
      cm.role = role->get<std::string>();
      auto content = m.find("content");
      if (content != m.end() && content->is_string()) {
        cm.content = content->get<std::string>();
      } else if (content != m.end() && content->is_array()) {
        for (const auto& part : *content)  // [{"type":"text","text":"..."}]
          if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string())
            cm.content += part["text"].get<std::string>();
      } else if (content != m.end() && !content->is_null()) {
        return bad("field 'messages[" + std::to_string(i) + "].content' must be a string or an array of parts");
      }
      msgs.push_back(std::move(cm));
    }
    r.messages = std::move(msgs);
  } else {
    auto it = j.find("prompt");
    if (it == j.end()) return bad("missing required field 'prompt'");
    if (it->is_string()) {
      r.prompt = it->get<std::string>();
    } else if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) {
      std::vector<msg::token_id> toks;
      std::string err;
      if (!msg::detail::json_read(*it, toks, err, "prompt")) return bad(err);
      r.token_ids = std::move(toks);
    } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
      r.prompt = (*it)[0].get<std::string>();
    } else {
      return bad("field 'prompt' must be a string, a one-element array of strings, or an array of token ids");
    }
  }
  std::uint32_t max_tokens = r.max_tokens;
  if (auto s = read_opt(j, "max_tokens", max_tokens); !s) return s.err();
  if (auto s = read_opt(j, "max_completion_tokens", max_tokens); !s) return s.err();
  r.max_tokens = max_tokens;
  if (r.max_tokens == 0) return bad("field 'max_tokens' must be at least 1");
  if (auto s = read_opt(j, "stream", r.stream); !s) return s.err();
  if (auto s = read_opt(j, "temperature", r.sampling.temperature); !s) return s.err();
  if (auto s = read_opt(j, "top_p", r.sampling.top_p); !s) return s.err();
  if (auto s = read_opt(j, "top_k", r.sampling.top_k); !s) return s.err();
  if (auto s = read_opt(j, "seed", r.sampling.seed); !s) return s.err();
  if (r.sampling.temperature < 0 || r.sampling.temperature > 100) return bad("field 'temperature' must be in [0, 100]");
  if (r.sampling.top_p <= 0 || r.sampling.top_p > 1) return bad("field 'top_p' must be in (0, 1]");
  if (auto it = j.find("logprobs"); it != j.end() && !it->is_null()) r.sampling.logprobs = it->is_boolean() ? it->get<bool>() : true;
  if (auto it = j.find("stop"); it != j.end() && !it->is_null()) {
    if (it->is_string()) r.stop = {it->get<std::string>()};
    else if (auto s = read_opt(j, "stop", r.stop); !s) return s.err();
  }
  if (auto s = read_opt(j, "stop_token_ids", r.stop_token_ids); !s) return s.err();
  std::string user;
  if (auto s = read_opt(j, "user", user); !s) return s.err();
  if (!user.empty()) r.tenant = user;
  std::string salt;
  if (auto s = read_opt(j, "cache_salt", salt); !s) return s.err();
  if (!salt.empty()) r.cache_salt = salt;
  return r;
}

int http_status_for(errc code) {
  switch (code) {
    case errc::bad_request: return 400;
    case errc::not_found: return 404;
    case errc::timeout: return 504;
    case errc::conflict: return 409;
    case errc::payload_too_large: return 413;
    case errc::unavailable: return 503;
    case errc::resource_exhausted: return 429;
    default: return 500;
  }
}

std::string error_body(errc code, const std::string& message) {
  const char* type = "server_error";
  if (code == errc::bad_request || code == errc::payload_too_large || code == errc::conflict) type = "invalid_request_error";
  else if (code == errc::not_found) type = "not_found_error";
  else if (code == errc::unavailable) type = "service_unavailable";
  json e = {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", std::string(to_string(code))}}}};
  return e.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

json usage_json(const msg::usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

}  // namespace

std::string sse_event(endpoint ep, const std::string& id, const std::string& model, std::int64_t created,
                      const msg::token_chunk& c, bool include_usage) {
  json choice = {{"index", 0}, {"finish_reason", c.finish_reason ? json(*c.finish_reason) : json(nullptr)}};
  json out;
  if (ep == endpoint::chat) {
    json delta = json::object();
    if (c.seq == 0) delta["role"] = "assistant";
    if (!c.text.empty()) delta["content"] = c.text;
    choice["delta"] = delta;
    out = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model}, {"choices", {choice}}};
  } else {
    choice["text"] = c.text;
    out = {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model}, {"choices", {choice}}};
  }
  if (include_usage && c.usage_info) out["usage"] = usage_json(*c.usage_info);
  return "data: " + out.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

std::string full_response(endpoint ep, const std::string& id, const std::string& model, std::int64_t created,
                          const std::string& text, const std::string& finish_reason, const msg::usage& u) {
  json out;
  if (ep == endpoint::chat) {
    json choice = {{"index", 0},
                   {"message", {{"role", "assistant"}, {"content", text}}},
                   {"finish_reason", finish_reason}};
    out = {{"id", id}, {"object", "chat.completion"}, {"created", created}, {"model", model}, {"choices", {choice}}};
  } else {
    json choice = {{"index", 0}, {"text", text}, {"finish_reason", finish_reason}, {"logprobs", nullptr}};
    out = {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model}, {"choices", {choice}}};
  }
  out["usage"] = usage_json(u);
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string models_body(const std::vector<std::string>& models, std::int64_t created) {
  json data = json::array();
  for (const auto& m : models) data.push_back({{"id", m}, {"object", "model"}, {"created", created}, {"owned_by", "switchyard"}});
  return json{{"object", "list"}, {"data", data}}.dump();
}

}  // namespace yard::actors::openai
