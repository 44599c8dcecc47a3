// KV-aware routing over real NATS with 4 mock worker processes: the router
// follows the workers' KV events (prefix hits, evictions, dead workers).
#include <atomic>
#include <mutex>
#include <set>

#include "backends/mock/mock_engine.hpp"
#include "backends/tokenizer_fingerprint.hpp"
#include "cluster/process_options.hpp"
#include "kv/block_hash.hpp"
#include "messages/codec.hpp"
#include "messages/router.hpp"
#include "messages/subjects.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
namespace ts = yard::test_support;

namespace {

std::vector<std::string> worker_args(const std::string& url, const std::string& id) {
  return {"worker", "--nats", url, "--id", id, "--heartbeat-ms", "100", "--lease-ms", "800", "--token-delay-ms", "1",
          "--num-blocks", "64", "--block-size", "16", "--log-level", "warn"};
}

std::string long_prompt(char fill, int n = 512) { return std::string(static_cast<std::size_t>(n), fill); }

class kv_routing : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(start_workers("kw", 4));
    ASSERT_NO_FATAL_FAILURE(start_router(4));
    connect_client();
    subscribe_notices();
    client_->flush();
  }

  // A nats-server and n worker processes PREFIX0..PREFIX<n-1>.
  void start_workers(const std::string& prefix, int n) {
    nats_ = ts::start_nats();
    ASSERT_NE(nats_, nullptr);
    for (int i = 0; i < n; ++i)
      workers_.push_back(std::make_unique<ts::yard_process>(worker_args(nats_->url(), prefix + std::to_string(i))));
  }

  // A node with a ttft router (and the frontend's view of the workers); waits until all n workers are live.
  void start_router(std::size_t n) {
    node_ = ts::start_cluster(nats_->url(), {.workers = 0, .with_router = false});
    ASSERT_NE(node_, nullptr);
    actors::router_config rc;
    rc.policy = "ttft";
    ASSERT_TRUE(node_->add_router(rc).ok());
    ASSERT_TRUE(ts::eventually([&] { return node_->live_workers() == n; }, 15000));
  }

  void connect_client() {
    transport::nats_options no;
    no.servers = {nats_->url()};
    client_ = std::move(*transport::nats_connection::connect(no));
  }

  // Records every router's route notice (where each request went, what it expected cached).
  void subscribe_notices() {
    notices_ = std::move(*client_->subscribe(subjects::router_inflight("default"), [this](transport::nats_message m) {
      auto n = msg::decode_auto<msg::route_notice>(m.data, m.content_type);
      if (!n) return;
      std::lock_guard<std::mutex> lock(mu_);
      last_[n->request_id.substr(0, n->request_id.find('#'))] = *n;
    }));
  }

  // Sends a request through the router, waits for its last chunk, returns the router's notice.
  msg::route_notice route(const std::string& prompt) {
    msg::generate_request r;
    r.request_id = "kv-" + std::to_string(n_++);
    r.prompt = prompt;
    r.max_tokens = 2;
    run(subjects::router_generate("default"), r);  // may time out on a dead worker: the notice still says where it went
    msg::route_notice n;
    ts::eventually([&] {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = last_.find(r.request_id);
      if (it == last_.end()) return false;
      n = it->second;
      return true;
    });
    return n;
  }

  // Sends straight to a subject (a worker, bypassing the router) and waits for
  // the end; false when it did not finish in time (a dead worker).
  // With `completed_only`, only a last chunk that finished by length counts (not an error or NATS's
  // "no responders" status before the worker has subscribed).
  bool run(const std::string& subject, const msg::generate_request& r, int timeout_ms = 3000,
           bool completed_only = false) {
    auto inbox = client_->new_inbox();
    std::atomic<bool> done{false};
    auto sub = client_->subscribe(inbox, [&](transport::nats_message m) {
      auto c = msg::decode_auto<msg::token_chunk>(m.data, m.content_type);
      if (completed_only ? (c && c->finish_reason == msg::finish_kind::length) : (!c || c->finish_reason)) done = true;
    });
    client_->flush();
    client_->publish(subject, msg::encode(r), inbox);
    return ts::eventually([&] { return done.load(); }, timeout_ms);
  }

  std::unique_ptr<transport::nats_server_process> nats_;
  std::vector<std::unique_ptr<ts::yard_process>> workers_;
  std::unique_ptr<cluster::node_runtime> node_;
  std::unique_ptr<transport::nats_connection> client_;
  transport::subscription notices_;
  std::mutex mu_;
  std::map<std::string, msg::route_notice> last_;
  int n_ = 0;
};

