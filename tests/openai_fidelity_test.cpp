// OpenAI fidelity over real HTTP (real nats-server, router, mock worker):
// every supported request field changes the response as OpenAI's would, and
// every unsupported one is a 400 naming it.
#include <httplib.h>

#include <map>

#include <nlohmann/json.hpp>

#include "messages/codec.hpp"
#include "messages/router.hpp"
#include "messages/subjects.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
using nlohmann::json;
namespace ts = yard::test_support;

namespace {

constexpr std::uint32_t kContext = 96;  // the mock worker's context (tokens)
const std::string kChatPrompt = "<|user|>\nhi\n<|assistant|>\n";  // what the mock's template makes of "hi"

class openai_fidelity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    nats_ = ts::start_nats().release();
    ASSERT_NE(nats_, nullptr);
    node_ = ts::start_cluster(nats_->url(), {.workers = 1, .token_delay_ms = 1.0, .max_context = kContext}).release();
    ASSERT_NE(node_, nullptr);
  }
  static void TearDownTestSuite() {
    delete node_;
    delete nats_;
  }

  static httplib::Result post(const std::string& path, const json& body) {
    httplib::Client cli("127.0.0.1", node_->http_port());
    cli.set_read_timeout(30, 0);
    return cli.Post(path, body.dump(), "application/json");
  }
  static json chat_body(json extra = json::object()) {
    json b = {{"model", "mock"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    b.update(extra);
    return b;
  }
  static json comp_body(json extra = json::object()) {
    json b = {{"model", "mock"}, {"prompt", "hello"}};
    b.update(extra);
    return b;
  }
  // A 200 JSON body.
  static json ok_json(const std::string& path, const json& body) {
    auto r = post(path, body);
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body, nullptr, false);
  }
  // The SSE events of a 200 stream, [DONE] checked and dropped.
  static std::vector<json> stream(const std::string& path, json body) {
    body["stream"] = true;
    auto r = post(path, body);
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, 200) << r->body;
    auto data = ts::sse_data(r->body);
    EXPECT_FALSE(data.empty());
    if (data.empty()) return {};
    EXPECT_EQ(data.back(), "[DONE]");
    std::vector<json> out;
    for (std::size_t i = 0; i + 1 < data.size(); ++i) out.push_back(json::parse(data[i]));
    return out;
  }
  // A 400 whose OpenAI error names `param`.
  static void expect_400(const std::string& path, const json& body, const std::string& param) {
    auto r = post(path, body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << body.dump() << " -> " << r->body;
    auto j = json::parse(r->body, nullptr, false);
    EXPECT_EQ(j["error"]["param"], param) << r->body;
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  }
  static std::string text_of(const json& j) {
    const auto& c = j["choices"][0];
    return c.contains("message") ? c["message"]["content"].get<std::string>() : c["text"].get<std::string>();
  }

  static transport::nats_server_process* nats_;
  static cluster::node_runtime* node_;
};
transport::nats_server_process* openai_fidelity::nats_ = nullptr;
cluster::node_runtime* openai_fidelity::node_ = nullptr;

}  // namespace

TEST_F(openai_fidelity, chat_without_max_tokens_runs_to_the_end_of_the_context) {
  auto j = ok_json("/v1/chat/completions", chat_body());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["prompt_tokens"], kChatPrompt.size());
  EXPECT_EQ(j["usage"]["completion_tokens"], kContext - kChatPrompt.size());  // not 16
  EXPECT_EQ(j["usage"]["total_tokens"], kContext);
  EXPECT_EQ(text_of(j), ts::mock_expected_text(kChatPrompt, kContext - kChatPrompt.size()));
  EXPECT_TRUE(j["usage"]["prompt_tokens_details"].contains("cached_tokens"));
}

