// openai_api: per-endpoint allow-lists, range checks naming the field, defaults, tools and agent fields,
// types that are not what OpenAI says (a 400, never a throw). Response shapes: openai_render_test.cpp.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "actors/openai_api.hpp"

using namespace yard;
using namespace yard::actors::openai;
using nlohmann::json;

namespace {

const char* chat_msgs = R"("messages":[{"role":"user","content":"hi"}])";

result<parsed_request> chat(const std::string& extra) {
  return parse(std::string("{") + chat_msgs + (extra.empty() ? "" : "," + extra) + "}", endpoint::chat, "r");
}
result<parsed_request> comp(const std::string& extra) {
  return parse(R"({"prompt":"hello")" + (extra.empty() ? std::string() : "," + extra) + "}", endpoint::completions, "r");
}

// The 400's message names `field` and error_body makes it the param.
void expect_rejects(const result<parsed_request>& r, const std::string& field) {
  ASSERT_FALSE(r.ok()) << field;
  EXPECT_EQ(r.err().code, errc::bad_request);
  auto body = json::parse(error_body(r.err().code, r.err().message));
  EXPECT_EQ(body["error"]["param"], field) << r.err().message;
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
}


}  // namespace

TEST(openai_parse, defaults_leave_max_tokens_to_the_context) {
  auto r = chat("");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->gen.max_tokens, 0u);  // until the context ends
  EXPECT_FALSE(r->gen.stream);
  EXPECT_FALSE(r->render.include_usage);
  EXPECT_EQ(chat(R"("max_tokens":7)")->gen.max_tokens, 7u);
  EXPECT_EQ(chat(R"("max_completion_tokens":9,"max_tokens":7)")->gen.max_tokens, 9u);
  expect_rejects(chat(R"("max_tokens":0)"), "max_tokens");
  expect_rejects(chat(R"("max_completion_tokens":0)"), "max_completion_tokens");
}

TEST(openai_parse, sampling_fields_and_their_ranges) {
  auto r = chat(R"("presence_penalty":1.5,"frequency_penalty":-1,"repetition_penalty":1.2,"seed":7,"min_tokens":3,)"
                R"("logit_bias":{"65":100,"66":-100},"stop":"END","stop_token_ids":[1,2],"temperature":0.5,"top_p":0.9)");
  ASSERT_TRUE(r.ok()) << r.err().message;
  const auto& sp = r->gen.sampling;
  EXPECT_DOUBLE_EQ(sp.presence_penalty, 1.5);
  EXPECT_DOUBLE_EQ(sp.frequency_penalty, -1);
  EXPECT_DOUBLE_EQ(sp.repetition_penalty, 1.2);
  EXPECT_EQ(sp.seed, 7u);
  EXPECT_EQ(sp.min_tokens, 3u);
  ASSERT_EQ(sp.logit_bias.size(), 2u);
  EXPECT_EQ(sp.logit_bias[0].token, 65u);
  EXPECT_FLOAT_EQ(sp.logit_bias[1].bias, -100.0f);
  EXPECT_EQ(r->gen.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r->gen.stop_token_ids, (std::vector<msg::token_id>{1, 2}));
  EXPECT_EQ(chat(R"("stop":["a","b"])")->gen.stop.size(), 2u);

  expect_rejects(chat(R"("presence_penalty":2.5)"), "presence_penalty");
  expect_rejects(chat(R"("frequency_penalty":-3)"), "frequency_penalty");
  expect_rejects(chat(R"("repetition_penalty":0)"), "repetition_penalty");
  expect_rejects(chat(R"("repetition_penalty":2.5)"), "repetition_penalty");
  expect_rejects(chat(R"("temperature":2.5)"), "temperature");
  expect_rejects(chat(R"("top_p":0)"), "top_p");
  expect_rejects(chat(R"("top_k":-2)"), "top_k");
  expect_rejects(chat(R"("temperature":"hot")"), "temperature");
  expect_rejects(chat(R"("logit_bias":{"65":101})"), "logit_bias");
  expect_rejects(chat(R"("logit_bias":{"x":1})"), "logit_bias");
  expect_rejects(chat(R"("logit_bias":[1])"), "logit_bias");
  expect_rejects(chat(R"("seed":"x")"), "seed");
  expect_rejects(chat(R"("stop":["a","b","c","d","e"])"), "stop");
  expect_rejects(chat(R"("stop":[1])"), "stop");
  expect_rejects(chat(R"("stop_token_ids":[-1])"), "stop_token_ids[0]");
  expect_rejects(chat(R"("min_tokens":-1)"), "min_tokens");
  expect_rejects(chat(R"("min_tokens":5,"max_tokens":4)"), "min_tokens");
}

