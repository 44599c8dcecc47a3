// backends/output_rules.cpp — see output_rules.hpp.
#include "backends/output_rules.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "backends/structured/json_constraint.hpp"
#include "backends/structured/json_schema_compiler.hpp"
#include "common/log.hpp"

namespace yard::backends {

namespace {

using nlohmann::ordered_json;

// A JSON value between two fixed texts: the prefix is forced token by token
// (tokens that are a prefix of what is left of it), then the JSON grammar
// runs, then the suffix is forced; after it nothing may follow. The suffix's
// bytes are kept out of the JSON's budget so the call always closes.
class framed_json_constraint final : public output_constraint {
 public:
  framed_json_constraint(std::string prefix, structured::json_constraint json, std::string suffix,
                         std::shared_ptr<const structured::token_vocabulary> vocab)
      : prefix_(std::move(prefix)), suffix_(std::move(suffix)), json_(std::move(json)), vocab_(std::move(vocab)) {}

  void mask(std::span<float> logits, std::uint32_t tokens_left) override {
    if (phase_ == phase::json) {
      const std::uint32_t reserve = static_cast<std::uint32_t>(suffix_.size());
      json_.mask(logits, tokens_left > reserve ? tokens_left - reserve : 1);
      return;
    }
    const std::string_view rest = phase_ == phase::prefix ? std::string_view(prefix_).substr(done_)
                                  : phase_ == phase::suffix ? std::string_view(suffix_).substr(done_)
                                                            : std::string_view();
    for (std::size_t t = 0; t < logits.size(); ++t) {
      const auto id = static_cast<msg::token_id>(t);
      if (phase_ == phase::end) {
        if (!vocab_->is_eos(id)) logits[t] = -INFINITY;
        continue;
      }
      const auto b = vocab_->bytes(id);
      if (!vocab_->is_text(id) || b.empty() || b.size() > rest.size() || rest.substr(0, b.size()) != b)
        logits[t] = -INFINITY;
    }
  }

  void advance(msg::token_id t) override {
    if (phase_ == phase::json) {
      json_.advance(t);
      if (json_.fault())  // a token the mask did not allow: a bug; the value ends here
        component_logger("structured")->error("constrained token {} was not allowed: {}", t, json_.fault()->describe());
      if (json_.finished()) enter(phase::suffix);
      return;
    }
    if (phase_ == phase::end) return;
    done_ += vocab_->bytes(t).size();
    const std::string& lit = phase_ == phase::prefix ? prefix_ : suffix_;
    if (done_ >= lit.size()) enter(phase_ == phase::prefix ? phase::json : phase::end);
  }

  bool finished() const override { return phase_ == phase::end; }

  void start() { enter(phase::prefix); }

  // Tokens the shortest valid output takes (greedy longest-prefix tokens of
  // prefix + the schema's shortest value + suffix), before any token.
  std::size_t min_tokens() const {
    return vocab_->greedy_count(prefix_ + json_.matcher().shortest_completion() + suffix_);
  }

 private:
  enum class phase { prefix, json, suffix, end };
  void enter(phase p) {
    phase_ = p;
    done_ = 0;
    if (p == phase::prefix && prefix_.empty()) return enter(phase::json);
    if (p == phase::suffix && suffix_.empty()) return enter(phase::end);
  }

