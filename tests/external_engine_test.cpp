// `--engine openai`: a Switchyard worker in front of an OpenAI-compatible
// engine server. The servers these tests start are Switchyard frontends
// (an in-process node, or a `yard up` process that can be killed): one
// serving the native engine on a generated tiny Llama model (token-exact
// checks), one serving the mock engine slowly (cancel and death mid-stream).
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "backends/external/upstream_load.hpp"
#include "backends/tests/engine_kv_events_util.hpp"
#include "backends/tests/fake_kv_publisher.hpp"
#include "kv/block_hash.hpp"
#include "messages/codec.hpp"
#include "messages/subjects.hpp"
#include "tests/support/cluster_fixture.hpp"
#include "transport/nats_server_process.hpp"

using namespace yard;
using nlohmann::json;
namespace ts = yard::test_support;
namespace kvt = yard::backends::external::testing;

namespace {

json post(int port, const std::string& path, const json& body, int* status = nullptr) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(std::chrono::seconds(60));
  auto res = cli.Post(path.c_str(), body.dump(), "application/json");
  if (!res) return json();
  if (status) *status = res->status;
  return json::parse(res->body, nullptr, false);
}

// Sum of one metric over every series on a /metrics page (-1 when unreachable).
double metric(int port, const std::string& name) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(std::chrono::seconds(1));
  auto res = cli.Get("/metrics");
  if (!res || res->status != 200) return -1;
  auto m = backends::external::parse_prometheus_text(res->body);
  auto it = m.sum.find(name);
  return it == m.sum.end() ? 0.0 : it->second;
}

// One worker's draining gauge on a frontend's /metrics page.
bool draining(int port, const std::string& worker) {
  httplib::Client cli("127.0.0.1", port);
  auto res = cli.Get("/metrics");
  if (!res) return false;
  auto p = res->body.find("yard_worker_draining{worker=\"" + worker + "\"");
  if (p == std::string::npos) return false;
  auto line = res->body.substr(p, res->body.find('\n', p) - p);
  return line.size() >= 2 && line.compare(line.size() - 2, 2, " 1") == 0;
}

cluster::engine_options upstream_engine(const std::string& tokenizer, int port) {
  cluster::engine_options eng;
  eng.engine = "openai";
  eng.model = tokenizer;
  eng.upstream.url = "http://127.0.0.1:" + std::to_string(port);
  eng.upstream.poll_ms = 100;
  return eng;
}

// An outer node: external workers (one per upstream port), a router and a frontend.
std::unique_ptr<cluster::node_runtime> outer_node(const std::string& nats_url, const std::string& tokenizer,
                                                   const std::vector<int>& upstream_ports) {
  auto node = ts::start_cluster(nats_url, {.workers = 0, .with_router = false, .with_frontend = false});
  if (!node) return nullptr;
  for (std::size_t i = 0; i < upstream_ports.size(); ++i) {
    actors::worker_config wc;
    wc.id = "ext-" + std::to_string(i);
    wc.heartbeat_ms = 100;
    wc.lease_ms = 1500;
    auto w = node->add_worker(upstream_engine(tokenizer, upstream_ports[i]), wc);
    EXPECT_TRUE(w.ok()) << w.err().describe();
  }
  actors::router_config rc;
  auto tok = cluster::make_prompt_tokenizer(upstream_engine(tokenizer, upstream_ports[0]));
  EXPECT_TRUE(tok.ok());
  rc.tokenizer = std::move(*tok);
  EXPECT_TRUE(node->add_router(rc).ok());
  actors::frontend_config fc;
  fc.stream_timeout_ms = 20000;
  EXPECT_TRUE(node->add_frontend(fc, ts::loopback_http()).ok());
  EXPECT_TRUE(ts::eventually([&] { return node->live_workers() == upstream_ports.size(); }));
  return node;
}

}  // namespace