TEST(openai_parse, logprobs_shapes_per_endpoint) {
  auto c = comp(R"("logprobs":3)");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->gen.sampling.logprobs);
  EXPECT_EQ(c->gen.sampling.top_logprobs, 3u);
  EXPECT_TRUE(c->render.logprobs);
  expect_rejects(comp(R"("logprobs":6)"), "logprobs");
  expect_rejects(comp(R"("logprobs":true)"), "logprobs");
  auto h = chat(R"("logprobs":true,"top_logprobs":20)");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->gen.sampling.top_logprobs, 20u);
  expect_rejects(chat(R"("logprobs":true,"top_logprobs":21)"), "top_logprobs");
  expect_rejects(chat(R"("top_logprobs":2)"), "top_logprobs");
  expect_rejects(chat(R"("logprobs":1)"), "logprobs");
}

TEST(openai_parse, stream_options_echo_and_n) {
  auto s = chat(R"("stream":true,"stream_options":{"include_usage":true})");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->render.include_usage);
  expect_rejects(chat(R"("stream_options":{"include_usage":true})"), "stream_options");
  expect_rejects(chat(R"("stream":true,"stream_options":{"include_usage":1})"), "stream_options.include_usage");
  auto e = comp(R"("echo":true)");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->render.echo, "hello");
  expect_rejects(parse(R"({"prompt":[1,2],"echo":true})", endpoint::completions, "r"), "echo");
  expect_rejects(comp(R"("echo":true,"logprobs":1)"), "echo");
  EXPECT_TRUE(chat(R"("n":1)").ok());
  auto n3 = chat(R"("n":3)");
  ASSERT_TRUE(n3.ok());
  EXPECT_EQ(n3->render.n, 3u);
  expect_rejects(chat(R"("n":0)"), "n");
  expect_rejects(chat(R"("n":129)"), "n");
  expect_rejects(chat(R"("n":1.5)"), "n");
  expect_rejects(comp(R"("best_of":2)"), "best_of");
}

TEST(openai_parse, unsupported_openai_fields_are_400s_naming_them) {
  expect_rejects(chat(R"("functions":[])"), "functions");
  expect_rejects(chat(R"("function_call":"auto")"), "function_call");
  expect_rejects(chat(R"("guided_regex":"a+")"), "guided_regex");
  expect_rejects(chat(R"("audio":{"voice":"x"})"), "audio");
  expect_rejects(chat(R"("modalities":["text","audio"])"), "modalities");
  expect_rejects(chat(R"("prediction":{"type":"content","content":"x"})"), "prediction");
  expect_rejects(comp(R"("suffix":"tail")"), "suffix");
  expect_rejects(comp(R"("min_p":0.1)"), "min_p");
  expect_rejects(parse(R"({"prompt":["a","b"]})", endpoint::completions, "r"), "prompt");
  expect_rejects(parse(R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})",
                       endpoint::chat, "r"),
                 "messages[0].content[0]");
  expect_rejects(parse(R"({"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]})",
                       endpoint::chat, "r"),
                 "messages[0].content[0]");
  expect_rejects(parse(R"({"messages":[{"role":"function","content":"x","name":"f"}]})", endpoint::chat, "r"),
                 "messages[0].role");
}

const char* weather_tool =
    R"("tools":[{"type":"function","function":{"name":"get_weather","description":"d",)"
    R"("parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},"required":["city"]}}}])";