TEST_F(kv_routing, repeated_prompt_lands_on_the_worker_that_cached_it) {
  auto p = long_prompt('a');
  std::set<std::string> holders;  // every worker that ran p (and so cached it)
  auto first = route(p);
  ASSERT_FALSE(first.worker_id.empty());
  EXPECT_EQ(first.cached_tokens, 0u);
  holders.insert(first.worker_id);
  // Once its KV events reach the router, repeats go to a worker holding p, as full hits.
  ASSERT_TRUE(ts::eventually([&] {
    auto n = route(p);
    holders.insert(n.worker_id);
    return n.cached_tokens == 512;
  }, 5000));
  for (int i = 0; i < 5; ++i) {
    auto again = route(p);
    EXPECT_TRUE(holders.count(again.worker_id)) << again.worker_id << " never ran the prompt";
    EXPECT_EQ(again.cached_tokens, 512u);
  }
  EXPECT_LE(holders.size(), 2u) << "the prompt was spread over workers instead of following its cache";
}

TEST_F(kv_routing, after_eviction_the_router_stops_expecting_a_hit) {
  auto p = long_prompt('b');
  auto first = route(p);
  ASSERT_TRUE(ts::eventually([&] { return route(p).cached_tokens > 0; }, 5000));
  // Fill that worker's 64-block pool with other prompts, evicting p's blocks.
  for (char c = 'c'; c < 'k'; ++c) {
    msg::generate_request r;
    r.request_id = std::string("evict-") + c;
    r.prompt = long_prompt(c);
    r.max_tokens = 2;
    ASSERT_TRUE(run(subjects::worker_generate("default", first.worker_id), r));
  }
  EXPECT_TRUE(ts::eventually([&] { return route(p).cached_tokens == 0 || route(p).worker_id != first.worker_id; }, 5000))
      << "the router still expects " << first.worker_id << " to hold an evicted prefix";
}

TEST_F(kv_routing, a_killed_worker_vanishes_from_the_index) {
  auto p = long_prompt('z');
  std::set<std::string> holders;
  holders.insert(route(p).worker_id);
  ASSERT_TRUE(ts::eventually([&] {
    auto n = route(p);
    holders.insert(n.worker_id);
    return n.cached_tokens == 512;
  }, 5000));
  auto victim_id = route(p).worker_id;
  int victim = victim_id.back() - '0';
  workers_[static_cast<std::size_t>(victim)].reset();  // SIGKILL
  ASSERT_TRUE(ts::eventually([&] { return node_->live_workers() == 3; }, 5000));
  // Within the router's lease check the dead worker and its blocks are gone.
  msg::route_notice after;
  EXPECT_TRUE(ts::eventually([&] {
    after = route(p);
    return after.worker_id != victim_id;
  }, 5000));
  for (int i = 0; i < 3; ++i) EXPECT_NE(route(p).worker_id, victim_id);
  if (holders.size() == 1) EXPECT_EQ(after.cached_tokens, 0u) << "the dead worker's blocks are still indexed";
}

}  // namespace

