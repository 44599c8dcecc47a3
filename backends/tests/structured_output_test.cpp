// backends/tests/structured_output_test.cpp — output_rules end to end through real engines:
// JSON-schema and JSON-object output that always parses and validates (mock and a random-weight
// native model: the grammar, not the model, guarantees it), forced tool calls in each format
// parsed back into tool_calls, and free tool calls ("auto") left to the model.
#include "backends/output_rules.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "backends/mock/mock_engine.hpp"
#include "backends/native/native_engine.hpp"
#include "backends/tests/native_test_util.hpp"

namespace yard::backends {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

struct result_of_run {
  std::string text;
  std::string finish;
  std::vector<msg::tool_call_delta> calls;
};

// Admits one request with its output rules and steps the engine until it ends.
result_of_run run(engine& e, msg::generate_request g, std::vector<token_id> prompt, std::uint32_t max_tokens,
                  chat::tool_call_format fmt, std::uint64_t seed, double temperature = 0.0,
                  std::vector<std::string> stop = {}) {
  g.max_tokens = max_tokens;
  auto rules = output_rules_for(g, [&] { return e.vocabulary(); }, fmt);
  EXPECT_TRUE(rules.ok()) << rules.err().describe();
  if (!rules) return {};
  engine_request r;
  r.request_id = g.request_id;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.seed = seed;
  r.sampling.temperature = temperature;
  r.constraint = rules->constraint;
  r.tool_format = rules->tool_format;
  r.stop = std::move(stop);
  EXPECT_TRUE(e.add_request(std::move(r)).ok());
  result_of_run out;
  for (int guard = 0; e.has_work() && guard < 5000; ++guard)
    for (auto& o : e.step().outputs) {
      out.text += o.text_delta;
      out.calls.insert(out.calls.end(), o.tool_calls.begin(), o.tool_calls.end());
      if (o.finish_reason) out.finish = std::string(msg::wire_name(*o.finish_reason));
    }
  return out;
}

const char* city_schema = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 16},
    "population": {"type": "integer"},
    "area": {"type": "number"},
    "districts": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 3},
    "kind": {"enum": ["capital", "port", "town"]},
    "mayor": {"type": "object", "properties": {"first": {"type": "string"}, "since": {"type": "integer"}},
              "required": ["first"]},
    "twin": {"type": ["string", "null"]}
  },
  "required": ["name", "population", "districts", "kind", "mayor"],
  "additionalProperties": false
})";

