// The native engine behind the whole stack: a generated Llama-family model
// served over HTTP through router and worker, streaming real text with usage.
#include <httplib.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "backends/native/mkmodel.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
using nlohmann::json;
namespace ts = yard::test_support;

TEST(native_serving, streams_generated_text_with_usage_counts) {
  auto dir = std::filesystem::temp_directory_path() / ("yard-native-serving-" + std::to_string(getpid()));
  backends::native::mkmodel_options mo;
  mo.preset = "tiny";
  mo.out = dir.string();
  mo.seed = 3;
  ASSERT_TRUE(backends::native::write_random_model(mo).ok());
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto node = ts::start_cluster(nats->url(), {.workers = 0, .with_router = false, .with_frontend = false});
  ASSERT_NE(node, nullptr);
  cluster::engine_options eng;
  eng.engine = "native";
  eng.model = dir.string();
  actors::worker_config wc;
  wc.id = "native-0";
  wc.heartbeat_ms = 100;
  ASSERT_TRUE(node->add_worker(eng, wc).ok());
  actors::router_config rc;
  auto tok = cluster::make_prompt_tokenizer(eng);  // tokenizer.json only: the router loads no weights
  ASSERT_TRUE(tok.ok()) << tok.err().describe();
  rc.tokenizer = std::move(*tok);
  ASSERT_TRUE(node->add_router(rc).ok());
  actors::http_options http;
  http.host = "127.0.0.1";
  http.port = 0;
  ASSERT_TRUE(node->add_frontend({}, http).ok());
  ASSERT_TRUE(ts::eventually([&] { return node->live_workers() == 1; }));
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
