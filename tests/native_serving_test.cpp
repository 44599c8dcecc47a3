// The native engine behind the whole stack: a generated Llama-family model
// served over HTTP through router and worker, streaming real text with usage.
#include <httplib.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "tests/support/cluster_fixture.hpp"

using namespace yard;
using nlohmann::json;
namespace ts = yard::test_support;

TEST(native_serving, streams_generated_text_with_usage_counts) {
  auto dir = ts::tiny_model("native-serving", 3);
  ASSERT_FALSE(dir.empty());
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto node = ts::start_native_node(nats->url(), dir.string());
  ASSERT_NE(node, nullptr);
  httplib::Client cli("127.0.0.1", node->http_port());

  auto models = cli.Get("/v1/models");
  ASSERT_TRUE(models);
  auto model_name = json::parse(models->body)["data"][0]["id"].get<std::string>();
  EXPECT_EQ(model_name, dir.filename().string());

  json body = {{"model", model_name}, {"stream", true}, {"max_tokens", 6}, {"messages", {{{"role", "user"}, {"content", "hello there"}}}},
               {"stream_options", {{"include_usage", true}}}};
  auto res = cli.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto events = ts::sse_data(res->body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  json last;  // the usage chunk (stream_options.include_usage): choices [] and usage
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    auto e = json::parse(events[i]);
    if (e["choices"].empty()) last = e;
  }
  ASSERT_FALSE(last.is_null());
  EXPECT_GT(last["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_GT(last["usage"]["completion_tokens"].get<int>(), 0);
  EXPECT_LE(last["usage"]["completion_tokens"].get<int>(), 6);

  // Greedy decoding is deterministic: two identical non-streamed requests agree.
  json greedy = {{"model", model_name}, {"prompt", std::string(20, ' ') + "the quick brown fox jumps over the lazy dog, again and again and again, "
                                       "until every block of this prompt is full and cached"}, {"max_tokens", 8}, {"temperature", 0}};
  auto a = cli.Post("/v1/completions", greedy.dump(), "application/json");
  auto b = cli.Post("/v1/completions", greedy.dump(), "application/json");
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->status, 200) << a->body;
  EXPECT_EQ(json::parse(a->body)["choices"][0]["text"], json::parse(b->body)["choices"][0]["text"]);
  // The second run hit the prefix cache (the prompt spans several 16-token blocks).
  EXPECT_GT(json::parse(b->body)["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 0);
  node.reset();
  std::filesystem::remove_all(dir);
}
