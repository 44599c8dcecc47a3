// tests/bus_trust_test.cpp — trust on the bus, end to end: a permissioned
// nats-server (per-role users, as `yard up` runs it), forgeries by a client-role
// connection refused by NATS, impersonation by a worker-role connection refused
// by the heartbeat checks, a router SIGKILLed and restarted under 20 concurrent
// streams losing no request, and the router's tables empty after traffic.
#include <httplib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "cluster/bus_permissions.hpp"
#include "messages/codec.hpp"
#include "messages/router.hpp"
#include "messages/subjects.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
using nlohmann::json;
namespace ts = yard::test_support;

namespace {

const std::string kNs = "default";

// A nats-server that knows only these users, each with its role's permissions.
struct secure_bus {
  std::unique_ptr<transport::nats_server_process> server;
  std::map<std::string, std::string> passwords;

  static secure_bus start() {
    secure_bus b;
    std::vector<cluster::bus_user> users = {
        {"frontend", "", cluster::bus_role::frontend, ""}, {"router", "", cluster::bus_role::router, ""},
        {"w0", "", cluster::bus_role::worker, "w0"},       {"w1", "", cluster::bus_role::worker, "w1"},
        {"client", "", cluster::bus_role::client, ""},     {"rogue", "", cluster::bus_role::worker, ""}};
    for (auto& u : users) {
      u.password = *cluster::random_password();
      b.passwords[u.name] = u.password;
    }
    transport::nats_server_options so;
    so.config_extra = cluster::render_authorization(users, kNs);
    auto s = transport::nats_server_process::start(so);
    if (!s) ADD_FAILURE() << s.err().describe();
    else b.server = std::move(*s);
    return b;
  }
  transport::nats_options as(const std::string& user) const {
    transport::nats_options o;
    o.servers = {server->url()};
    o.reconnect_wait_ms = 100;
    o.name = "test-" + user;
    o.user = user;
    o.password = passwords.at(user);
    o.inbox_prefix = cluster::inbox_prefix_for(user);
    return o;
  }
};

std::unique_ptr<cluster::node_runtime> start_secure_cluster(const secure_bus& bus) {
  auto rt = cluster::node_runtime::create(bus.as("frontend"));
  if (!rt) {
    ADD_FAILURE() << rt.err().describe();
    return nullptr;
  }
  auto& node = **rt;
  node.set_identity("router", bus.as("router"));
  cluster::engine_options eng;
  eng.token_delay_ms = 5.0;
  for (const char* id : {"w0", "w1"}) {
    node.set_identity(id, bus.as(id));
    actors::worker_config wc;
    wc.id = id;
    wc.heartbeat_ms = 100;
    wc.lease_ms = 1000;
    EXPECT_TRUE(node.add_worker(eng, wc).ok());
  }
  EXPECT_TRUE(node.add_router({}).ok());
  actors::http_options http;
  http.host = "127.0.0.1";
  http.port = 0;
  EXPECT_TRUE(node.add_frontend({}, http).ok());
  EXPECT_TRUE(ts::eventually([&] { return node.live_workers() == 2; }));
  return std::move(*rt);
}

// A streamed completion over HTTP; returns the text, or "" on any failure.
std::string stream_completion(int port, const std::string& prompt, int max_tokens) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(30, 0);
  json body = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"stream", true}};
  auto res = cli.Post("/v1/completions", body.dump(), "application/json");
  if (!res || res->status != 200) return "";
  std::string text;
  for (const auto& d : ts::sse_data(res->body)) {
    if (d == "[DONE]") return text;
    auto j = json::parse(d, nullptr, false);
    if (j.is_discarded() || j.contains("error")) return "";
    if (j.contains("choices") && !j["choices"].empty()) text += j["choices"][0].value("text", "");
  }
  return "";  // no [DONE]: cut short
}

// Runs `n` concurrent streamed completions while `during` runs; returns how many came back exact.
int concurrent_streams(int port, int n, int max_tokens, const std::function<void()>& during) {
  std::atomic<int> exact{0};
  std::vector<std::thread> ts_;
  for (int i = 0; i < n; ++i)
    ts_.emplace_back([&, i] {
      std::string prompt = "stream-" + std::to_string(i);
      if (stream_completion(port, prompt, max_tokens) == ts::mock_expected_text(prompt, max_tokens)) exact++;
    });
  during();
  for (auto& t : ts_) t.join();
  return exact.load();
}

