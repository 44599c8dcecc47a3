// End-to-end: real nats-server, real frontend/router/workers, real HTTP.
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "backends/mock/mock_engine.hpp"
#include "messages/cluster.hpp"
#include "messages/cluster_subjects.hpp"
#include "messages/codec.hpp"
#include "messages/subjects.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
using nlohmann::json;
namespace ts = yard::test_support;

namespace {

std::string expected_text(const std::string& prompt, std::size_t n) { return ts::mock_expected_text(prompt, n); }

// Sends a generate_request on the router subject and collects the reply chunks.
std::vector<transport::nats_message> stream_on_subject(transport::nats_connection& conn, const std::string& body,
                                                       const std::string& content_type, int expect_final_ms = 5000) {
  auto inbox = conn.new_inbox();
  std::mutex mu;
  std::vector<transport::nats_message> got;
  std::atomic<bool> done{false};
  auto sub = conn.subscribe(inbox, [&](transport::nats_message m) {
    std::lock_guard<std::mutex> lock(mu);
    auto fmt = msg::detect_format(m.content_type, m.data);
    auto c = msg::decode<msg::token_chunk>(m.data, fmt);
    if (!c || c->finish_reason) done = true;
    got.push_back(std::move(m));
  });
  EXPECT_TRUE(sub.ok());
  conn.flush();
  EXPECT_TRUE(conn.publish(subjects::router_generate("default"), body, inbox, content_type).ok());
  ts::eventually([&] { return done.load(); }, expect_final_ms);
  std::lock_guard<std::mutex> lock(mu);
  return got;
}

class cluster_e2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    nats_ = ts::start_nats().release();
    ASSERT_NE(nats_, nullptr);
    node_ = ts::start_cluster(nats_->url()).release();
    ASSERT_NE(node_, nullptr);
  }
  static void TearDownTestSuite() {
    delete node_;
    delete nats_;
  }
  static transport::nats_server_process* nats_;
  static cluster::node_runtime* node_;
};
transport::nats_server_process* cluster_e2e::nats_ = nullptr;
cluster::node_runtime* cluster_e2e::node_ = nullptr;

TEST_F(cluster_e2e, streams_a_chat_completion_over_http_sse) {
  httplib::Client cli("127.0.0.1", node_->http_port());
  json body = {{"model", "mock"}, {"stream", true}, {"max_tokens", 6}, {"messages", {{{"role", "user"}, {"content", "hi"}}}},
               {"stream_options", {{"include_usage", true}}}};
  auto res = cli.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_NE(res->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  auto events = ts::sse_data(res->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  std::string finish;
  for (std::size_t i = 0; i + 2 < events.size(); ++i) {
    auto e = json::parse(events[i]);
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    if (e["choices"][0]["delta"].contains("content")) text += e["choices"][0]["delta"]["content"].get<std::string>();
    if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"];
  }
  // stream_options.include_usage: the last event before [DONE] carries only the usage.
  auto usage = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 6);
  EXPECT_EQ(finish, "length");
  EXPECT_EQ(text, expected_text("<|user|>\nhi\n<|assistant|>\n", 6));
}

TEST_F(cluster_e2e, non_streamed_completion_returns_one_json_body) {
  httplib::Client cli("127.0.0.1", node_->http_port());
  auto res = cli.Post("/v1/completions", R"({"prompt":"hello","max_tokens":5})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto j = json::parse(res->body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], expected_text("hello", 5));
  EXPECT_EQ(j["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(j["usage"]["completion_tokens"], 5);
}

TEST_F(cluster_e2e, models_health_and_metrics_answer) {
  httplib::Client cli("127.0.0.1", node_->http_port());
  auto models = cli.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "mock");
  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto metrics = cli.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("yard_time_to_first_token_seconds_bucket"), std::string::npos);
  EXPECT_NE(metrics->body.find("yard_requests_in_flight"), std::string::npos);
}

TEST_F(cluster_e2e, json_request_on_the_generate_subject_gets_json_chunks) {
  transport::nats_options no;
  no.servers = {nats_->url()};
  auto conn = transport::nats_connection::connect(no);
  ASSERT_TRUE(conn.ok());
  // No Content-Type header: the leading '{' selects JSON.
  auto got = stream_on_subject(**conn, R"({"request_id":"json-1","prompt":"abc","max_tokens":3})", "");
  ASSERT_EQ(got.size(), 4u);  // the admission ack, then one chunk per token
  std::string text;
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].data.front(), '{') << "reply must be JSON";
    auto j = json::parse(got[i].data);
    EXPECT_EQ(j["seq"], i);
    EXPECT_EQ(j["request_id"], "json-1");
    if (i == 0) EXPECT_FALSE(j.contains("token_ids") && !j["token_ids"].empty());
    text += j["text"].get<std::string>();
  }
  EXPECT_EQ(json::parse(got.back().data)["finish_reason"], "length");
  EXPECT_EQ(text, expected_text("abc", 3));
}