TEST(openai_parse, tools_and_tool_choice) {
  auto r = chat(std::string(weather_tool) + R"(,"tool_choice":"required","parallel_tool_calls":false)");
  ASSERT_TRUE(r.ok()) << r.err().message;
  ASSERT_TRUE(r->gen.tools.has_value());
  EXPECT_EQ(r->gen.tools->v[0]["function"]["name"], "get_weather");
  // The schema keeps the body's key order (properties are generated in that order).
  auto props = r->gen.tools->v[0]["function"]["parameters"]["properties"];
  EXPECT_EQ(props.begin().key(), "city");
  EXPECT_EQ(r->gen.tool_choice->v, "required");
  auto named = chat(std::string(weather_tool) + R"(,"tool_choice":{"type":"function","function":{"name":"get_weather"}})");
  ASSERT_TRUE(named.ok()) << named.err().message;
  EXPECT_EQ(named->gen.tool_choice->v["function"]["name"], "get_weather");
  expect_rejects(chat(std::string(weather_tool) + R"(,"tool_choice":{"type":"function","function":{"name":"nope"}})"),
                 "tool_choice");
  expect_rejects(chat(R"("tool_choice":"required")"), "tool_choice");  // no tools
  expect_rejects(chat(std::string(weather_tool) + R"(,"tool_choice":"sometimes")"), "tool_choice");
  expect_rejects(chat(R"("tools":[{"type":"function","function":{"name":"bad name!"}}])"), "tools[0].function.name");
  expect_rejects(chat(R"("tools":[{"type":"retrieval"}])"), "tools[0].type");
  expect_rejects(chat(R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","patternProperties":{}}}}])"),
                 "tools[0].function.parameters");
  expect_rejects(comp(weather_tool), "tools");
  EXPECT_TRUE(chat(R"("tools":[],"tool_choice":"none")").ok());
}

TEST(openai_parse, tool_messages_and_assistant_tool_calls) {
  auto r = parse(R"({"messages":[{"role":"user","content":"weather?"},)"
                 R"({"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",)"
                 R"("function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},)"
                 R"({"role":"tool","tool_call_id":"call_1","content":"18C"}]})",
                 endpoint::chat, "r");
  ASSERT_TRUE(r.ok()) << r.err().message;
  const auto& m = *r->gen.messages;
  ASSERT_EQ(m.size(), 3u);
  ASSERT_EQ(m[1].tool_calls.size(), 1u);
  EXPECT_EQ(m[1].tool_calls[0].id, "call_1");
  EXPECT_EQ(m[1].tool_calls[0].function.arguments, R"({"city":"Paris"})");
  EXPECT_EQ(m[2].role, "tool");
  EXPECT_EQ(m[2].tool_call_id, std::optional<std::string>("call_1"));
  expect_rejects(parse(R"({"messages":[{"role":"tool","content":"x"}]})", endpoint::chat, "r"),
                 "messages[0].tool_call_id");
  expect_rejects(parse(R"({"messages":[{"role":"user","content":"x","tool_calls":[{"function":{"name":"f"}}]}]})",
                       endpoint::chat, "r"),
                 "messages[0].tool_calls");
  expect_rejects(parse(R"({"messages":[{"role":"assistant","tool_calls":[{"function":{"arguments":"{}"}}]}]})",
                       endpoint::chat, "r"),
                 "messages[0].tool_calls[0].function.name");
}

// A "type" that is not a string (null, a number, an array) where a tool, a tool_choice or an assistant's tool
// call names its type: a 400 naming the field, never an exception out of the parser (it ended the process).
TEST(openai_parse, a_type_that_is_not_a_string_is_a_400_not_a_crash) {
  for (const char* bad_type : {"null", "5", "[]", "{}", "true"}) {
    SCOPED_TRACE(bad_type);
    const std::string t = bad_type;
    expect_rejects(chat(R"("tools":[{"type":)" + t + R"(,"function":{"name":"f"}}])"), "tools[0].type");
    expect_rejects(chat(std::string(weather_tool) + R"(,"tool_choice":{"type":)" + t + R"(,"function":{"name":"get_weather"}})"),
                   "tool_choice");
    expect_rejects(parse(R"({"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":)" + t +
                             R"(,"function":{"name":"f","arguments":"{}"}}]}]})",
                         endpoint::chat, "r"),
                   "messages[0].tool_calls[0].type");
  }
}

// A prompt as one token-id list inside a batch of one (what SDKs send for token prompts) reads like the list.
TEST(openai_parse, a_batch_of_one_token_prompt_is_the_prompt) {
  auto r = parse(R"({"prompt":[[1,2,3]],"max_tokens":1})", endpoint::completions, "r");
  ASSERT_TRUE(r.ok()) << r.err().message;
  ASSERT_TRUE(r->gen.token_ids);
  EXPECT_EQ(*r->gen.token_ids, (std::vector<msg::token_id>{1, 2, 3}));
  expect_rejects(parse(R"({"prompt":[["a"]],"max_tokens":1})", endpoint::completions, "r"), "prompt[0][0]");
}