class bus_trust : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bus_ = new secure_bus(secure_bus::start());
    ASSERT_NE(bus_->server, nullptr);
    node_ = start_secure_cluster(*bus_).release();
    ASSERT_NE(node_, nullptr);
  }
  static void TearDownTestSuite() {
    delete node_;
    delete bus_;
  }
  static secure_bus* bus_;
  static cluster::node_runtime* node_;
};
secure_bus* bus_trust::bus_ = nullptr;
cluster::node_runtime* bus_trust::node_ = nullptr;

TEST_F(bus_trust, an_anonymous_connection_is_refused) {
  transport::nats_options o;
  o.servers = {bus_->server->url()};
  o.connect_timeout_ms = 1000;
  EXPECT_FALSE(transport::nats_connection::connect(o).ok());
  auto wrong = bus_->as("client");
  wrong.password = "not-the-password";
  EXPECT_FALSE(transport::nats_connection::connect(wrong).ok());
}

TEST_F(bus_trust, client_role_forgeries_are_refused_by_nats_and_service_continues) {
  auto c = transport::nats_connection::connect(bus_->as("client"));
  ASSERT_TRUE(c.ok()) << c.err().describe();
  auto& client = **c;
  std::uint64_t refused = 0;
  auto expect_refused = [&](const char* what, const std::function<void()>& attempt) {
    attempt();
    client.flush();
    EXPECT_TRUE(ts::eventually([&] { return client.permission_violations() > refused; }, 3000)) << what;
    refused = client.permission_violations();
  };
  std::atomic<int> stolen{0};
  transport::subscription spy;
  expect_refused("read every prompt", [&] {
    spy = std::move(*client.subscribe(subjects::router_generate(kNs), [&](transport::nats_message) { stolen++; }));
  });
  transport::subscription spy2;
  expect_refused("read another user's inbox", [&] {
    spy2 = std::move(*client.subscribe("_INBOX_frontend.>", [&](transport::nats_message) { stolen++; }));
  });
  msg::token_chunk forged;
  forged.request_id = "x";
  forged.text = "forged";
  expect_refused("write into another inbox",
                 [&] { client.publish("_INBOX_frontend.abc.0", msg::encode(forged)); });
  msg::heartbeat hb;
  hb.instance_id = "w0";
  hb.component = msg::component_kind::worker;
  hb.generate_subject = subjects::worker_generate(kNs, "w0");
  hb.incarnation = 42;
  hb.draining = true;
  hb.lease_ms = 1;
  expect_refused("forge a heartbeat", [&] { client.publish(subjects::heartbeat(kNs, "w0"), msg::encode(hb)); });
  expect_refused("invent a worker", [&] {
    auto ghost = hb;
    ghost.instance_id = "ghost";
    ghost.generate_subject = subjects::worker_generate(kNs, "ghost");
    client.publish(subjects::heartbeat(kNs, "ghost"), msg::encode(ghost));
  });
  expect_refused("cancel anyone", [&] {
    client.publish(subjects::worker_cancel(kNs), msg::encode(msg::cancel_request{"anything", "forged", std::nullopt}));
  });
  expect_refused("read a worker's block set",
                 [&] { client.publish(subjects::kv_snapshot(kNs, "w0"), "{}", client.new_inbox(), "application/json"); });
  expect_refused("grow the router's tables", [&] {
    msg::route_notice note;
    note.router_id = "forger";
    note.request_id = "n";
    note.worker_id = "w0";
    note.model = "mock";
    client.publish(subjects::router_inflight(kNs), msg::encode(note));
  });
  expect_refused("forge KV events", [&] { client.publish(subjects::kv_events(kNs, "w0"), "{}"); });
  // Service continues: both workers live, HTTP streams exact, and the client's own
  // generate request (no request_id: the router names one) answers on its inbox.
  EXPECT_EQ(node_->live_workers(), 2u);
  EXPECT_EQ(stream_completion(node_->http_port(), "after", 6), ts::mock_expected_text("after", 6));
  auto inbox = client.new_inbox();
  std::mutex mu;
  std::vector<msg::token_chunk> got;
  auto sub = client.subscribe(inbox, [&](transport::nats_message m) {
    auto ch = msg::decode_auto<msg::token_chunk>(m.data, m.content_type);
    std::lock_guard<std::mutex> lock(mu);
    if (ch) got.push_back(*ch);
  });
  ASSERT_TRUE(sub.ok());
  client.flush();
  ASSERT_TRUE(client.publish(subjects::router_generate(kNs), R"({"prompt":"mine","max_tokens":3})", inbox).ok());
  ASSERT_TRUE(ts::eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !got.empty() && got.back().finish_reason.has_value();
  }));
  std::lock_guard<std::mutex> lock(mu);
  std::string text;
  for (const auto& ch : got) {
    EXPECT_FALSE(ch.request_id.empty()) << "the reply names the id the request was given";
    EXPECT_EQ(ch.request_id, got.front().request_id);
    text += ch.text;
  }
  EXPECT_EQ(text, ts::mock_expected_text("mine", 3));
  EXPECT_EQ(stolen.load(), 0);
}