namespace {

TEST_F(kv_routing, out_of_order_and_malformed_event_batches_resync_from_a_snapshot) {
  auto p = long_prompt('q');
  auto first = route(p);
  ASSERT_TRUE(ts::eventually([&] { return route(p).cached_tokens == 512; }, 5000));
  auto holder = route(p).worker_id;
  // Garbage and a batch far out of order that claims the prefix was removed.
  client_->publish(subjects::kv_events("default", holder), "{\"worker_id\": 7", {}, "application/json");
  client_->publish(subjects::kv_events("default", holder), std::string("\xc1\xc1", 2));
  msg::kv_event_batch lie;
  lie.worker_id = holder;
  lie.seq = 1000000;
  msg::kv_event removed;
  removed.kind = msg::kv_event_kind::cleared;
  lie.events.push_back(removed);
  client_->publish(subjects::kv_events("default", holder), msg::encode(lie));
  client_->flush();
  // The router detects the gap, asks the worker for its real block set, and
  // routes the prompt to its holder as a full hit again.
  EXPECT_TRUE(ts::eventually([&] {
    auto n = route(p);
    return n.worker_id == holder && n.cached_tokens == 512;
  }, 5000));
}

}  // namespace

namespace {

// A router that starts after the workers already cached prompts (a router
// restart, or a worker whose G3 tier survived its own restart) learns their
// blocks from the snapshot it asks for when each worker joins: the first
// request is already a full hit, no event has to arrive first.
class kv_routing_late_router : public kv_routing {
 protected:
  void SetUp() override {}

  void start(const std::string& warm_prompt, const std::string& warm_worker) {
    ASSERT_NO_FATAL_FAILURE(start_workers("lw", 3));
    connect_client();
    msg::generate_request r;
    r.request_id = "warm";
    r.prompt = warm_prompt;
    r.max_tokens = 2;
    // Until the worker subscribes, NATS answers "no responders": only a real last chunk counts.
    ASSERT_TRUE(ts::eventually([&] { return run(subjects::worker_generate("default", warm_worker), r, 1000, true); }, 15000));
    // Only now does a router exist: the worker's KV events for the prompt went out before it.
    ASSERT_NO_FATAL_FAILURE(start_router(3));
    subscribe_notices();
    client_->flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the join snapshots' round trips
  }
};

TEST_F(kv_routing_late_router, learns_blocks_cached_before_it_started_from_join_snapshots) {
  auto p = long_prompt('w');
  start(p, "lw1");
  if (HasFatalFailure()) return;
  auto n = route(p);  // one try: no event about p can reach this router any more
  EXPECT_EQ(n.worker_id, "lw1");
  EXPECT_EQ(n.cached_tokens, 512u);
}

// The heartbeat of a "mock" worker `id` that is not running (published by a test's raw connection).
msg::heartbeat fake_worker_heartbeat(const std::string& id, std::uint64_t incarnation) {
  msg::heartbeat hb;
  hb.instance_id = id;
  hb.component = msg::component_kind::worker;
  hb.role = msg::worker_role::both;
  hb.model = "mock";
  hb.generate_subject = subjects::worker_generate("default", id);
  hb.lease_ms = 5000;
  hb.incarnation = incarnation;
  return hb;
}

// A worker that heartbeats before its snapshot subscription is up (an external
// engine, a slow start) meets "no responders" on the router's first ask: the
// router asks again rather than routing forever without that worker's blocks.
TEST(kv_snapshot, an_unanswered_snapshot_ask_is_repeated) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto node = ts::start_cluster(nats->url(), {.workers = 0, .with_frontend = false});
  ASSERT_NE(node, nullptr);
  auto conn = ts::connect_client(nats->url());
  ASSERT_NE(conn, nullptr);
  auto& c = *conn;
  auto hb = fake_worker_heartbeat("late", 42);
  // It answers its status probe (as every worker does: the router pools only workers that answer), but its
  // snapshot subscription is not up yet.
  auto status = c.subscribe(subjects::worker_status("default", "late"), [&c, body = msg::encode(hb)](transport::nats_message m) {
    if (!m.reply.empty()) c.publish(m.reply, body);
  });
  ASSERT_TRUE(status);
  c.flush();
  ASSERT_TRUE(c.publish(subjects::heartbeat("default", "late"), msg::encode(hb)).ok());
  c.flush();
  std::this_thread::sleep_for(std::chrono::milliseconds(60));  // the first ask has met no responder by now
  std::atomic<int> asks{0};
  auto sub = c.subscribe(subjects::kv_snapshot("default", "late"), [&](transport::nats_message m) {
    asks++;
    msg::kv_event_batch b;
    b.worker_id = "late";
    if (!m.reply.empty()) c.publish(m.reply, msg::encode(b));
  });
  ASSERT_TRUE(sub);
  c.flush();
  EXPECT_TRUE(ts::eventually([&] { return asks.load() > 0; }, 5000)) << "the router never asked again";
}