  std::string prefix_, suffix_;
  structured::json_constraint json_;
  std::shared_ptr<const structured::token_vocabulary> vocab_;
  phase phase_ = phase::prefix;
  std::size_t done_ = 0;  // bytes of the current literal emitted
};

// The call object of one tool in `format`: {"name": const, "arguments"|"parameters": its schema}.
ordered_json call_schema(const ordered_json& tool, chat::tool_call_format format) {
  const auto& fn = tool["function"];
  ordered_json params = fn.contains("parameters") && fn["parameters"].is_object() ? fn["parameters"]
                                                                                  : ordered_json{{"type", "object"}};
  const char* args = format == chat::tool_call_format::llama3_json ? "parameters" : "arguments";
  ordered_json props = ordered_json::object();
  props["name"] = {{"const", fn["name"]}};
  props[args] = params;
  return {{"type", "object"}, {"properties", props}, {"required", {"name", args}}, {"additionalProperties", false}};
}

// The tools a forced call may use: all for "required", one for a named function, none otherwise.
std::vector<const ordered_json*> forced_tools(const msg::generate_request& r) {
  std::vector<const ordered_json*> out;
  if (!r.tools || !r.tools->v.is_array() || r.tools->v.empty() || !r.tool_choice) return out;
  const auto& choice = r.tool_choice->v;
  for (const auto& t : r.tools->v) {
    if (choice == "required") out.push_back(&t);
    else if (choice.is_object() && choice.contains("function") && t["function"]["name"] == choice["function"]["name"])
      out.push_back(&t);
  }
  return out;
}

result<std::shared_ptr<output_constraint>> framed(std::string prefix, const ordered_json& schema, std::string suffix,
                                                  const std::shared_ptr<const structured::token_vocabulary>& vocab,
                                                  const std::string& field, std::uint32_t max_tokens) {
  auto g = structured::compile_json_schema(schema);
  if (!g) return make_error(errc::bad_request, "field '" + field + "': " + g.err().message);
  auto grammar = std::make_shared<const structured::json_grammar>(std::move(*g));
  auto c = std::make_shared<framed_json_constraint>(std::move(prefix), structured::json_constraint(grammar, vocab),
                                                    std::move(suffix), vocab);
  c->start();
  // A budget that cannot hold even the shortest valid value is refused, not cut into invalid JSON.
  if (max_tokens > 0 && c->min_tokens() > max_tokens)
    return make_error(errc::bad_request, "field 'max_tokens' (" + std::to_string(max_tokens) + ") is below the " +
                                             std::to_string(c->min_tokens()) + " tokens the shortest valid output for '" +
                                             field + "' takes");
  return std::shared_ptr<output_constraint>(std::move(c));
}

// The shapes the frontend checks for HTTP, checked again here for bus clients
// (a NATS body is not parsed by the frontend): errors name the field.
status check_shapes(const msg::generate_request& r) {
  auto bad = [](const std::string& m) { return status(make_error(errc::bad_request, m)); };
  if (r.tools) {
    if (!r.tools->v.is_array()) return bad("field 'tools' must be an array");
    for (std::size_t i = 0; i < r.tools->v.size(); ++i) {
      const auto& t = r.tools->v[i];
      const std::string at = "tools[" + std::to_string(i) + "]";
      if (!t.is_object() || !t.contains("function") || !t["function"].is_object())
        return bad("field '" + at + ".function' must be an object");
      const auto& fn = t["function"];
      if (!fn.contains("name") || !fn["name"].is_string() || fn["name"].get_ref<const std::string&>().empty())
        return bad("field '" + at + ".function.name' must be a non-empty string");
      if (fn.contains("parameters") && !fn["parameters"].is_null() && !fn["parameters"].is_object())
        return bad("field '" + at + ".function.parameters' must be a JSON schema object");
    }
  }
  if (r.tool_choice) {
    const auto& c = r.tool_choice->v;
    const bool word = c.is_string() && (c == "none" || c == "auto" || c == "required");
    const bool named = c.is_object() && c.contains("function") && c["function"].is_object() &&
                       c["function"].contains("name") && c["function"]["name"].is_string();
    if (!word && !named)
      return bad("field 'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}");
    if (!word || c != "none") {
      if (!r.tools || r.tools->v.empty()) return bad("field 'tool_choice' needs 'tools'");
      if (named && std::none_of(r.tools->v.begin(), r.tools->v.end(),
                                [&](const ordered_json& t) { return t["function"]["name"] == c["function"]["name"]; }))
        return bad("field 'tool_choice' names a function that is not in 'tools'");
    }
  }
  if (r.response_format) {
    const auto& f = r.response_format->v;
    if (!f.is_object() || !f.contains("type") || !f["type"].is_string())
      return bad("field 'response_format' must be an object with a string 'type'");
    const auto& type = f["type"].get_ref<const std::string&>();
    if (type != "text" && type != "json_object" && type != "json_schema")
      return bad("field 'response_format.type' must be 'text', 'json_object' or 'json_schema'");
    if (type == "json_schema" && (!f.contains("json_schema") || !f["json_schema"].is_object()))
      return bad("field 'response_format.json_schema' must be an object");
    if (type == "json_schema" && f["json_schema"].contains("schema") && !f["json_schema"]["schema"].is_null() &&
        !f["json_schema"]["schema"].is_object())
      return bad("field 'response_format.json_schema.schema' must be a JSON schema object");
  }
  return status::success();
}

}  // namespace

namespace {

// What the output must be, when anything: framing text around a JSON value of `schema`.
struct required_output {
  std::string prefix, suffix;
  ordered_json schema;
  std::string field;  // the request field it comes from (errors name it)
};

// The checked request's tool format (into `out`) and what its output must be (a forced call wins over response_format).
result<std::optional<required_output>> required_output_of(const msg::generate_request& r, chat::tool_call_format format,
                                                          output_rules& out) {
  if (auto s = check_shapes(r); !s) return s.err();
  const bool tools = r.tools && r.tools->v.is_array() && !r.tools->v.empty();
  const bool none = r.tool_choice && r.tool_choice->v == "none";
  if (tools && !none) out.tool_format = format;
  auto forced = forced_tools(r);
  const bool json_format = r.response_format && r.response_format->v.value("type", "") != "text";
  if (forced.empty() && !json_format) return std::optional<required_output>{};
  if (!forced.empty()) {
    if (format == chat::tool_call_format::none)
      return make_error(errc::bad_request, "field 'tool_choice' forces a call, but this worker parses no tool calls "
                                           "(--tool-call-format none)");
    ordered_json one = forced.size() == 1 ? call_schema(*forced[0], format) : ordered_json{{"anyOf", ordered_json::array()}};
    if (forced.size() > 1)
      for (const auto* t : forced) one["anyOf"].push_back(call_schema(*t, format));
    switch (format) {
      case chat::tool_call_format::llama3_json: return std::optional<required_output>({"", "", one, "tools"});
      case chat::tool_call_format::mistral:
        return std::optional<required_output>(
            {"[TOOL_CALLS]", "", {{"type", "array"}, {"items", one}, {"minItems", 1}}, "tools"});
      default: return std::optional<required_output>({"<tool_call>\n", "\n</tool_call>", one, "tools"});
    }
  }
  const auto& rf = r.response_format->v;
  ordered_json schema = {{"type", "object"}};  // json_object: any object
  if (rf.value("type", "") == "json_schema" && rf.contains("json_schema") && rf["json_schema"].contains("schema") &&
      rf["json_schema"]["schema"].is_object())
    schema = rf["json_schema"]["schema"];
  return std::optional<required_output>({"", "", std::move(schema), "response_format"});
}

}  // namespace

result<output_rules> output_rules_for(const msg::generate_request& r, const vocabulary_source& vocab_of,
                                      chat::tool_call_format format) {
  output_rules out;
  auto need = required_output_of(r, format, out);
  if (!need) return need.err();
  if (!*need) return out;
  auto vocab = vocab_of ? vocab_of() : nullptr;
  if (!vocab) return make_error(errc::unsupported, "this engine cannot constrain its output (no token vocabulary)");
  auto& n = **need;
  auto c = framed(std::move(n.prefix), n.schema, std::move(n.suffix), vocab, n.field, r.max_tokens);
  if (!c) return c.err();
  out.constraint = std::move(*c);
  return out;
}

result<output_rules> output_rules_upstream(const msg::generate_request& r, chat::tool_call_format format) {
  output_rules out;
  auto need = required_output_of(r, format, out);
  if (!need) return need.err();
  if (!*need) return out;
  auto& n = **need;
  if (!n.prefix.empty() || !n.suffix.empty())
    return make_error(errc::unsupported, "field 'tool_choice' forces a call in the " +
                                             std::string(chat::tool_call_format_name(format)) +
                                             " format, which an upstream server cannot constrain (it takes a bare JSON "
                                             "schema): use tool_choice 'auto', or a worker with --tool-call-format "
                                             "llama3_json");
  // Checked here as the native engines check it, so a schema this worker would refuse is refused alike.
  if (auto g = structured::compile_json_schema(n.schema); !g)
    return make_error(errc::bad_request, "field '" + n.field + "': " + g.err().message);
  out.upstream_schema = n.schema.dump();
  return out;
}

}  // namespace yard::backends
