// actors/openai_parse_tools.cpp — tools, tool_choice, response_format and agent hints (see openai_parse_tools.hpp).
#include "actors/openai_parse_tools.hpp"

#include <algorithm>
#include <charconv>

#include "backends/structured/json_schema_compiler.hpp"
#include "messages/codec.hpp"

namespace yard::actors::openai {

using nlohmann::json;

namespace {

using parse_detail::bad;
using parse_detail::find;

// OpenAI: a-z, A-Z, 0-9, underscores and dashes, at most 64.
bool valid_function_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// An object's "type" is absent (OpenAI's default, function) or the string "function".
template <class J>
bool type_is_function(const J& obj) {
  auto t = obj.find("type");
  return t == obj.end() || (t->is_string() && t->template get_ref<const std::string&>() == "function");
}

// A JSON schema the constrained decoder can enforce, else a 400 naming `field`.
status check_schema(const nlohmann::ordered_json& schema, const std::string& field) {
  if (!schema.is_object()) return bad("field '" + field + "' must be a JSON schema object");
  auto g = backends::structured::compile_json_schema(schema);
  if (!g) return bad("field '" + field + "': " + g.err().message);
  return status::success();
}

status parse_tools(const nlohmann::ordered_json& tools, msg::generate_request& r) {
  if (!tools.is_array()) return bad("field 'tools' must be an array");
  if (tools.size() > 128) return bad("field 'tools' may hold at most 128 tools");
  for (std::size_t i = 0; i < tools.size(); ++i) {
    const auto& t = tools[i];
    const std::string at = "tools[" + std::to_string(i) + "]";
    if (!t.is_object()) return bad("field '" + at + "' must be an object");
    if (!type_is_function(t))
      return bad("field '" + at + ".type' must be 'function' (the only tool type served here)");
    auto f = t.find("function");
    if (f == t.end() || !f->is_object()) return bad("field '" + at + ".function' must be an object");
    auto name = f->find("name");
    if (name == f->end() || !name->is_string() || !valid_function_name(name->get<std::string>()))
      return bad("field '" + at + ".function.name' must be 1-64 characters of a-z, A-Z, 0-9, _ and -");
    for (std::size_t k = 0; k < i; ++k)
      if (tools[k]["function"]["name"] == *name) return bad("field '" + at + ".function.name' repeats a tool's name");
    if (auto d = f->find("description"); d != f->end() && !d->is_null() && !d->is_string())
      return bad("field '" + at + ".function.description' must be a string");
    if (auto p = f->find("parameters"); p != f->end() && !p->is_null())
      if (auto s = check_schema(*p, at + ".function.parameters"); !s) return s;
  }
  r.tools = msg::json_value{tools};
  return status::success();
}

status parse_tool_choice(const json& tc, msg::generate_request& r) {
  const bool has_tools = r.tools && !r.tools->v.empty();
  if (tc.is_string()) {
    const auto& s = tc.get_ref<const std::string&>();
    if (s != "none" && s != "auto" && s != "required")
      return bad("field 'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}");
    if (s != "none" && !has_tools) return bad("field 'tool_choice' needs 'tools'");
  } else if (tc.is_object()) {
    const json* f = find(tc, "function");
    if (!type_is_function(tc) || !f || !f->is_object() || !f->contains("name") ||
        !(*f)["name"].is_string())
      return bad("field 'tool_choice' must name a function: {\"type\": \"function\", \"function\": {\"name\": ...}}");
    if (!has_tools) return bad("field 'tool_choice' needs 'tools'");
    const auto& name = (*f)["name"].get_ref<const std::string&>();
    bool known = std::any_of(r.tools->v.begin(), r.tools->v.end(),
                             [&](const auto& t) { return t["function"]["name"] == name; });
    if (!known) return bad("field 'tool_choice' names '" + name + "', which is not in 'tools'");
  } else {
    return bad("field 'tool_choice' must be a string or an object");
  }
  r.tool_choice = msg::json_value{nlohmann::ordered_json::parse(tc.dump())};
  return status::success();
}

status parse_response_format(const nlohmann::ordered_json& rf, msg::generate_request& r) {
  if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
    return bad("field 'response_format' must be an object with a string 'type'");
  const auto& type = rf["type"].get_ref<const std::string&>();
  if (type == "text") return status::success();
  if (type == "json_schema") {
    auto js = rf.find("json_schema");
    if (js == rf.end() || !js->is_object()) return bad("field 'response_format.json_schema' must be an object");
    if (auto n = js->find("name"); n != js->end() && !n->is_null() && !n->is_string())
      return bad("field 'response_format.json_schema.name' must be a string");
    if (auto sc = js->find("schema"); sc != js->end() && !sc->is_null())
      if (auto s = check_schema(*sc, "response_format.json_schema.schema"); !s) return s;
  } else if (type != "json_object") {
    return bad("field 'response_format.type' must be 'text', 'json_object' or 'json_schema'");
  }
  r.response_format = msg::json_value{rf};
  return status::success();
}

status parse_int_hint(const json* v, const std::string& header, const char* name, std::int64_t lo, std::int64_t hi,
                      std::optional<std::int64_t>& out) {
  std::int64_t x = 0;
  if (v) {
    std::string err;
    if (!msg::detail::json_read(*v, x, err, name)) return bad(err);
  } else if (!header.empty()) {
    auto [p, ec] = std::from_chars(header.data(), header.data() + header.size(), x);
    if (ec != std::errc() || p != header.data() + header.size())
      return bad("field '" + std::string(name) + "' (header) must be an integer");
  } else {
    return status::success();
  }
  if (x < lo || x > hi)
    return bad("field '" + std::string(name) + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  out = x;
  return status::success();
}

}  // namespace

status parse_message_tools(const json& m, const std::string& at, msg::chat_message& cm) {
  if (const json* n = find(m, "name")) {
    if (!n->is_string()) return bad("field '" + at + ".name' must be a string");
    cm.name = n->get<std::string>();
  }
  if (const json* id = find(m, "tool_call_id")) {
    if (!id->is_string()) return bad("field '" + at + ".tool_call_id' must be a string");
    cm.tool_call_id = id->get<std::string>();
  }
  if (cm.role == "tool" && !cm.tool_call_id) return bad("field '" + at + ".tool_call_id' is required for role 'tool'");
  const json* calls = find(m, "tool_calls");
  if (!calls) return status::success();
  if (!calls->is_array()) return bad("field '" + at + ".tool_calls' must be an array");
  if (calls->empty()) return status::success();
  if (cm.role != "assistant") return bad("field '" + at + ".tool_calls' is only allowed on assistant messages");
  for (std::size_t i = 0; i < calls->size(); ++i) {
    const auto& c = (*calls)[i];
    const std::string ct = at + ".tool_calls[" + std::to_string(i) + "]";
    if (!c.is_object()) return bad("field '" + ct + "' must be an object");
    msg::tool_call tc;
    if (const json* id = find(c, "id")) {
      if (!id->is_string()) return bad("field '" + ct + ".id' must be a string");
      tc.id = id->get<std::string>();
    }
    if (!type_is_function(c)) return bad("field '" + ct + ".type' must be 'function'");
    const json* f = find(c, "function");
    if (!f || !f->is_object()) return bad("field '" + ct + ".function' must be an object");
    const json* name = find(*f, "name");
    if (!name || !name->is_string()) return bad("field '" + ct + ".function.name' must be a string");
    tc.function.name = name->get<std::string>();
    if (const json* a = find(*f, "arguments")) {
      // OpenAI sends a JSON string; some clients send the object itself.
      if (a->is_string()) tc.function.arguments = a->get<std::string>();
      else if (a->is_object()) tc.function.arguments = a->dump();
      else return bad("field '" + ct + ".function.arguments' must be a JSON string");
    }
    cm.tool_calls.push_back(std::move(tc));
  }
  return status::success();
}

status parse_tools_and_format(const std::string& body, const json& j, endpoint ep, msg::generate_request& r) {
  const json* tools = find(j, "tools");
  const json* rf = find(j, "response_format");
  if (tools && ep != endpoint::chat) return bad("unsupported field 'tools': tools need /v1/chat/completions");
  if (tools || rf) {
    // nlohmann::json keeps keys sorted; schemas are read again in their own order.
    auto ordered = nlohmann::ordered_json::parse(body, nullptr, false);
    if (ordered.is_discarded()) return bad("request body is not valid JSON");
    if (tools && !(tools->is_array() && tools->empty()))
      if (auto s = parse_tools(ordered["tools"], r); !s) return s;
    if (rf)
      if (auto s = parse_response_format(ordered["response_format"], r); !s) return s;
  }
  if (const json* tc = find(j, "tool_choice"))
    if (auto s = parse_tool_choice(*tc, r); !s) return s;
  return status::success();
}

status parse_agent_hints(const json& j, const request_hint_headers& h, msg::generate_request& r, bool& priority_given) {
  std::optional<std::int64_t> prio, expected;
  if (auto s = parse_int_hint(find(j, "priority"), h.priority, "priority", -1000, 1000, prio); !s) return s;
  if (prio) {
    r.priority = static_cast<std::int32_t>(*prio);
    priority_given = true;
  }
  if (auto s = parse_int_hint(find(j, "expected_output_tokens"), h.expected_output_tokens, "expected_output_tokens", 0,
                              1 << 24, expected);
      !s)
    return s;
  if (expected) r.expected_output_tokens = static_cast<std::uint32_t>(*expected);
  // latency_class, else OpenAI's service_tier ("flex" is its batch-like tier), else the header.
  std::string lc = h.latency_class;
  if (const json* v = find(j, "latency_class")) {
    if (!v->is_string()) return bad("field 'latency_class' must be 'interactive' or 'batch'");
    lc = v->get<std::string>();
  } else if (const json* st = find(j, "service_tier")) {
    if (!st->is_string()) return bad("field 'service_tier' must be a string");
    if (st->get_ref<const std::string&>() == "flex") lc = "batch";
  }
  if (!lc.empty() && !msg::wire_enum_from(lc, r.latency))
    return bad("field 'latency_class' must be 'interactive' or 'batch' (got '" + lc + "')");
  // session_id, else OpenAI's prompt_cache_key (a cache-routing key too), else the header.
  std::string session = h.session_id;
  for (const char* name : {"prompt_cache_key", "session_id"})
    if (const json* v = find(j, name)) {
      if (!v->is_string()) return bad("field '" + std::string(name) + "' must be a string");
      session = v->get<std::string>();
    }
  if (session.size() > 256) return bad("field 'session_id' must be at most 256 characters");
  if (!session.empty()) r.session_id = session;
  return status::success();
}

}  // namespace yard::actors::openai
