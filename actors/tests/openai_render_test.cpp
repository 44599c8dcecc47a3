// actors/tests/openai_render_test.cpp — the response shapes: SSE chunks and whole responses for tool calls,
// logprobs (per endpoint), echo and text_offset, the include_usage chunk, null logprobs; error bodies' param.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "actors/openai_api.hpp"

using namespace yard;
using namespace yard::actors::openai;
using nlohmann::json;

namespace {

std::vector<json> events(const std::string& sse) {
  std::vector<json> out;
  std::size_t pos = 0;
  while ((pos = sse.find("data: ", pos)) != std::string::npos) {
    auto end = sse.find("\n\n", pos);
    out.push_back(json::parse(sse.substr(pos + 6, end - pos - 6)));
    pos = end + 2;
  }
  return out;
}

msg::token_chunk chunk(const std::string& text, std::optional<std::string> finish = std::nullopt) {
  msg::token_chunk c;
  c.text = text;
  for (char ch : text) {
    msg::token_logprob t;
    t.token = static_cast<unsigned char>(ch);
    t.text = std::string(1, ch);
    t.logprob = -0.5f;
    t.top = {{t.token, t.text, -0.5f}, {'q', "q", -2.0f}};
    c.token_ids.push_back(t.token);
    c.token_logprobs.push_back(t);
  }
  if (finish) {
    msg::finish_kind k{};
    EXPECT_TRUE(msg::wire_enum_from(*finish, k)) << *finish;
    c.finish_reason = k;
    c.usage_info = msg::usage{5, 3, 2};
  }
  return c;
}

}  // namespace

TEST(openai_render, tool_calls_streamed_and_whole) {
  msg::token_chunk c1;
  c1.tool_calls = {{0, std::string("call_abc"), std::string("get_weather"), ""}};
  msg::token_chunk c2;
  c2.tool_calls = {{0, std::nullopt, std::nullopt, R"({"city":)"}};
  msg::token_chunk c3;
  c3.tool_calls = {{0, std::nullopt, std::nullopt, R"("Paris"})"}};
  c3.finish_reason = msg::finish_kind::tool_calls;
  c3.usage_info = msg::usage{5, 3, 0};
  response_renderer s(endpoint::chat, "id", "m", 1, {});
  auto e1 = events(s.sse(c1));
  ASSERT_EQ(e1.size(), 1u);
  auto d1 = e1[0]["choices"][0]["delta"];
  EXPECT_EQ(d1["role"], "assistant");
  EXPECT_EQ(d1["tool_calls"][0]["index"], 0);
  EXPECT_EQ(d1["tool_calls"][0]["id"], "call_abc");
  EXPECT_EQ(d1["tool_calls"][0]["type"], "function");
  EXPECT_EQ(d1["tool_calls"][0]["function"]["name"], "get_weather");
  auto d2 = events(s.sse(c2))[0]["choices"][0]["delta"];
  EXPECT_FALSE(d2["tool_calls"][0].contains("id"));
  EXPECT_EQ(d2["tool_calls"][0]["function"]["arguments"], R"({"city":)");
  auto e3 = events(s.sse(c3));
  EXPECT_EQ(e3[0]["choices"][0]["finish_reason"], "tool_calls");
  response_renderer w(endpoint::chat, "id", "m", 1, {});
  for (auto* c : {&c1, &c2, &c3}) w.add(*c);
  auto full = json::parse(w.full_response());
  auto msg = full["choices"][0]["message"];
  EXPECT_TRUE(msg["content"].is_null());
  EXPECT_EQ(msg["tool_calls"][0]["id"], "call_abc");
  EXPECT_EQ(msg["tool_calls"][0]["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_EQ(full["choices"][0]["finish_reason"], "tool_calls");
}

TEST(openai_render, chat_stream_with_logprobs_and_usage_chunk) {
  render_options o;
  o.include_usage = true;
  o.logprobs = true;
  o.top_logprobs = 2;
  response_renderer r(endpoint::chat, "id1", "mock", 1, o);
  auto a = events(r.sse(chunk("ab")));
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(a[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(a[0]["choices"][0]["delta"]["content"], "ab");
  EXPECT_TRUE(a[0]["usage"].is_null());
  auto content = a[0]["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 2u);
  EXPECT_EQ(content[0]["token"], "a");
  EXPECT_FLOAT_EQ(content[0]["logprob"].get<float>(), -0.5f);
  EXPECT_EQ(content[0]["bytes"], json::array({97}));
  ASSERT_EQ(content[0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(content[0]["top_logprobs"][1]["token"], "q");
  auto b = events(r.sse(chunk("c", "length")));
  ASSERT_EQ(b.size(), 2u);
  EXPECT_FALSE(b[0]["choices"][0]["delta"].contains("role"));
  EXPECT_EQ(b[0]["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(b[1]["choices"].empty());
  EXPECT_EQ(b[1]["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(b[1]["usage"]["completion_tokens"], 3);
  EXPECT_EQ(b[1]["usage"]["total_tokens"], 8);
  EXPECT_EQ(b[1]["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
}

TEST(openai_render, no_usage_anywhere_in_a_stream_unless_asked) {
  response_renderer r(endpoint::chat, "id1", "mock", 1, {});
  auto a = events(r.sse(chunk("ab", "stop")));
  ASSERT_EQ(a.size(), 1u);
  EXPECT_FALSE(a[0].contains("usage"));
  EXPECT_TRUE(a[0]["choices"][0]["logprobs"].is_null());
}

TEST(openai_render, completions_logprobs_echo_and_text_offset) {
  render_options o;
  o.logprobs = true;
  o.top_logprobs = 1;
  o.echo = std::string("hi ");
  response_renderer r(endpoint::completions, "id2", "mock", 1, o);
  r.add(chunk("ab"));
  r.add(chunk("c", "length"));
  auto j = json::parse(r.full_response());
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "hi abc");
  auto lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], json::array({"a", "b", "c"}));
  EXPECT_EQ(lp["text_offset"], json::array({3, 4, 5}));
  ASSERT_EQ(lp["token_logprobs"].size(), 3u);
  ASSERT_EQ(lp["top_logprobs"].size(), 3u);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 1u);
  EXPECT_TRUE(lp["top_logprobs"][0].contains("a"));
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 2);

  response_renderer s(endpoint::completions, "id3", "mock", 1, o);
  auto ev = events(s.sse(chunk("ab")));
  EXPECT_EQ(ev[0]["choices"][0]["text"], "hi ab");
  EXPECT_EQ(ev[0]["choices"][0]["logprobs"]["text_offset"], json::array({3, 4}));
}

TEST(openai_render, chat_full_response_without_logprobs_has_null) {
  response_renderer r(endpoint::chat, "id4", "mock", 1, {});
  r.add(chunk("xy", "stop"));
  auto j = json::parse(r.full_response());
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "xy");
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
}

TEST(openai_errors, param_comes_from_the_named_field) {
  auto j = json::parse(error_body(errc::bad_request, "field 'max_tokens' (5000) plus the prompt exceeds the context"));
  EXPECT_EQ(j["error"]["param"], "max_tokens");
  EXPECT_TRUE(json::parse(error_body(errc::bad_request, "request body is not valid JSON"))["error"]["param"].is_null());
  EXPECT_TRUE(json::parse(error_body(errc::unavailable, "field 'x'"))["error"]["param"].is_null());
}