// JSON Schema counts string lengths in code points.
std::size_t code_points(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// The checks a JSON-schema validator would make for city_schema.
void expect_city(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << "does not parse: " << text;
  ASSERT_TRUE(j.is_object()) << text;
  for (const char* k : {"name", "population", "districts", "kind", "mayor"}) EXPECT_TRUE(j.contains(k)) << k << " in " << text;
  for (auto it = j.begin(); it != j.end(); ++it)
    EXPECT_TRUE(it.key() == "name" || it.key() == "population" || it.key() == "area" || it.key() == "districts" ||
                it.key() == "kind" || it.key() == "mayor" || it.key() == "twin")
        << "unexpected key " << it.key();
  EXPECT_TRUE(j["name"].is_string());
  EXPECT_TRUE(j["population"].is_number_integer()) << text;
  if (j.contains("area")) EXPECT_TRUE(j["area"].is_number());
  ASSERT_TRUE(j["districts"].is_array());
  EXPECT_LE(j["districts"].size(), 3u);
  for (const auto& d : j["districts"]) EXPECT_TRUE(d.is_string() && code_points(d.get<std::string>()) <= 8) << text;
  EXPECT_LE(code_points(j["name"].get<std::string>()), 16u) << text;
  EXPECT_TRUE(j["kind"] == "capital" || j["kind"] == "port" || j["kind"] == "town") << text;
  ASSERT_TRUE(j["mayor"].is_object());
  EXPECT_TRUE(j["mayor"]["first"].is_string());
  if (j.contains("twin")) EXPECT_TRUE(j["twin"].is_string() || j["twin"].is_null());
}

msg::generate_request schema_request(const std::string& id) {
  msg::generate_request g;
  g.request_id = id;
  g.response_format = msg::json_value{ordered_json{
      {"type", "json_schema"}, {"json_schema", {{"name", "city"}, {"schema", ordered_json::parse(city_schema)}}}}};
  return g;
}

TEST(structured_output, mock_json_schema_output_always_validates) {
  mock_engine e;
  for (std::uint32_t i = 0; i < 40; ++i) {
    // Tight budgets too (the shortest valid value takes 81 one-byte tokens): the value closes in time.
    const std::uint32_t budget = 81 + (i * 37) % 160;
    auto r = run(e, schema_request("s" + std::to_string(i)), {1, 2, 3, static_cast<token_id>(i)}, budget,
                 chat::tool_call_format::hermes, i);
    EXPECT_EQ(r.finish, "stop") << r.text;
    expect_city(r.text);
  }
}

// Stop strings wait while a constraint runs: a '}' or '"' inside the value would cut JSON that must parse.
TEST(structured_output, stop_strings_do_not_cut_a_constrained_value) {
  mock_engine e;
  for (std::uint32_t i = 0; i < 8; ++i) {
    auto r = run(e, schema_request("stop" + std::to_string(i)), {1, 2, 3, static_cast<token_id>(i)}, 240,
                 chat::tool_call_format::hermes, i, 0.0, {"}", "\"", ","});
    EXPECT_EQ(r.finish, "stop") << r.text;
    expect_city(r.text);
  }
}

// A budget below the shortest valid value is refused up front, naming max_tokens.
TEST(structured_output, a_budget_too_small_for_any_valid_value_is_a_400) {
  mock_engine e;
  auto g = schema_request("small");
  g.max_tokens = 40;
  auto rules = output_rules_for(g, [&] { return e.vocabulary(); }, chat::tool_call_format::hermes);
  ASSERT_FALSE(rules.ok());
  EXPECT_EQ(rules.err().code, errc::bad_request);
  EXPECT_NE(rules.err().message.find("field 'max_tokens' (40)"), std::string::npos) << rules.err().message;
  g.max_tokens = 0;  // until the context ends: no bound to check
  EXPECT_TRUE(output_rules_for(g, [&] { return e.vocabulary(); }, chat::tool_call_format::hermes).ok());
}

TEST(structured_output, mock_json_object_mode) {
  mock_engine e;
  msg::generate_request g;
  g.request_id = "o";
  g.response_format = msg::json_value{ordered_json{{"type", "json_object"}}};
  for (std::uint32_t i = 0; i < 20; ++i) {
    g.request_id = "o" + std::to_string(i);
    auto r = run(e, g, {9, static_cast<token_id>(i)}, 24 + i * 5, chat::tool_call_format::hermes, i);
    auto j = json::parse(r.text, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.text;
    EXPECT_TRUE(j.is_object()) << r.text;
  }
}

ordered_json weather_tools() {
  return ordered_json::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
      "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["c", "f"]}}, "required": ["city", "unit"]}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object",
      "properties": {"zone": {"type": "string", "maxLength": 8}}, "required": ["zone"]}}}
  ])");
}

// tool_choice "required" / a named function: one call in the deployment's format, parsed into deltas.
TEST(structured_output, forced_tool_calls_in_every_format) {
  for (auto fmt : {chat::tool_call_format::hermes, chat::tool_call_format::llama3_json, chat::tool_call_format::mistral}) {
    mock_engine e;
    for (std::uint32_t i = 0; i < 12; ++i) {
      msg::generate_request g;
      g.request_id = std::string(chat::tool_call_format_name(fmt)) + std::to_string(i);
      g.tools = msg::json_value{weather_tools()};
      const bool named = i % 3 == 0;
      g.tool_choice = msg::json_value{named ? ordered_json{{"type", "function"}, {"function", {{"name", "get_time"}}}}
                                            : ordered_json("required")};
      auto r = run(e, g, {5, static_cast<token_id>(i)}, 120, fmt, i);
      SCOPED_TRACE(g.request_id + ": " + r.text);
      EXPECT_EQ(r.finish, "tool_calls");
      EXPECT_EQ(r.text, "");  // the call's text is not content
      ASSERT_GE(r.calls.size(), 1u);
      EXPECT_TRUE(r.calls[0].id.has_value());
      ASSERT_TRUE(r.calls[0].name.has_value());
      if (named) EXPECT_EQ(*r.calls[0].name, "get_time");
      std::string args;
      for (const auto& d : r.calls)
        if (d.index == 0) args += d.arguments;
      auto a = json::parse(args, nullptr, false);
      ASSERT_FALSE(a.is_discarded()) << args;
      if (*r.calls[0].name == "get_weather") {
        EXPECT_TRUE(a["city"].is_string());
        EXPECT_TRUE(a["unit"] == "c" || a["unit"] == "f");
      } else {
        EXPECT_TRUE(a["zone"].is_string());
      }
    }
  }
}