TEST_F(openai_fidelity, max_tokens_over_the_context_is_a_400_naming_it) {
  expect_400("/v1/completions", comp_body({{"max_tokens", kContext}}), "max_tokens");
  auto fits = ok_json("/v1/completions", comp_body({{"max_tokens", kContext - 5}}));
  EXPECT_EQ(fits["usage"]["completion_tokens"], kContext - 5);
}

TEST_F(openai_fidelity, max_completion_tokens_bounds_the_output) {
  auto j = ok_json("/v1/chat/completions", chat_body({{"max_completion_tokens", 3}}));
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(text_of(j), ts::mock_expected_text(kChatPrompt, 3));
}

TEST_F(openai_fidelity, chat_logprobs_and_top_logprobs_streamed_and_not) {
  auto j = ok_json("/v1/chat/completions", chat_body({{"max_tokens", 4}, {"logprobs", true}, {"top_logprobs", 3}}));
  const auto& content = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 4u);
  std::string joined;
  for (const auto& t : content) {
    joined += t["token"].get<std::string>();
    EXPECT_LT(t["logprob"].get<double>(), 0.0);
    ASSERT_EQ(t["bytes"].size(), 1u);
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    EXPECT_EQ(t["top_logprobs"][0]["token"], t["token"]);  // the mock is greedy
    EXPECT_TRUE(t["top_logprobs"][1].contains("bytes"));
  }
  EXPECT_EQ(joined, text_of(j));

  auto evs = stream("/v1/chat/completions", chat_body({{"max_tokens", 4}, {"logprobs", true}}));
  std::size_t tokens = 0;
  for (const auto& e : evs) {
    const auto& lp = e["choices"][0]["logprobs"];
    if (lp.is_null()) continue;
    for (const auto& t : lp["content"]) {
      ++tokens;
      EXPECT_TRUE(t["top_logprobs"].empty());
    }
  }
  EXPECT_EQ(tokens, 4u);
  // Without logprobs the field is null.
  EXPECT_TRUE(ok_json("/v1/chat/completions", chat_body({{"max_tokens", 2}}))["choices"][0]["logprobs"].is_null());
}