TEST_F(cluster_e2e, msgpack_request_on_the_generate_subject_gets_msgpack_chunks) {
  transport::nats_options no;
  no.servers = {nats_->url()};
  auto conn = transport::nats_connection::connect(no);
  ASSERT_TRUE(conn.ok());
  msg::generate_request r;
  r.request_id = "mp-1";
  r.token_ids = std::vector<msg::token_id>{'x', 'y'};
  r.max_tokens = 4;
  auto got = stream_on_subject(**conn, msg::encode(r), "application/msgpack");
  ASSERT_EQ(got.size(), 5u);  // ack + 4 tokens
  for (std::size_t i = 1; i < got.size(); ++i) {
    auto c = msg::decode<msg::token_chunk>(got[i].data, msg::wire_format::msgpack);
    ASSERT_TRUE(c.ok()) << c.err().message;
    EXPECT_EQ(c->seq, i);
    ASSERT_EQ(c->token_ids.size(), 1u);
    EXPECT_EQ(c->token_ids.front(), backends::mock_engine::expected_token({'x', 'y'}, 0, i - 1));
  }
}

// stream=false: the client reads one response, so the worker sends the first token at
// once and batches the rest (at most 50 ms apart) instead of one message per token.
TEST_F(cluster_e2e, a_whole_response_on_the_generate_subject_comes_in_batched_chunks) {
  transport::nats_options no;
  no.servers = {nats_->url()};
  auto conn = transport::nats_connection::connect(no);
  ASSERT_TRUE(conn.ok());
  auto got = stream_on_subject(**conn, R"({"request_id":"whole-1","prompt":"abc","max_tokens":12,"stream":false})", "");
  ASSERT_GE(got.size(), 3u);
  std::string text;
  std::size_t tokens = 0, widest = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    auto j = json::parse(got[i].data);
    EXPECT_EQ(j["seq"], i);
    auto n = j.contains("token_ids") ? j["token_ids"].size() : 0;
    if (i == 1) EXPECT_EQ(n, 1u) << "the first token goes alone and at once";
    tokens += n;
    widest = std::max(widest, n);
    text += j.value("text", "");
  }
  EXPECT_EQ(tokens, 12u);
  EXPECT_LT(got.size(), 13u) << "12 tokens at 2 ms each fit in a few batches";
  EXPECT_GT(widest, 1u);
  auto last = json::parse(got.back().data);
  EXPECT_EQ(last["finish_reason"], "length");
  EXPECT_EQ(last["usage"]["completion_tokens"], 12);
  EXPECT_EQ(text, expected_text("abc", 12));
}

TEST_F(cluster_e2e, frontend_publishes_latency_windows_for_the_planner) {
  transport::nats_options no;
  no.servers = {nats_->url()};
  auto conn = transport::nats_connection::connect(no);
  ASSERT_TRUE(conn.ok());
  std::mutex mu;
  std::uint32_t arrivals = 0;
  std::size_t ttfts = 0;
  auto sub = (*conn)->subscribe(subjects::latency_metrics("default"), [&](transport::nats_message m) {
    auto r = msg::decode_auto<msg::latency_report>(m.data, m.content_type);
    if (!r) return;
    std::lock_guard<std::mutex> lock(mu);
    arrivals += r->arrivals;
    ttfts += r->ttft_ms.size();
  });
  (*conn)->flush();
  httplib::Client cli("127.0.0.1", node_->http_port());
  auto res = cli.Post("/v1/completions", R"({"prompt":"latency","max_tokens":3})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_TRUE(ts::eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return arrivals >= 1 && ttfts >= 1;
  }, 5000));
}

TEST(cluster_processes, router_and_worker_run_as_separate_processes) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  ts::yard_process worker({"worker", "--nats", nats->url(), "--id", "pw0", "--token-delay-ms", "1", "--heartbeat-ms", "100"});
  ts::yard_process router({"router", "--nats", nats->url()});
  auto node = ts::start_cluster(nats->url(), {.workers = 0, .with_router = false, .with_frontend = false});
  ASSERT_NE(node, nullptr);
  actors::http_options http;
  http.host = "127.0.0.1";
  http.port = 0;
  ASSERT_TRUE(node->add_frontend({}, http).ok());
  ASSERT_TRUE(ts::eventually([&] { return node->live_workers() == 1; }));
  httplib::Client cli("127.0.0.1", node->http_port());
  std::shared_ptr<httplib::Response> res;
  // The router process may subscribe a moment after the worker registers.
  ts::eventually([&] {
    auto r = cli.Post("/v1/completions", R"({"prompt":"hello","max_tokens":4})", "application/json");
    if (r && r->status == 200) res = std::make_shared<httplib::Response>(*r);
    return res != nullptr;
  });
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(json::parse(res->body)["choices"][0]["text"], expected_text("hello", 4));
  // SIGTERM drains the worker process, which exits 0.
  worker.signal(SIGTERM);
  EXPECT_EQ(worker.wait_exit(10000), 0);
  router.signal(SIGTERM);
  EXPECT_EQ(router.wait_exit(10000), 0);
}

}  // namespace
