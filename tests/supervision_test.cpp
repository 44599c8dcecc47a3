// tests/supervision_test.cpp — the process supervision tree: a worker whose engine
// throws mid-stream is restarted by its supervisor and its request still finishes
// token-exact (migration to the new incarnation), its blocks are cleared on the bus and
// the router's index re-learns exactly the new incarnation's blocks; exceeding the restart intensity
// escalates; a killed frontend actor is rebuilt in-process behind the same HTTP port
// (its open request ends with an error, not a hang); the tree answers on its NATS
// subjects (JSON, msgpack, any body);
// escalation past the top exits the process with code 70.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include <caf/send.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "actors/supervisor.hpp"
#include "backends/engine.hpp"
#include "messages/cluster_subjects.hpp"
#include "messages/codec.hpp"
#include "messages/subjects.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
using json = nlohmann::json;
namespace ts = yard::test_support;

namespace {

// Delegates to a real engine and throws from step() on chosen calls: the seam a
// test uses to crash a worker's actor (release code carries no fault here).
class throwing_engine : public backends::engine {
 public:
  throwing_engine(std::unique_ptr<backends::engine> inner, int throw_at_step)
      : inner_(std::move(inner)), throw_at_(throw_at_step) {}
  std::string name() const override { return inner_->name(); }
  result<std::vector<msg::token_id>> tokenize(std::string_view t) const override { return inner_->tokenize(t); }
  std::string detokenize(const std::vector<msg::token_id>& t) const override { return inner_->detokenize(t); }
  result<std::vector<msg::token_id>> apply_chat_template(const std::vector<msg::chat_message>& m,
                                                         const msg::json_value* tools = nullptr) const override {
    return inner_->apply_chat_template(m, tools);
  }
  status add_request(backends::engine_request r) override { return inner_->add_request(std::move(r)); }
  void cancel(const std::string& id) override { inner_->cancel(id); }
  bool has_work() const override { return inner_->has_work(); }
  backends::step_result step() override {
    if (throw_at_ > 0 && ++steps_ == throw_at_) throw std::runtime_error("injected engine fault");
    return inner_->step();
  }
  msg::load_report load() const override { return inner_->load(); }
  std::vector<msg::kv_event> drain_kv_events() override { return inner_->drain_kv_events(); }
  std::vector<msg::kv_event> kv_snapshot() const override { return inner_->kv_snapshot(); }
  std::uint32_t max_context() const override { return inner_->max_context(); }
  std::uint32_t block_size() const override { return inner_->block_size(); }

 private:
  std::unique_ptr<backends::engine> inner_;
  int throw_at_;
  int steps_ = 0;
};

struct escalations {
  std::mutex mu;
  std::vector<std::string> why;
  std::size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return why.size();
  }
};

struct supervision : ::testing::Test {
  std::unique_ptr<transport::nats_server_process> nats;
  std::unique_ptr<cluster::node_runtime> node;
  std::shared_ptr<escalations> esc = std::make_shared<escalations>();
  std::shared_ptr<std::atomic<int>> incarnations = std::make_shared<std::atomic<int>>(0);

  // `crashing`: which incarnations (1-based) throw, and at which step.
  void start(std::function<int(int incarnation)> throw_at, std::uint32_t max_restarts = 5) {
    nats = ts::start_nats();
    ASSERT_NE(nats, nullptr);
    transport::nats_options no;
    no.servers = {nats->url()};
    actors::supervisor_config sc;
    sc.node_id = "sup-node";
    sc.policy.max_restarts = max_restarts;
    sc.policy.window_ms = 60000;  // wide: a slow machine must not spread the crashes past it
    sc.escalate = [e = esc](const std::string& why) {
      std::lock_guard<std::mutex> lock(e->mu);
      e->why.push_back(why);
    };
    auto rt = cluster::node_runtime::create(no, 0, sc);
    ASSERT_TRUE(rt) << rt.err().describe();
    node = std::move(*rt);
    cluster::engine_options eng;
    eng.token_delay_ms = 5;
    actors::worker_config wc;
    wc.id = "cw0";
    wc.heartbeat_ms = 100;
    wc.lease_ms = 1000;
    wc.model = "mock";
    auto make = [eng, throw_at, n = incarnations]() -> result<std::unique_ptr<backends::engine>> {
      auto inner = cluster::make_engine(eng);
      if (!inner) return inner.err();
      return std::unique_ptr<backends::engine>(new throwing_engine(std::move(*inner), throw_at(++*n)));
    };
    ASSERT_TRUE(node->add_worker(cluster::node_runtime::engine_factory(make), wc).ok());
    ASSERT_TRUE(node->add_router({}).ok());
    actors::frontend_config fc;
    fc.ack_timeout_ms = 1000;
    actors::http_options http;
    http.host = "127.0.0.1";
    http.port = 0;
    ASSERT_TRUE(node->add_frontend(fc, http).ok());
    ASSERT_TRUE(ts::eventually([&] { return node->live_workers() == 1; }));
  }