TEST_F(openai_fidelity, completions_logprobs_streamed_and_not) {
  auto j = ok_json("/v1/completions", comp_body({{"max_tokens", 5}, {"logprobs", 2}}));
  const auto& lp = j["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 5u);
  ASSERT_EQ(lp["token_logprobs"].size(), 5u);
  ASSERT_EQ(lp["top_logprobs"].size(), 5u);
  EXPECT_EQ(lp["text_offset"], json::array({0, 1, 2, 3, 4}));
  for (const auto& top : lp["top_logprobs"]) EXPECT_EQ(top.size(), 2u);

  auto evs = stream("/v1/completions", comp_body({{"max_tokens", 5}, {"logprobs", 0}}));
  json offsets = json::array();
  for (const auto& e : evs) {
    const auto& l = e["choices"][0]["logprobs"];
    if (l.is_null()) continue;
    for (const auto& o : l["text_offset"]) offsets.push_back(o);
    for (const auto& top : l["top_logprobs"]) EXPECT_EQ(top.size(), 1u);  // logprobs 0: the sampled token
  }
  EXPECT_EQ(offsets, json::array({0, 1, 2, 3, 4}));
}

TEST_F(openai_fidelity, include_usage_adds_a_final_usage_chunk_only_when_asked) {
  auto with = stream("/v1/chat/completions",
                     chat_body({{"max_tokens", 3}, {"stream_options", {{"include_usage", true}}}}));
  ASSERT_GE(with.size(), 2u);
  const auto& last = with.back();
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"]["completion_tokens"], 3);
  EXPECT_EQ(last["usage"]["prompt_tokens"], kChatPrompt.size());
  EXPECT_TRUE(last["usage"]["prompt_tokens_details"].contains("cached_tokens"));
  for (std::size_t i = 0; i + 1 < with.size(); ++i) EXPECT_TRUE(with[i]["usage"].is_null());

  auto without = stream("/v1/completions", comp_body({{"max_tokens", 3}}));
  for (const auto& e : without) {
    EXPECT_FALSE(e.contains("usage"));
    EXPECT_FALSE(e["choices"].empty());
  }
  expect_400("/v1/chat/completions", chat_body({{"stream_options", {{"include_usage", true}}}}), "stream_options");
}

TEST_F(openai_fidelity, penalties_change_the_output) {
  const std::string base = text_of(ok_json("/v1/completions", comp_body({{"max_tokens", 48}})));
  EXPECT_EQ(base, ts::mock_expected_text("hello", 48));
  for (const auto& [field, value] : std::map<std::string, double>{
           {"presence_penalty", 2.0}, {"frequency_penalty", 2.0}, {"repetition_penalty", 2.0}}) {
    auto t = text_of(ok_json("/v1/completions", comp_body({{"max_tokens", 48}, {field, value}})));
    EXPECT_EQ(t.size(), 48u) << field;
    EXPECT_NE(t, base) << field;
  }
  expect_400("/v1/completions", comp_body({{"presence_penalty", 2.1}}), "presence_penalty");
  expect_400("/v1/completions", comp_body({{"frequency_penalty", -2.1}}), "frequency_penalty");
  expect_400("/v1/completions", comp_body({{"repetition_penalty", 0}}), "repetition_penalty");
}

TEST_F(openai_fidelity, logit_bias_forces_and_bans) {
  EXPECT_EQ(text_of(ok_json("/v1/chat/completions", chat_body({{"max_tokens", 5}, {"logit_bias", {{"122", 100}}}}))),
            "zzzzz");
  const char first = ts::mock_expected_text(kChatPrompt, 1)[0];
  auto banned = text_of(ok_json("/v1/chat/completions",
                                chat_body({{"max_tokens", 8}, {"logit_bias", {{std::to_string(int(first)), -100}}}})));
  EXPECT_EQ(banned.size(), 8u);
  EXPECT_EQ(banned.find(first), std::string::npos);
  expect_400("/v1/chat/completions", chat_body({{"logit_bias", {{"122", 101}}}}), "logit_bias");
  expect_400("/v1/chat/completions", chat_body({{"logit_bias", {{"abc", 1}}}}), "logit_bias");
}

TEST_F(openai_fidelity, seed_selects_the_stream) {
  auto a = text_of(ok_json("/v1/completions", comp_body({{"max_tokens", 12}, {"seed", 1}})));
  auto b = text_of(ok_json("/v1/completions", comp_body({{"max_tokens", 12}, {"seed", 1}})));
  auto c = text_of(ok_json("/v1/completions", comp_body({{"max_tokens", 12}, {"seed", 2}})));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  expect_400("/v1/completions", comp_body({{"seed", "x"}}), "seed");
}

TEST_F(openai_fidelity, stop_strings_and_stop_token_ids) {
  const std::string full = ts::mock_expected_text("hello", 40);
  const std::string stop = full.substr(10, 2);
  auto j = ok_json("/v1/completions", comp_body({{"max_tokens", 40}, {"stop", stop}}));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_LT(j["usage"]["completion_tokens"].get<int>(), 40);
  auto arr = ok_json("/v1/completions", comp_body({{"max_tokens", 40}, {"stop", {"#never#", stop}}}));
  EXPECT_EQ(arr["choices"][0]["finish_reason"], "stop");
  const int first = static_cast<unsigned char>(full[0]);
  auto ids = ok_json("/v1/completions", comp_body({{"max_tokens", 40}, {"stop_token_ids", {first}}}));
  EXPECT_EQ(ids["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(ids["usage"]["completion_tokens"], 1);
  expect_400("/v1/completions", comp_body({{"stop", {"a", "b", "c", "d", "e"}}}), "stop");
}

TEST_F(openai_fidelity, min_tokens_suppresses_early_stops) {
  const std::string full = ts::mock_expected_text("hello", 1);
  const int first = static_cast<unsigned char>(full[0]);
  auto j = ok_json("/v1/completions",
                   comp_body({{"max_tokens", 10}, {"stop_token_ids", {first}}, {"min_tokens", 4}}));
  EXPECT_GE(j["usage"]["completion_tokens"].get<int>(), 5);
  auto t = text_of(j);
  ASSERT_GE(t.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NE(static_cast<unsigned char>(t[i]), first) << i;
  expect_400("/v1/completions", comp_body({{"max_tokens", 3}, {"min_tokens", 4}}), "min_tokens");
}

TEST_F(openai_fidelity, echo_prepends_the_prompt) {
  auto j = ok_json("/v1/completions", comp_body({{"max_tokens", 4}, {"echo", true}}));
  EXPECT_EQ(text_of(j), "hello" + ts::mock_expected_text("hello", 4));
  auto evs = stream("/v1/completions", comp_body({{"max_tokens", 4}, {"echo", true}}));
  std::string streamed;
  for (const auto& e : evs) streamed += e["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(streamed, "hello" + ts::mock_expected_text("hello", 4));
  expect_400("/v1/completions", json{{"prompt", {104, 105}}, {"echo", true}}, "echo");
}

TEST_F(openai_fidelity, n_choices_whole_and_streamed) {
  auto j = ok_json("/v1/chat/completions", chat_body({{"max_tokens", 2}, {"n", 1}}));
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  // Completions, whole: n choices indexed 0..n-1; the prompt counts once, completions add up.
  auto c = ok_json("/v1/completions", comp_body({{"max_tokens", 3}, {"n", 3}}));
  ASSERT_EQ(c["choices"].size(), 3u) << c.dump();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c["choices"][i]["index"], i);
    EXPECT_EQ(c["choices"][i]["text"], ts::mock_expected_text("hello", 3));  // the mock is deterministic
    EXPECT_EQ(c["choices"][i]["finish_reason"], "length");
  }
  EXPECT_EQ(c["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(c["usage"]["completion_tokens"], 9);
  EXPECT_EQ(c["usage"]["total_tokens"], 14);
  // Chat, streamed with usage: each choice streams under its index and finishes; one usage chunk, last.
  auto evs = stream("/v1/chat/completions",
                    chat_body({{"max_tokens", 2}, {"n", 2}, {"stream_options", {{"include_usage", true}}}}));
  ASSERT_FALSE(evs.empty());
  std::map<int, std::string> text;
  std::map<int, int> finished, roles;
  for (std::size_t i = 0; i + 1 < evs.size(); ++i) {
    ASSERT_EQ(evs[i]["choices"].size(), 1u) << evs[i].dump();
    EXPECT_TRUE(evs[i]["usage"].is_null());
    const auto& ch = evs[i]["choices"][0];
    int idx = ch["index"];
    if (ch["delta"].contains("role")) roles[idx]++;
    if (ch["delta"].contains("content")) text[idx] += ch["delta"]["content"].get<std::string>();
    if (!ch["finish_reason"].is_null()) finished[idx]++;
  }
  EXPECT_EQ(text.size(), 2u);
  EXPECT_EQ(text[0], text[1]);
  EXPECT_EQ(finished, (std::map<int, int>{{0, 1}, {1, 1}}));
  EXPECT_EQ(roles, (std::map<int, int>{{0, 1}, {1, 1}}));
  EXPECT_TRUE(evs.back()["choices"].empty());
  EXPECT_EQ(evs.back()["usage"]["completion_tokens"], 4);
  // A bad n is a 400 naming it; best_of > 1 stays unsupported.
  expect_400("/v1/chat/completions", chat_body({{"n", 0}}), "n");
  expect_400("/v1/completions", comp_body({{"n", 129}}), "n");
  expect_400("/v1/completions", comp_body({{"best_of", 2}}), "best_of");
}

// The other choices go out once choice 0 has produced: the router has its prompt
// blocks by then and expects them cached (route notices on the bus say so).
TEST_F(openai_fidelity, n_choices_share_the_prompts_kv_blocks) {
  transport::nats_options no;
  no.servers = {nats_->url()};
  auto conn = transport::nats_connection::connect(no);
  ASSERT_TRUE(conn);
  std::mutex mu;
  std::map<std::string, std::uint32_t> cached;  // request id -> the router's expected cached tokens
  auto sub = (*conn)->subscribe(subjects::router_inflight("default"), [&](transport::nats_message m) {
    auto n = msg::decode_auto<msg::route_notice>(m.data, m.content_type);
    if (!n) return;
    std::lock_guard<std::mutex> lock(mu);
    cached[n->request_id.substr(0, n->request_id.find('#'))] = n->cached_tokens;
  });
  ASSERT_TRUE(sub);
  (*conn)->flush();
  // KV events and the other choices' requests reach the router on different subjects (NATS
  // delivers each subscription on its own thread): under load the events may come a moment
  // late. A fresh prompt per try, a few tries; one must show the sharing.
  std::string id;
  for (char k : {'k', 'l', 'm'}) {
    std::string prompt(64, k);  // 4 full blocks of 16
    auto c = ok_json("/v1/completions", json{{"prompt", prompt}, {"max_tokens", 2}, {"n", 3}});
    ASSERT_EQ(c["choices"].size(), 3u);
    id = c["id"];
    ASSERT_TRUE(ts::eventually([&] {
      std::lock_guard<std::mutex> lock(mu);
      return cached.count(id) && cached.count(id + "-c1") && cached.count(id + "-c2");
    }));
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(cached[id], 0u);
    if (cached[id + "-c1"] >= 48u && cached[id + "-c2"] >= 48u) break;
  }
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_GE(cached[id + "-c1"], 48u) << "choice 1 should find choice 0's prompt blocks";
  EXPECT_GE(cached[id + "-c2"], 48u);
}

TEST_F(openai_fidelity, unsupported_fields_are_400s_naming_them) {
  const std::string c = "/v1/chat/completions";
  expect_400(c, chat_body({{"tools", {{{"type", "function"}, {"function", {{"name", "bad name"}}}}}}}), "tools[0].function.name");
  expect_400(c, chat_body({{"tool_choice", "auto"}}), "tool_choice");  // no tools
  expect_400(c, chat_body({{"response_format", {{"type", "json_schema"}}}}), "response_format.json_schema");
  expect_400(c, chat_body({{"functions", json::array()}}), "functions");
  json image = {{"model", "mock"},
                {"messages", {{{"role", "user"},
                               {"content", {{{"type", "text"}, {"text", "what is this"}},
                                            {{"type", "image_url"}, {"image_url", {{"url", "http://x/y.png"}}}}}}}}}};
  expect_400(c, image, "messages[0].content[1]");
  json audio = {{"model", "mock"},
                {"messages", {{{"role", "user"}, {"content", {{{"type", "input_audio"}, {"input_audio", json::object()}}}}}}}};
  expect_400(c, audio, "messages[0].content[0]");
  expect_400(c, chat_body({{"audio", {{"voice", "alloy"}}}}), "audio");
  expect_400("/v1/completions", comp_body({{"suffix", "tail"}}), "suffix");
  // Ignorable OpenAI fields and unknown extensions pass.
  auto ok = ok_json(c, chat_body({{"max_tokens", 2}, {"user", "u"}, {"metadata", {{"k", "v"}}}, {"store", false},
                                  {"service_tier", "auto"}, {"response_format", {{"type", "text"}}},
                                  {"x_unknown_extension", 1}}));
  EXPECT_EQ(ok["usage"]["completion_tokens"], 2);
}