TEST_F(bus_trust, a_worker_role_connection_cannot_impersonate_or_black_hole) {
  auto c = transport::nats_connection::connect(bus_->as("rogue"));
  ASSERT_TRUE(c.ok()) << c.err().describe();
  auto& rogue = **c;
  auto before = node_->router_stats();
  ASSERT_TRUE(before.has_value());
  auto forge = [&](const std::string& subject_id, msg::heartbeat hb) {
    rogue.publish(subjects::heartbeat(kNs, subject_id), msg::encode(hb));
  };
  msg::heartbeat clone;
  clone.instance_id = "w0";
  clone.component = msg::component_kind::worker;
  clone.role = msg::worker_role::both;
  clone.model = "mock";
  clone.block_size = 16;
  clone.generate_subject = subjects::worker_generate(kNs, "w0");
  clone.lease_ms = 1;
  clone.draining = true;
  clone.incarnation = 777;  // a "restart" while the real w0 beats on
  int exact = concurrent_streams(node_->http_port(), 20, 40, [&] {
    for (int round = 0; round < 8; ++round) {
      forge("w0", clone);                       // take w0 away (new incarnation + draining + 1 ms lease)
      forge("rogue", clone);                    // speak for w0 on another subject
      auto hijack = clone;
      hijack.instance_id = "evil";
      hijack.incarnation = 1;
      hijack.draining = false;
      hijack.generate_subject = rogue.new_inbox();  // route work to the forger
      forge("evil", hijack);
      auto ghost = hijack;
      ghost.instance_id = "ghost";  // a well-formed worker nobody serves: a black hole
      ghost.generate_subject = subjects::worker_generate(kNs, "ghost");
      ghost.lease_ms = 0xffffffffu;
      forge("ghost", ghost);
      rogue.flush();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  EXPECT_EQ(exact, 20) << "every in-flight stream completes exactly";
  EXPECT_EQ(node_->live_workers(), 2u) << "the ghost never answered, so it does not count for /health";
  httplib::Client cli("127.0.0.1", node_->http_port());
  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  // New work never goes to the ghost or the forger.
  EXPECT_EQ(concurrent_streams(node_->http_port(), 20, 4, [] {}), 20);
  auto after = node_->router_stats();
  ASSERT_TRUE(after.has_value());
  EXPECT_GE(after->refused_heartbeats, before->refused_heartbeats + 3 * 8);
}

TEST_F(bus_trust, router_tables_are_empty_after_traffic_ends) {
  EXPECT_EQ(concurrent_streams(node_->http_port(), 16, 3, [] {}), 16);
  // Workers report load every 100 ms; a report covers everything dispatched before it.
  EXPECT_TRUE(ts::eventually([&] {
    auto s = node_->router_stats();
    return s && s->tracked_requests == 0 && s->held_requests == 0;
  }));
}

// A non-streamed completion's usage.prompt_tokens_details.cached_tokens (-1 on any failure).
int cached_tokens_of(int port, const std::string& prompt) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(30, 0);
  json body = {{"prompt", prompt}, {"max_tokens", 2}};
  auto res = cli.Post("/v1/completions", body.dump(), "application/json");
  if (!res || res->status != 200) return -1;
  auto j = json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.contains("usage")) return -1;
  return j["usage"].value("prompt_tokens_details", json::object()).value("cached_tokens", 0);
}

// What a worker-role connection can still publish (heartbeats, KV events) must not switch off KV-aware routing
// or grow the router: a batch claiming a newer KV stream than its worker announces is ignored; a worker that
// never answers its status probe, or one that changes its model every heartbeat, gets no routing pool (a core
// each, were they taken); and no unanswered model is advertised.
TEST_F(bus_trust, a_worker_role_connection_cannot_switch_off_kv_routing_or_grow_the_router) {
  auto c = transport::nats_connection::connect(bus_->as("rogue"));
  ASSERT_TRUE(c.ok()) << c.err().describe();
  auto& rogue = **c;
  for (const char* id : {"w0", "w1"}) {
    msg::kv_event_batch b;
    b.worker_id = id;
    b.seq = 999;
    b.stream = ~0ull;  // "newer" than any real stream: taken, every real batch would look stale
    rogue.publish(subjects::kv_events(kNs, id), msg::encode(b));
  }
  auto beat = [&](const std::string& id, const std::string& model) {
    msg::heartbeat hb;
    hb.instance_id = id;
    hb.component = msg::component_kind::worker;
    hb.model = model;
    hb.generate_subject = subjects::worker_generate(kNs, id);
    hb.incarnation = 42;
    rogue.publish(subjects::heartbeat(kNs, id), msg::encode(hb));
  };
  for (int i = 0; i < 30; ++i) beat("cycler", "cyc-" + std::to_string(i));
  for (int i = 0; i < 40; ++i) beat("crowd-" + std::to_string(i), "crowd-model-" + std::to_string(i));
  rogue.flush();
  ASSERT_TRUE(ts::eventually([&] {
    auto s = node_->router_stats();
    return s && s->foreign_kv_batches >= 2 && s->workers >= 43;
  })) << "the forgeries reached the router";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // probes went out and met no answer
  auto s = node_->router_stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->pools, 1u) << "only the real workers' model has a routing pool";
  httplib::Client cli("127.0.0.1", node_->http_port());
  auto models = cli.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->body.find("cyc-"), std::string::npos) << models->body;
  EXPECT_EQ(models->body.find("crowd-model"), std::string::npos) << models->body;
  // KV-aware routing still works: each prompt's repeat goes where its blocks are.
  for (int k = 0; k < 6; ++k) {
    const std::string prompt = "kv-after-forgery-" + std::to_string(k) + "-" + std::string(300, static_cast<char>('a' + k));
    ASSERT_GE(cached_tokens_of(node_->http_port(), prompt), 0);
    EXPECT_GE(cached_tokens_of(node_->http_port(), prompt), 256) << "repeat " << k << " missed its cached prefix";
  }
}