  const msg::actor_node* find(const msg::node_tree& t, const std::string& name) {
    for (const auto& a : t.actors)
      if (a.name == name) return &a;
    return nullptr;
  }
};

TEST_F(supervision, a_worker_whose_engine_throws_is_restarted_and_its_request_finishes_token_exact) {
  start([](int inc) { return inc == 1 ? 4 : 0; });  // the first incarnation dies on its 4th step
  // Every KV batch the worker publishes, in arrival order.
  auto watcher = ts::connect_client(nats->url());
  ASSERT_NE(watcher, nullptr);
  std::mutex mu;
  std::vector<msg::kv_event_batch> batches;
  auto sub = watcher->subscribe(subjects::kv_events("default", "cw0"), [&](transport::nats_message m) {
    if (auto b = msg::decode_auto<msg::kv_event_batch>(m.data, m.content_type)) {
      std::lock_guard<std::mutex> lock(mu);
      batches.push_back(std::move(*b));
    }
  });
  ASSERT_TRUE(sub);
  watcher->flush();
  httplib::Client cli("127.0.0.1", node->http_port());
  cli.set_read_timeout(30, 0);
  // Step 1: a first prompt's blocks, held only by the first incarnation.
  const std::string early(96, 'p'), prompt(96, 'q');
  auto first = cli.Post("/v1/completions", json{{"model", "mock"}, {"prompt", early}, {"max_tokens", 1}}.dump(),
                        "application/json");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  ASSERT_TRUE(ts::eventually([&] { return node->router_stats() && node->router_stats()->indexed_blocks > 0; }))
      << "the router indexes the first incarnation's blocks";
  // Steps 2-4: this request's stream dies mid-way with the engine; it finishes on the next incarnation.
  auto res = cli.Post("/v1/completions", json{{"model", "mock"}, {"prompt", prompt}, {"max_tokens", 10}}.dump(),
                      "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto j = json::parse(res->body);
  EXPECT_EQ(j["choices"][0]["text"], ts::mock_expected_text(prompt, 10));
  EXPECT_EQ(j["usage"]["completion_tokens"], 10);
  EXPECT_EQ(incarnations->load(), 2);
  auto t = node->tree();
  EXPECT_EQ(t.node, "sup-node");
  auto* w = find(t, "worker cw0");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->state, "running");
  EXPECT_EQ(w->restarts, 1u);
  EXPECT_NE(w->last_exit.find("runtime_error"), std::string::npos) << w->last_exit;
  EXPECT_EQ(esc->count(), 0u);
  // The dead engine's blocks were released on the bus: its manager's last batch is a
  // cleared, and the new incarnation's stream opens at batch 0 with a cleared.
  ASSERT_TRUE(ts::eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    bool old_cleared = false, new_stream = false;
    for (const auto& b : batches) {
      bool c = !b.events.empty() && b.events.front().kind == msg::kv_event_kind::cleared;
      if (c && b.seq > 0) old_cleared = true;
      if (c && b.seq == 0) new_stream = true;
    }
    return old_cleared && new_stream;
  })) << "batches seen: " << batches.size();
  // The router re-learned: its index holds exactly what the new incarnation holds (its
  // snapshot), so the first prompt's blocks, gone with the old engine, are not in it.
  std::size_t held = 0;
  ASSERT_TRUE(ts::eventually([&] {
    auto snap = watcher->request(subjects::kv_snapshot("default", "cw0"), "{}", 2000);
    if (!snap) return false;
    auto b = msg::decode_auto<msg::kv_event_batch>(snap->data, snap->content_type);
    if (!b) return false;
    held = b->events.size();
    auto rs = node->router_stats();
    return held > 0 && rs && rs->indexed_blocks == held;
  })) << "worker holds " << held << ", router indexes " << node->router_stats()->indexed_blocks;
  // The restarted worker serves the next request normally.
  auto again = cli.Post("/v1/completions", R"({"model":"mock","prompt":"xyz","max_tokens":4})", "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200) << again->body;
  EXPECT_EQ(json::parse(again->body)["choices"][0]["text"], ts::mock_expected_text("xyz", 4));
}

