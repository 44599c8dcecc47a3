// backends/chat/chat_template_renderer.cpp — see chat_template_renderer.hpp.
#include "backends/chat/chat_template_renderer.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "backends/chat/plain_chat.hpp"

namespace yard::backends::chat {

namespace {

using nlohmann::ordered_json;

// "bos_token": "<s>" or {"content": "<s>", ...}.
std::string token_string(const nlohmann::json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  return {};
}

ordered_json message_json(const msg::chat_message& m) {
  ordered_json j;
  j["role"] = m.role;
  // An assistant turn that only calls tools has no content (None in Python).
  j["content"] = m.content.empty() && !m.tool_calls.empty() ? ordered_json(nullptr) : ordered_json(m.content);
  if (m.name) j["name"] = *m.name;
  if (m.tool_call_id) j["tool_call_id"] = *m.tool_call_id;
  if (!m.tool_calls.empty()) {
    ordered_json calls = ordered_json::array();
    for (const auto& c : m.tool_calls) {
      // No arguments at all count as an empty object.
      ordered_json fn = {{"name", c.function.name},
                         {"arguments", arguments_json(c.function.arguments.empty() ? "{}" : c.function.arguments)}};
      calls.push_back({{"id", c.id}, {"type", c.type.empty() ? "function" : c.type}, {"function", fn}});
    }
    j["tool_calls"] = std::move(calls);
  }
  return j;
}

}  // namespace

result<std::optional<chat_template_renderer>> chat_template_renderer::load(const std::string& model_dir) {
  const auto cfg_path = std::filesystem::path(model_dir) / "tokenizer_config.json";
  nlohmann::json cfg = nlohmann::json::object();
  std::string source;
  if (std::ifstream in(cfg_path); in) {
    cfg = nlohmann::json::parse(in, nullptr, false);
    if (cfg.is_discarded() || !cfg.is_object())
      return make_error(errc::bad_request, cfg_path.string() + ": not a JSON object");
    if (auto t = cfg.find("chat_template"); t != cfg.end()) {
      if (t->is_string()) {
        source = t->get<std::string>();
      } else if (t->is_array()) {  // [{name, template}]: "default", else the first
        for (const auto& e : *t)
          if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
            source = e["template"].get<std::string>();
        if (source.empty())
          for (const auto& e : *t)
            if (e.is_object() && e.contains("template") && e["template"].is_string()) {
              source = e["template"].get<std::string>();
              break;
            }
      }
    }
  }
  std::string origin = cfg_path.string();
  if (source.empty()) {
    const auto jinja_path = std::filesystem::path(model_dir) / "chat_template.jinja";
    std::ifstream in(jinja_path);
    if (!in) return std::optional<chat_template_renderer>();
    std::ostringstream ss;
    ss << in.rdbuf();
    source = ss.str();
    origin = jinja_path.string();
  }
  auto r = from_source(source, token_string(cfg, "bos_token"), token_string(cfg, "eos_token"));
  if (!r) return make_error(r.err().code, origin + ": " + r.err().message);
  return std::optional<chat_template_renderer>(std::move(*r));
}

result<chat_template_renderer> chat_template_renderer::from_source(const std::string& source, std::string bos_token,
                                                                   std::string eos_token) {
  auto t = jinja::jinja_template::compile(source);
  if (!t) return t.err();
  return chat_template_renderer(std::move(*t), source, std::move(bos_token), std::move(eos_token));
}

result<std::string> chat_template_renderer::render(const std::vector<msg::chat_message>& messages,
                                                   const msg::json_value* tools) const {
  ordered_json ctx = ordered_json::object();
  ordered_json msgs = ordered_json::array();
  for (const auto& m : messages) msgs.push_back(message_json(m));
  ctx["messages"] = std::move(msgs);
  if (tools && tools->v.is_array() && !tools->v.empty()) ctx["tools"] = tools->v;
  ctx["add_generation_prompt"] = true;
  ctx["bos_token"] = bos_;
  ctx["eos_token"] = eos_;
  auto out = tmpl_.render(ctx);
  if (!out) return make_error(out.err().code, "chat template: " + out.err().message);
  return out;
}

}  // namespace yard::backends::chat