// The router runs as its own process here so it can be SIGKILLed.
TEST(router_restart, a_killed_router_costs_latency_not_errors) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  ts::cluster_options o;
  o.with_router = false;
  o.with_frontend = false;
  auto node = ts::start_cluster(nats->url(), o);
  ASSERT_NE(node, nullptr);
  actors::http_options http;
  http.host = "127.0.0.1";
  http.port = 0;
  ASSERT_TRUE(node->add_frontend({}, http).ok());
  ASSERT_TRUE(ts::eventually([&] { return node->live_workers() == 2; }));
  auto router = std::make_unique<ts::yard_process>(std::vector<std::string>{"router", "--nats", nats->url(), "--log-level", "warn"});
  int port = node->http_port();
  ASSERT_TRUE(ts::eventually([&] { return stream_completion(port, "warm", 2) == ts::mock_expected_text("warm", 2); }, 15000));
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 20; ++i)
    clients.emplace_back([&, i] {
      for (int k = 0; !stop; ++k) {
        std::string prompt = "c" + std::to_string(i) + "-" + std::to_string(k);
        if (stream_completion(port, prompt, 20) == ts::mock_expected_text(prompt, 20)) ok++;
        else failed++;
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  router->signal(SIGKILL);
  router->wait_exit(5000);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // no router at all for a while
  router = std::make_unique<ts::yard_process>(std::vector<std::string>{"router", "--nats", nats->url(), "--log-level", "warn"});
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(ok.load(), 40);
}

}  // namespace