TEST(external_engine, a_native_upstream_serves_token_exact_through_an_external_worker_and_resumes_exactly) {
  auto dir = ts::tiny_model("external", 5);
  ASSERT_FALSE(dir.empty());
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  // The upstream: a Switchyard frontend serving the native engine.
  auto up = ts::start_native_node(nats->url(), dir.string());
  ASSERT_NE(up, nullptr);
  const int up_port = up->http_port();

  auto outer_nats = ts::start_nats();
  ASSERT_NE(outer_nats, nullptr);
  auto outer = outer_node(outer_nats->url(), dir.string(), {up_port});
  ASSERT_NE(outer, nullptr);
  const std::string model = dir.filename().string();

  const std::string prompt = "the quick brown fox jumps over the lazy dog and keeps running far away";
  json body = {{"model", model}, {"prompt", prompt}, {"max_tokens", 12}, {"temperature", 0}, {"return_token_ids", true}};
  int st = 0;
  auto direct = post(up_port, "/v1/completions", body, &st);
  ASSERT_EQ(st, 200) << direct.dump();
  auto via = post(outer->http_port(), "/v1/completions", body, &st);
  ASSERT_EQ(st, 200) << via.dump();
  EXPECT_EQ(via["choices"][0]["text"], direct["choices"][0]["text"]);
  auto ids = direct["choices"][0]["token_ids"].get<std::vector<msg::token_id>>();
  ASSERT_EQ(ids.size(), 12u);
  EXPECT_EQ(via["choices"][0]["token_ids"].get<std::vector<msg::token_id>>(), ids);
  EXPECT_EQ(via["usage"]["prompt_tokens"], direct["usage"]["prompt_tokens"]);
  EXPECT_EQ(via["usage"]["completion_tokens"], 12);

  // Structured output is the server's to enforce: the schema goes up and its constrained value comes back, the
  // same as asking the server directly (unconstrained, this random model's text is not JSON).
  json schema = {{"type", "object"},
                 {"properties", {{"ok", {{"type", "boolean"}}}}},
                 {"required", {"ok"}},
                 {"additionalProperties", false}};
  json structured = body;
  structured["max_tokens"] = 24;
  structured["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "flag"}, {"schema", schema}}}};
  auto direct_json = post(up_port, "/v1/completions", structured, &st);
  ASSERT_EQ(st, 200) << direct_json.dump();
  auto via_json = post(outer->http_port(), "/v1/completions", structured, &st);
  ASSERT_EQ(st, 200) << via_json.dump();
  EXPECT_EQ(via_json["choices"][0]["text"], direct_json["choices"][0]["text"]);
  EXPECT_NE(via_json["choices"][0]["text"], via["choices"][0]["text"]);
  if (via_json["choices"][0]["finish_reason"] == "stop") {
    auto value = json::parse(via_json["choices"][0]["text"].get<std::string>(), nullptr, false);
    ASSERT_TRUE(value.is_object()) << via_json.dump();
    EXPECT_TRUE(value["ok"].is_boolean());
  }

  // Chat, streamed: the outer worker renders the template, the upstream gets ids.
  json chat = {{"model", model}, {"stream", true}, {"max_tokens", 5}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  httplib::Client cli("127.0.0.1", outer->http_port());
  auto res = cli.Post("/v1/chat/completions", chat.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto events = ts::sse_data(res->body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");

  // A migrated request: the first 5 tokens were delivered elsewhere; this engine goes on from them, token-exact.
  auto eng = cluster::make_engine(upstream_engine(dir.string(), up_port));
  ASSERT_TRUE(eng.ok()) << eng.err().describe();
  auto& e = **eng;
  EXPECT_EQ(e.name(), "openai:" + model);
  backends::engine_request er;
  er.request_id = "resume-1";
  er.prompt = *e.tokenize(prompt);
  er.resume_tokens.assign(ids.begin(), ids.begin() + 5);
  er.max_tokens = 12;
  ASSERT_TRUE(e.add_request(er).ok());
  std::vector<msg::token_id> rest;
  std::optional<msg::usage> usage;
  ASSERT_TRUE(ts::eventually([&] {
    for (auto& o : e.step().outputs) {
      rest.insert(rest.end(), o.new_tokens.begin(), o.new_tokens.end());
      if (o.finish_reason) usage = o.usage_info;
    }
    return usage.has_value();
  }, 30000));
  EXPECT_EQ(rest, std::vector<msg::token_id>(ids.begin() + 5, ids.end()));
  EXPECT_EQ(usage->completion_tokens, 12u);
  EXPECT_EQ(usage->prompt_tokens, er.prompt.size());

  // A bad request is the client's error, passed through (the upstream's 400), not a migration.
  json too_long = {{"model", model}, {"prompt", prompt}, {"max_tokens", 1000000}};
  auto bad = post(outer->http_port(), "/v1/completions", too_long, &st);
  EXPECT_EQ(st, 400) << bad.dump();
  outer.reset();
  up.reset();
  std::filesystem::remove_all(dir);
}

TEST(external_engine, cancel_closes_the_upstream_request) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto up = ts::start_cluster(nats->url(), {.workers = 1, .token_delay_ms = 20});  // a slow mock behind a frontend
  ASSERT_NE(up, nullptr);
  auto eng = cluster::make_engine(upstream_engine("mock", up->http_port()));
  ASSERT_TRUE(eng.ok()) << eng.err().describe();
  auto& e = **eng;
  EXPECT_EQ(e.name(), "openai:mock");  // learnt from the server's /v1/models
  backends::engine_request er;
  er.request_id = "c1";
  er.prompt = *e.tokenize("hello upstream");
  er.max_tokens = 2000;
  ASSERT_TRUE(e.add_request(er).ok());
  std::string text;
  ASSERT_TRUE(ts::eventually([&] {
    for (auto& o : e.step().outputs) text += o.text_delta;
    return text.size() >= 3;
  }));
  EXPECT_EQ(text, ts::mock_expected_text("hello upstream", text.size()));
  EXPECT_TRUE(ts::eventually([&] { return metric(up->http_port(), "yard_worker_active_requests") >= 1; }));
  e.cancel("c1");
  std::optional<msg::finish_kind> finish;
  ASSERT_TRUE(ts::eventually([&] {
    for (auto& o : e.step().outputs)
      if (o.finish_reason) finish = o.finish_reason;
    return finish.has_value();
  }));
  EXPECT_EQ(*finish, msg::finish_kind::cancelled);
  EXPECT_FALSE(e.has_work());
  // The server saw its client go and stopped generating.
  EXPECT_TRUE(ts::eventually([&] { return metric(up->http_port(), "yard_worker_active_requests") == 0; }));
}

TEST(external_engine, a_dead_upstream_drains_its_worker_and_the_stream_resumes_on_another) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  const int port_a = transport::free_loopback_port(), port_b = transport::free_loopback_port();
  auto yard_up = [&](const std::string& ns, int port) {
    return std::make_unique<ts::yard_process>(std::vector<std::string>{
        "up", "--nats", nats->url(), "--namespace", ns, "--engine", "mock", "--token-delay-ms", "25", "--workers", "1",
        "--http-host", "127.0.0.1", "--http-port", std::to_string(port), "--metrics-port", "0", "--log-level", "warn"});
  };
  auto serving = [&](int port) {
    int st = 0;
    post(port, "/v1/completions", {{"model", "mock"}, {"prompt", "ping"}, {"max_tokens", 1}}, &st);
    return st == 200;
  };
  auto a = yard_up("up-a", port_a);
  auto b = yard_up("up-b", port_b);
  ASSERT_TRUE(ts::eventually([&] { return serving(port_a) && serving(port_b); }, 30000));

  auto outer_nats = ts::start_nats();
  ASSERT_NE(outer_nats, nullptr);
  auto outer = outer_node(outer_nats->url(), "mock", {port_a, port_b});
  ASSERT_NE(outer, nullptr);

  // A long stream; once a few tokens are out, the server serving it is killed.
  std::atomic<int> chunks{0};
  std::string body;
  std::thread client([&] {
    httplib::Client cli("127.0.0.1", outer->http_port());
    cli.set_read_timeout(std::chrono::seconds(60));
    json req = {{"model", "mock"}, {"prompt", "a long story, please"}, {"max_tokens", 200}, {"stream", true},
                {"stream_options", {{"include_usage", true}}}};
    httplib::Request r;
    r.method = "POST";
    r.path = "/v1/completions";
    r.body = req.dump();
    r.set_header("Content-Type", "application/json");
    r.content_receiver = [&](const char* d, std::size_t n, std::uint64_t, std::uint64_t) {
      body.append(d, n);
      chunks = static_cast<int>(ts::sse_data(body).size());
      return true;
    };
    httplib::Response res;
    httplib::Error err;
    cli.send(r, res, err);
  });
  struct joiner {
    std::thread& t;
    ~joiner() {
      if (t.joinable()) t.join();
    }
  } join_client{client};
  ASSERT_TRUE(ts::eventually([&] { return chunks >= 5; }, 20000));
  // The servers' gauges come from their workers' heartbeats (every 500 ms in `yard up`).
  bool on_a = false, on_b = false;
  ASSERT_TRUE(ts::eventually([&] {
    on_a = metric(port_a, "yard_worker_active_requests") >= 1;
    on_b = metric(port_b, "yard_worker_active_requests") >= 1;
    return on_a != on_b;
  })) << "exactly one upstream should be serving the stream";
  auto& victim = on_a ? a : b;
  const std::string victim_worker = on_a ? "ext-0" : "ext-1";
  const int victim_port = on_a ? port_a : port_b;
  victim->signal(SIGKILL);
  victim->wait_exit(5000);
  client.join();

  // The client saw one uninterrupted stream: every token of its budget (200), one finish, usage, [DONE].
  auto events = ts::sse_data(body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  std::string finish;
  json usage;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    auto ev = json::parse(events[i]);
    ASSERT_FALSE(ev.contains("error")) << events[i];
    if (!ev["choices"].empty() && ev["choices"][0]["finish_reason"].is_string())
      finish = ev["choices"][0]["finish_reason"].get<std::string>();
    if (ev.contains("usage") && ev["usage"].is_object()) usage = ev["usage"];
  }
  EXPECT_EQ(finish, "length");
  ASSERT_TRUE(usage.is_object()) << body;
  EXPECT_EQ(usage["completion_tokens"], 200);
  EXPECT_GE(metric(outer->http_port(), "yard_migrations_total"), 1);

  // The dead server's worker drains; new requests go to the live one.
  EXPECT_TRUE(ts::eventually([&] { return draining(outer->http_port(), victim_worker); }));
  int st = 0;
  auto again = post(outer->http_port(), "/v1/completions", {{"model", "mock"}, {"prompt", "after"}, {"max_tokens", 4}}, &st);
  EXPECT_EQ(st, 200) << again.dump();

  // The server comes back on its port: the worker serves again.
  victim = yard_up(victim_port == port_a ? "up-a" : "up-b", victim_port);
  ASSERT_TRUE(ts::eventually([&] { return serving(victim_port); }, 30000));
  EXPECT_TRUE(ts::eventually([&] { return !draining(outer->http_port(), victim_worker); }));
}

TEST(external_engine, the_servers_kv_events_reach_the_bus_as_switchyard_hashes) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto up = ts::start_cluster(nats->url(), {.workers = 1});
  ASSERT_NE(up, nullptr);
  test_support::fake_engine vllm(/*with_replay=*/true);  // a vLLM-shaped ZeroMQ KV-event publisher

  auto outer_nats = ts::start_nats();
  ASSERT_NE(outer_nats, nullptr);
  auto bus = ts::connect_client(outer_nats->url());
  ASSERT_NE(bus, nullptr);
  std::mutex mu;
  std::vector<msg::kv_event> seen;
  auto sub = bus->subscribe(subjects::kv_events("default", "ext-kv"), [&](transport::nats_message m) {
    auto b = msg::decode_auto<msg::kv_event_batch>(m.data, m.content_type);
    if (!b) return;
    std::lock_guard lk(mu);
    seen.insert(seen.end(), b->events.begin(), b->events.end());
  });
  ASSERT_TRUE(sub.ok());
  auto outer = ts::start_cluster(outer_nats->url(), {.workers = 0, .with_router = false, .with_frontend = false});
  ASSERT_NE(outer, nullptr);
  auto eng = upstream_engine("mock", up->http_port());
  eng.upstream.kv_events_endpoint = vllm.endpoint;
  eng.upstream.kv_events_replay_endpoint = vllm.replay_endpoint;
  actors::worker_config wc;
  wc.id = "ext-kv";
  wc.heartbeat_ms = 100;
  ASSERT_TRUE(outer->add_worker(eng, wc).ok());
  ASSERT_TRUE(vllm.wait_subscribed());

  // Two full blocks stored under the engine's own hashes, one of them lost on the PUB socket (recovered by replay).
  auto toks = kvt::token_run(1, 32);
  vllm.publish(kvt::batch({kvt::stored({9001}, std::nullopt, {toks.begin(), toks.begin() + 16})}), /*lost=*/false);
  vllm.publish(kvt::batch({kvt::stored({9002}, 9001, {toks.begin() + 16, toks.end()})}), /*lost=*/true);
  vllm.publish(kvt::batch({kvt::removed({9002})}));
  const auto want = kv::hash_blocks(toks, 16);
  std::vector<std::uint64_t> stored, removed;
  ASSERT_TRUE(ts::eventually([&] {
    std::lock_guard lk(mu);
    stored.clear();
    removed.clear();
    for (const auto& e : seen) {
      if (e.kind == msg::kv_event_kind::stored) stored.insert(stored.end(), e.block_hashes.begin(), e.block_hashes.end());
      if (e.kind == msg::kv_event_kind::removed) removed.insert(removed.end(), e.block_hashes.begin(), e.block_hashes.end());
    }
    return stored.size() >= 2 && !removed.empty();
  }));
  EXPECT_EQ(stored, want);  // the engine's hashes 9001, 9002 never reach the router: ours do
  EXPECT_EQ(removed, std::vector<std::uint64_t>{want[1]});
}