// A body above the 4 MiB wire default parses when the HTTP layer let it in (--max-body-bytes): the size
// limit is the server's, not the parser's.
TEST(openai_parse, a_body_over_four_mib_is_not_refused_by_the_parser) {
  std::string prompt(5u << 20, 'a');
  auto r = parse(R"({"prompt":")" + prompt + R"(","max_tokens":1})", endpoint::completions, "r");
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->gen.prompt->size(), prompt.size());
}

TEST(openai_parse, response_format) {
  auto obj = chat(R"("response_format":{"type":"json_object"})");
  ASSERT_TRUE(obj.ok()) << obj.err().message;
  EXPECT_EQ(obj->gen.response_format->v["type"], "json_object");
  auto sch = comp(R"("response_format":{"type":"json_schema","json_schema":{"name":"x","strict":true,)"
                  R"("schema":{"type":"object","properties":{"b":{"type":"integer"},"a":{"type":"string"}},"required":["b","a"]}}})");
  ASSERT_TRUE(sch.ok()) << sch.err().message;
  EXPECT_EQ(sch->gen.response_format->v["json_schema"]["schema"]["properties"].begin().key(), "b");
  EXPECT_FALSE(chat(R"("response_format":{"type":"text"})")->gen.response_format.has_value());
  expect_rejects(chat(R"("response_format":{"type":"yaml"})"), "response_format.type");
  expect_rejects(chat(R"("response_format":{"type":"json_schema"})"), "response_format.json_schema");
  expect_rejects(chat(R"("response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","pattern":"a+"}}})"),
                 "response_format.json_schema.schema");
  expect_rejects(chat(R"("response_format":"json")"), "response_format");
}

TEST(openai_parse, agent_hints_from_body_and_headers) {
  auto r = chat(R"("priority":7,"latency_class":"batch","session_id":"conv-1","expected_output_tokens":120)");
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->gen.priority, 7);
  EXPECT_TRUE(r->priority_given);
  EXPECT_EQ(r->gen.latency, msg::latency_class::batch);
  EXPECT_EQ(r->gen.session_id, std::optional<std::string>("conv-1"));
  EXPECT_EQ(r->gen.expected_output_tokens, 120u);
  // OpenAI's own names: service_tier "flex" is batch-like, prompt_cache_key a session key.
  auto o = chat(R"("service_tier":"flex","prompt_cache_key":"k9")");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->gen.latency, msg::latency_class::batch);
  EXPECT_EQ(o->gen.session_id, std::optional<std::string>("k9"));
  EXPECT_EQ(chat(R"("service_tier":"auto")")->gen.latency, msg::latency_class::interactive);
  // Headers, for clients that cannot add body fields; the body wins.
  request_hint_headers h{"-3", "batch", "hdr-session", "40"};
  auto hr = parse(std::string("{") + chat_msgs + "}", endpoint::chat, "r", h);
  ASSERT_TRUE(hr.ok()) << hr.err().message;
  EXPECT_EQ(hr->gen.priority, -3);
  EXPECT_EQ(hr->gen.latency, msg::latency_class::batch);
  EXPECT_EQ(hr->gen.session_id, std::optional<std::string>("hdr-session"));
  EXPECT_EQ(hr->gen.expected_output_tokens, 40u);
  auto both = parse(std::string("{") + chat_msgs + R"(,"priority":2})", endpoint::chat, "r", h);
  EXPECT_EQ(both->gen.priority, 2);
  EXPECT_FALSE(chat("")->priority_given);
  expect_rejects(chat(R"("priority":5000)"), "priority");
  expect_rejects(chat(R"("priority":"high")"), "priority");
  expect_rejects(chat(R"("latency_class":"realtime")"), "latency_class");
  expect_rejects(parse(std::string("{") + chat_msgs + "}", endpoint::chat, "r", {"x", "", "", ""}), "priority");
  expect_rejects(chat(R"("session_id":7)"), "session_id");
}

TEST(openai_parse, ignorable_and_unknown_fields_pass) {
  auto r = chat(R"("user":"u1","metadata":{"k":"v"},"store":false,"service_tier":"auto","parallel_tool_calls":true,)"
                R"("response_format":{"type":"text"},"modalities":["text"],"some_extension":42)");
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->gen.tenant, "u1");
  auto parts = parse(R"({"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]})",
                     endpoint::chat, "r");
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ((*parts->gen.messages)[0].content, "ab");
  EXPECT_TRUE(chat(R"("max_tokens":null,"tools":null)").ok());  // null = absent
}