TEST_F(supervision, exceeding_the_restart_intensity_escalates) {
  start([](int) { return 1; }, /*max_restarts=*/2);  // every incarnation dies on its first step
  httplib::Client cli("127.0.0.1", node->http_port());
  cli.set_read_timeout(30, 0);
  // Each attempt kills an incarnation; the frontend migrates it to the next one.
  for (int i = 0; i < 6 && esc->count() == 0; ++i)
    (void)cli.Post("/v1/completions", R"({"model":"mock","prompt":"boom","max_tokens":4})", "application/json");
  ASSERT_TRUE(ts::eventually([&] { return esc->count() == 1; }, 20000)) << "incarnations: " << incarnations->load();
  EXPECT_EQ(incarnations->load(), 3) << "the first start plus max_restarts restarts";
  {
    std::lock_guard<std::mutex> lock(esc->mu);
    EXPECT_NE(esc->why[0].find("worker cw0"), std::string::npos) << esc->why[0];
    EXPECT_NE(esc->why[0].find("2 restarts in 60000 ms"), std::string::npos) << esc->why[0];
  }
  auto* w = find(node->tree(), "worker cw0");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->state, "failed");
}

TEST_F(supervision, the_tree_answers_on_its_subjects_in_json_and_msgpack) {
  start([](int) { return 0; });
  auto& conn = node->nats();
  // JSON asked, JSON answered; the body is not read (even a malformed one asks for the tree).
  auto r = conn.request(subjects::node_tree("default", "sup-node"), "{not json", 2000, "application/json");
  ASSERT_TRUE(r) << r.err().describe();
  auto j = json::parse(r->data);
  EXPECT_EQ(j["node"], "sup-node");
  EXPECT_GT(j["pid"].get<int>(), 0);
  EXPECT_EQ(j["max_restarts"], 5);
  EXPECT_EQ(j["window_s"], 60);
  std::set<std::string> names;
  for (auto& a : j["actors"]) {
    names.insert(a["name"].get<std::string>());
    EXPECT_EQ(a["state"], "running");
  }
  EXPECT_TRUE(names.count("worker cw0") && names.count("router router-0") && names.count("frontend frontend-0"))
      << j.dump();
  // msgpack on the all-nodes subject.
  auto m = conn.request(subjects::node_tree_all("default"), std::string("\x80", 1), 2000, "application/msgpack");
  ASSERT_TRUE(m) << m.err().describe();
  auto t = msg::decode<msg::node_tree>(m->data, msg::wire_format::msgpack);
  ASSERT_TRUE(t) << t.err().describe();
  EXPECT_EQ(t->node, "sup-node");
  EXPECT_EQ(t->actors.size(), 3u);
}

TEST_F(supervision, a_killed_frontend_actor_is_rebuilt_in_process_and_its_open_request_ends_with_an_error) {
  start([](int) { return 0; });
  httplib::Client cli("127.0.0.1", node->http_port());
  cli.set_read_timeout(30, 0);
  // A long request (400 tokens x 5 ms) is open in the frontend when the actor is killed.
  int open_status = 0;  // 0: no response
  std::string open_body;
  std::thread client([&] {
    httplib::Client c("127.0.0.1", node->http_port());
    c.set_read_timeout(30, 0);
    if (auto r = c.Post("/v1/completions", R"({"model":"mock","prompt":"long","max_tokens":400})", "application/json")) {
      open_status = r->status;
      open_body = r->body;
    }
  });
  ASSERT_TRUE(ts::eventually([&] { return node->metrics() && node->metrics()->requests_total.load() >= 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // its first tokens are flowing
  auto fronts = node->children("frontend");
  ASSERT_EQ(fronts.size(), 1u);
  caf::anon_send_exit(fronts[0], caf::exit_reason::kill);
  client.join();
  // Not a hang until the client's deadline: the dead incarnation ended the stream with an error.
  EXPECT_EQ(open_status, 503) << open_body;
  EXPECT_NE(open_body.find("frontend restarted"), std::string::npos) << open_body;
  // The supervisor rebuilt it in-process: same HTTP port, a new incarnation, no escalation.
  ASSERT_TRUE(ts::eventually([&] {
    auto* f = find(node->tree(), "frontend frontend-0");
    return f && f->restarts == 1 && f->state == "running";
  }));
  auto now = node->children("frontend");
  ASSERT_EQ(now.size(), 1u);
  EXPECT_NE(now[0], fronts[0]);
  EXPECT_EQ(esc->count(), 0u);
  // Requests through the same port reach the new incarnation (once it has seen the worker again).
  std::string text;
  ASSERT_TRUE(ts::eventually([&] {
    auto r = cli.Post("/v1/completions", R"({"model":"mock","prompt":"xyz","max_tokens":4})", "application/json");
    if (!r || r->status != 200) return false;
    text = json::parse(r->body)["choices"][0]["text"];
    return true;
  }, 15000));
  EXPECT_EQ(text, ts::mock_expected_text("xyz", 4));
}

TEST(supervision_escalation, past_the_top_it_exits_the_process_with_code_70) {
  EXPECT_EXIT(actors::exit_process_on_escalation("test"), ::testing::ExitedWithCode(70), "");
}

}  // namespace