TEST(structured_output, auto_and_none_leave_the_output_free) {
  mock_engine e;
  msg::generate_request g;
  g.request_id = "a";
  g.tools = msg::json_value{weather_tools()};
  auto rules = output_rules_for(g, [&] { return e.vocabulary(); }, chat::tool_call_format::hermes);
  ASSERT_TRUE(rules.ok());
  EXPECT_EQ(rules->constraint, nullptr);
  EXPECT_EQ(rules->tool_format, chat::tool_call_format::hermes);
  g.tool_choice = msg::json_value{"none"};
  rules = output_rules_for(g, [&] { return e.vocabulary(); }, chat::tool_call_format::hermes);
  ASSERT_TRUE(rules.ok());
  EXPECT_FALSE(rules->tool_format.has_value());
  // An engine without a vocabulary cannot be constrained: a clear error, not free text.
  auto none = output_rules_for(schema_request("x"), [] { return nullptr; }, chat::tool_call_format::hermes);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.err().code, errc::unsupported);
}

// Bus clients are not checked by the frontend: malformed shapes are 400s naming the field, never a throw.
// An engine whose server constrains by schema (an external engine) gets the same decision as a schema.
TEST(structured_output, upstream_rules_carry_the_schema_instead_of_a_constraint) {
  auto rules = output_rules_upstream(schema_request("u1"), chat::tool_call_format::hermes);
  ASSERT_TRUE(rules.ok()) << rules.err().describe();
  EXPECT_EQ(rules->constraint, nullptr);
  ASSERT_TRUE(rules->upstream_schema);
  EXPECT_EQ(json::parse(*rules->upstream_schema), json::parse(city_schema));
  msg::generate_request obj;
  obj.response_format = msg::json_value{ordered_json{{"type", "json_object"}}};
  rules = output_rules_upstream(obj, chat::tool_call_format::hermes);
  ASSERT_TRUE(rules.ok());
  EXPECT_EQ(json::parse(*rules->upstream_schema), json({{"type", "object"}}));
  msg::generate_request text;
  text.response_format = msg::json_value{ordered_json{{"type", "text"}}};
  rules = output_rules_upstream(text, chat::tool_call_format::hermes);
  ASSERT_TRUE(rules.ok());
  EXPECT_FALSE(rules->upstream_schema);

  msg::generate_request forced;
  forced.tools = msg::json_value{weather_tools()};
  forced.tool_choice = msg::json_value{ordered_json{{"type", "function"}, {"function", {{"name", "get_time"}}}}};
  rules = output_rules_upstream(forced, chat::tool_call_format::llama3_json);  // a bare JSON call: a schema
  ASSERT_TRUE(rules.ok()) << rules.err().describe();
  auto call = json::parse(*rules->upstream_schema);
  EXPECT_EQ(call["properties"]["name"]["const"], "get_time");
  EXPECT_EQ(rules->tool_format, chat::tool_call_format::llama3_json);
  auto framed = output_rules_upstream(forced, chat::tool_call_format::hermes);  // text around the JSON: no schema says it
  ASSERT_FALSE(framed.ok());
  EXPECT_EQ(framed.err().code, errc::unsupported);
  EXPECT_NE(framed.err().message.find("llama3_json"), std::string::npos);

  msg::generate_request bad;  // a schema the native engines would refuse is refused alike
  bad.response_format = msg::json_value{ordered_json{
      {"type", "json_schema"}, {"json_schema", {{"name", "b"}, {"schema", {{"type", "object"}, {"minProperties", "x"}}}}}}};
  auto native = output_rules_for(bad, [] { return mock_engine().vocabulary(); }, chat::tool_call_format::hermes);
  auto upstream = output_rules_upstream(bad, chat::tool_call_format::hermes);
  EXPECT_EQ(native.ok(), upstream.ok());
  if (!upstream.ok()) EXPECT_EQ(upstream.err().code, errc::bad_request);
}