// Workers announce their tokenizer's fingerprint; a router whose tokenizer differs
// counts the worker once per incarnation, logs an error, and keeps its blocks out of
// the index (their hashes come from other tokens).
TEST(tokenizer_check, a_worker_that_tokenizes_differently_is_flagged_once) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto node = ts::start_cluster(nats->url(), {.workers = 1, .with_frontend = false});
  ASSERT_NE(node, nullptr);
  auto conn = ts::connect_client(nats->url());
  ASSERT_NE(conn, nullptr);
  auto& c = *conn;
  // The real mock worker announces the same fingerprint as the router's mock tokenizer.
  const auto ours = backends::tokenizer_fingerprint(backends::mock_engine{});
  ASSERT_NE(ours, 0u);
  std::atomic<std::uint64_t> seen{0};
  auto sub = c.subscribe(subjects::heartbeat("default", "w0"), [&](transport::nats_message m) {
    if (auto hb = msg::decode_auto<msg::heartbeat>(m.data, m.content_type)) seen = hb->tokenizer_fingerprint;
  });
  ASSERT_TRUE(sub);
  ASSERT_TRUE(ts::eventually([&] { return seen.load() != 0; }, 5000));
  EXPECT_EQ(seen.load(), ours);

  auto beat = [&](const std::string& id, std::uint64_t fp) {
    auto hb = fake_worker_heartbeat(id, 7);
    hb.tokenizer_fingerprint = fp;
    ASSERT_TRUE(c.publish(subjects::heartbeat("default", id), msg::encode(hb)).ok());
    c.flush();
  };
  beat("odd", ours ^ 0x5a5a);
  beat("odd", ours ^ 0x5a5a);  // the same incarnation again: counted once
  beat("alike", ours);
  beat("unknown", 0);  // an engine that does not say: trusted
  ASSERT_TRUE(ts::eventually([&] {
    auto s = node->router_stats();
    return s && s->tokenizer_mismatches >= 1;
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto s = node->router_stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->tokenizer_mismatches, 1u);
}

// Tokens once: a router whose tokenizer matches the worker's (fingerprints) forwards the prompt
// as token ids with the chained block hashes it computed for routing; a worker that tokenizes
// differently gets the request as the client sent it.
TEST(tokens_once, the_router_forwards_token_ids_and_block_hashes_only_to_workers_that_tokenize_alike) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto node = ts::start_cluster(nats->url(), {.workers = 0, .with_frontend = false});
  ASSERT_NE(node, nullptr);
  auto conn = ts::connect_client(nats->url());
  ASSERT_NE(conn, nullptr);
  auto& c = *conn;
  const auto ours = backends::tokenizer_fingerprint(backends::byte_tokenizer{});
  // A fake worker: answers status probes with its heartbeat and records what the router forwards.
  std::mutex mu;
  std::vector<msg::generate_request> got;
  std::vector<transport::subscription> subs;
  auto current = std::make_shared<std::string>();  // the fake's latest heartbeat: status probes get it
  auto fake = [&](const std::string& id, std::uint64_t fp) {
    auto hb = fake_worker_heartbeat(id, 11);
    hb.block_size = 16;
    hb.tokenizer_fingerprint = fp;
    auto body = msg::encode(hb);
    {
      std::lock_guard<std::mutex> lock(mu);
      *current = body;
    }
    subs.push_back(std::move(*c.subscribe(subjects::worker_status("default", id), [&c, &mu, current](transport::nats_message m) {
      std::lock_guard<std::mutex> lock(mu);
      if (!m.reply.empty()) c.publish(m.reply, *current);
    })));
    subs.push_back(std::move(*c.subscribe(subjects::worker_generate("default", id), [&](transport::nats_message m) {
      auto r = msg::decode_auto<msg::generate_request>(m.data, m.content_type);
      ASSERT_TRUE(r) << r.err().describe();
      std::lock_guard<std::mutex> lock(mu);
      got.push_back(std::move(*r));
    })));
    c.flush();
    ASSERT_TRUE(c.publish(subjects::heartbeat("default", id), body).ok());
    c.flush();
  };
  auto ask = [&](const std::string& prompt) {
    std::size_t before;
    {
      std::lock_guard<std::mutex> lock(mu);
      before = got.size();
    }
    msg::generate_request r;
    r.prompt = prompt;
    r.max_tokens = 2;
    // JSON in: the forwarded body keeps the client's format.
    c.publish(subjects::router_generate("default"), msg::encode(r, msg::wire_format::json), c.new_inbox(), "application/json");
    c.flush();
    EXPECT_TRUE(ts::eventually([&] {
      std::lock_guard<std::mutex> lock(mu);
      return got.size() > before;
    }, 5000));
    std::lock_guard<std::mutex> lock(mu);
    return got.empty() ? msg::generate_request{} : got.back();
  };
  const std::string prompt(40, 'q');  // 2 full blocks of 16
  fake("alike", ours);
  ASSERT_TRUE(ts::eventually([&] {
    auto s = node->router_stats();
    return s && s->workers == 1;
  }, 5000));
  auto fwd = ask(prompt);
  ASSERT_TRUE(fwd.token_ids);
  EXPECT_EQ(*fwd.token_ids, backends::byte_tokenizer{}.tokenize(prompt).value());
  EXPECT_FALSE(fwd.prompt);
  EXPECT_EQ(fwd.hash_block_size, 16u);
  EXPECT_EQ(fwd.block_hashes, kv::hash_blocks(*fwd.token_ids, 16, std::nullopt));
  EXPECT_EQ(fwd.block_hashes.size(), 2u);

  // The same worker now says it tokenizes differently: the prompt goes as text, no hashes.
  {
    auto hb = fake_worker_heartbeat("alike", 11);  // (a new incarnation would be refused while this one lives)
    hb.block_size = 16;
    hb.tokenizer_fingerprint = ours ^ 0x77;
    {
      std::lock_guard<std::mutex> lock(mu);
      *current = msg::encode(hb);
    }
    ASSERT_TRUE(c.publish(subjects::heartbeat("default", "alike"), msg::encode(hb)).ok());
    c.flush();
  }
  ASSERT_TRUE(ts::eventually([&] {
    auto s = node->router_stats();
    return s && s->tokenizer_mismatches >= 1;
  }, 5000));
  auto plain = ask(prompt);
  EXPECT_FALSE(plain.token_ids);
  ASSERT_TRUE(plain.prompt);
  EXPECT_EQ(*plain.prompt, prompt);
  EXPECT_TRUE(plain.block_hashes.empty());
}

// A router asked for a model folder's tokenizer loads tokenizer.json only; a missing one fails
// with a message naming the path (yard router and yard up then exit with it).
TEST(tokens_once, a_router_tokenizer_that_cannot_load_names_the_path) {
  cluster::engine_options eng;
  eng.engine = "native";
  eng.model = "/nonexistent/model-dir";
  auto t = cluster::make_prompt_tokenizer(eng);
  ASSERT_FALSE(t);
  EXPECT_NE(t.err().message.find("/nonexistent/model-dir/tokenizer.json"), std::string::npos) << t.err().message;
  eng.engine = "mock";
  auto m = cluster::make_prompt_tokenizer(eng);
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)->name(), "mock");
}

}  // namespace