TEST(structured_output, malformed_agent_fields_from_the_bus_are_errors) {
  mock_engine e;
  auto vocab = [&] { return e.vocabulary(); };
  auto expect_bad = [&](msg::generate_request g, const std::string& field) {
    auto r = output_rules_for(g, vocab, chat::tool_call_format::hermes);
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_EQ(r.err().code, errc::bad_request);
    EXPECT_NE(r.err().message.find("'" + field), std::string::npos) << r.err().message;
  };
  msg::generate_request g;
  g.tools = msg::json_value{ordered_json("not an array")};
  expect_bad(g, "tools");
  g.tools = msg::json_value{ordered_json::array({1, 2})};
  expect_bad(g, "tools[0].function");
  g.tools = msg::json_value{ordered_json::parse(R"([{"function": {"name": 7}}])")};
  expect_bad(g, "tools[0].function.name");
  g.tools = msg::json_value{weather_tools()};
  g.tool_choice = msg::json_value{ordered_json{{"function", 5}}};
  expect_bad(g, "tool_choice");
  g.tool_choice = msg::json_value{ordered_json{{"type", "function"}, {"function", {{"name", "nope"}}}}};
  expect_bad(g, "tool_choice");
  msg::generate_request f;
  f.response_format = msg::json_value{ordered_json::array()};
  expect_bad(f, "response_format");
  f.response_format = msg::json_value{ordered_json{{"type", "json_schema"}, {"json_schema", {{"schema", 3}}}}};
  expect_bad(f, "response_format.json_schema.schema");
  f.response_format = msg::json_value{ordered_json{{"type", "json_schema"}, {"json_schema", {{"schema", {{"type", "object"}, {"not", {}}}}}}}};
  expect_bad(f, "response_format");
}

// Migration: a constrained request resumed elsewhere with the tokens already delivered walks
// its constraint over them first, so the continuation is what the first worker would have made.
TEST(structured_output, a_migrated_constrained_request_continues_token_exactly) {
  auto whole = [](std::vector<token_id> resume) {
    mock_engine e;
    auto g = schema_request("m");
    g.max_tokens = 200;
    auto rules = output_rules_for(g, [&] { return e.vocabulary(); }, chat::tool_call_format::hermes);
    EXPECT_TRUE(rules.ok());
    engine_request r;
    r.request_id = "m";
    r.prompt = {4, 5, 6};
    r.max_tokens = 200;
    r.sampling.seed = 7;
    r.resume_tokens = std::move(resume);
    r.constraint = rules->constraint;
    EXPECT_TRUE(e.add_request(std::move(r)).ok());
    std::vector<token_id> out;
    for (int guard = 0; e.has_work() && guard < 1000; ++guard)
      for (auto& o : e.step().outputs) out.insert(out.end(), o.new_tokens.begin(), o.new_tokens.end());
    return out;
  };
  auto first = whole({});
  ASSERT_GT(first.size(), 40u);
  std::vector<token_id> delivered(first.begin(), first.begin() + 30);
  auto rest = whole(delivered);
  delivered.insert(delivered.end(), rest.begin(), rest.end());
  EXPECT_EQ(delivered, first);
  expect_city(std::string(first.begin(), first.end()));
}

// The same guarantee on the native engine with random weights, sampled (temperature 1).
TEST(structured_output, native_random_weights_json_schema_always_validates) {
  native::testing::temp_dir d;
  auto dir = native::testing::make_model(d, "tiny");
  native_engine_options o;
  o.num_blocks = 256;
  auto e = native_engine::open(dir, o);
  ASSERT_TRUE(e.ok()) << e.err().describe();
  auto prompt = (*e)->tokenize("a city as JSON:");
  ASSERT_TRUE(prompt.ok());
  for (std::uint32_t i = 0; i < 8; ++i) {
    auto r = run(**e, schema_request("n" + std::to_string(i)), *prompt, 80 + i * 20, chat::tool_call_format::hermes, i, 1.0);
    EXPECT_EQ(r.finish, "stop") << r.text;
    expect_city(r.text);
  }
}

}  // namespace
}  // namespace yard::backends
