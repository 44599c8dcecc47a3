// transport/tests/nats_service_test.cpp — the ADR-32 services API on a real nats-server:
// three instances (two names) answer $SRV.PING/INFO/STATS by all, by name and by id
// with the spec's JSON; STATS shows record() calls; a stopped or destroyed service
// no longer answers; bad configs are refused; record() is exact under contention.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "transport/nats_connection.hpp"
#include "transport/nats_service.hpp"
#include "transport/tests/test_bus.hpp"

namespace {

using namespace yard::transport;
using nlohmann::json;
using namespace std::chrono_literals;

struct nats_service_test : ::testing::Test {
  test_support::test_bus bus;  // bus.conn is the plain client that asks
  std::unique_ptr<nats_connection> conn_a, conn_b;
  std::unique_ptr<nats_service> router, worker1, worker2;

  void SetUp() override {
    bus.start();
    ASSERT_TRUE(bus.conn);
    nats_options o;
    o.servers = {bus.server->url()};
    auto a = nats_connection::connect(o);
    auto b = nats_connection::connect(o);
    ASSERT_TRUE(a && b);
    conn_a = std::move(*a);
    conn_b = std::move(*b);

    nats_service_config rc;
    rc.name = "yard-router";
    rc.version = "0.2.0";
    rc.description = "KV-aware router";
    rc.metadata = {{"namespace", "test"}};
    rc.endpoints = {{"generate", "yard.test.router.generate", "router", {{"format", "msgpack"}}, {}},
                    {"inflight", "yard.test.router.inflight", "", {}, [] { return std::string(R"({"peers":2})"); }}};
    auto r = nats_service::start(*conn_a, rc);
    ASSERT_TRUE(r) << r.err().describe();
    router = std::move(*r);

    nats_service_config wc;  // no metadata: must still be {}
    wc.name = "yard-worker";
    wc.version = "0.2.0-rc.1+build.7";
    wc.endpoints = {{"generate", "yard.test.worker.generate.w1", "", {}, {}}};
    auto w1 = nats_service::start(*conn_b, wc);
    ASSERT_TRUE(w1) << w1.err().describe();
    worker1 = std::move(*w1);
    wc.endpoints[0].subject = "yard.test.worker.generate.w2";
    auto w2 = nats_service::start(*conn_a, wc);  // two services on one connection
    ASSERT_TRUE(w2) << w2.err().describe();
    worker2 = std::move(*w2);
  }

  // Sends one request on `subject` with a private reply inbox and returns every
  // reply: waits for `expected` (10 s at most), then ~300 ms more for stragglers.
  std::vector<std::string> gather(const std::string& subject, std::size_t expected, const std::string& body = "") {
    test_support::recorded_messages box;
    std::string inbox = bus.conn->new_inbox();
    auto sub = bus.conn->subscribe(inbox, [&box](nats_message m) { box.push(std::move(m)); });
    EXPECT_TRUE(sub) << sub.err().describe();
    if (!sub) return {};
    EXPECT_TRUE(bus.conn->flush());
    EXPECT_TRUE(bus.conn->publish(subject, body, inbox));
    box.wait_for(expected);
    std::this_thread::sleep_for(300ms);
    *sub = subscription();  // no handler runs after this
    std::vector<std::string> out;
    for (auto& m : box.got) {
      EXPECT_EQ(m.content_type, "application/json");
      out.push_back(m.data);
    }
    return out;
  }

  static std::vector<json> parse_all(const std::vector<std::string>& bodies) {
    std::vector<json> out;
    for (const auto& b : bodies) {
      auto j = json::parse(b, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << b;
      out.push_back(j);
    }
    return out;
  }

  static std::set<std::string> ids(const std::vector<json>& replies) {
    std::set<std::string> out;
    for (const auto& j : replies) out.insert(j.at("id").get<std::string>());
    return out;
  }
};

TEST_F(nats_service_test, ids_are_unique_22_char_alphanumerics) {
  std::regex id_re("^[0-9A-Za-z]{22}$");
  for (auto* s : {router.get(), worker1.get(), worker2.get()}) EXPECT_TRUE(std::regex_match(s->id(), id_re)) << s->id();
  EXPECT_EQ((std::set<std::string>{router->id(), worker1->id(), worker2->id()}).size(), 3u);
}

TEST_F(nats_service_test, ping_all_reaches_every_instance_with_the_standard_fields) {
  auto raw = gather("$SRV.PING", 3);
  ASSERT_EQ(raw.size(), 3u);
  auto replies = parse_all(raw);
  EXPECT_EQ(ids(replies), (std::set<std::string>{router->id(), worker1->id(), worker2->id()}));
  for (std::size_t i = 0; i < replies.size(); ++i) {
    const auto& j = replies[i];
    EXPECT_EQ(j.at("type"), "io.nats.micro.v1.ping_response");
    ASSERT_TRUE(j.at("metadata").is_object()) << raw[i];
    EXPECT_EQ(j.size(), 5u) << raw[i];  // type, name, id, version, metadata
    if (j.at("name") == "yard-router") {
      EXPECT_EQ(j.at("version"), "0.2.0");
      EXPECT_EQ(j.at("metadata"), (json{{"namespace", "test"}}));
    } else {
      EXPECT_EQ(j.at("name"), "yard-worker");
      EXPECT_EQ(j.at("version"), "0.2.0-rc.1+build.7");
      EXPECT_NE(raw[i].find("\"metadata\":{}"), std::string::npos) << raw[i];
    }
  }
}

TEST_F(nats_service_test, ping_by_name_reaches_only_that_names_instances) {
  auto workers = parse_all(gather("$SRV.PING.yard-worker", 2));
  EXPECT_EQ(ids(workers), (std::set<std::string>{worker1->id(), worker2->id()}));
  auto routers = parse_all(gather("$SRV.PING.yard-router", 1));
  EXPECT_EQ(ids(routers), (std::set<std::string>{router->id()}));
  auto one = parse_all(gather("$SRV.PING.yard-worker." + worker2->id(), 1));
  EXPECT_EQ(ids(one), (std::set<std::string>{worker2->id()}));
}

TEST_F(nats_service_test, info_by_id_answers_once_with_the_endpoints) {
  auto raw = gather("$SRV.INFO.yard-router." + router->id(), 1);
  ASSERT_EQ(raw.size(), 1u);
  auto j = json::parse(raw[0]);
  EXPECT_EQ(j.at("type"), "io.nats.micro.v1.info_response");
  EXPECT_EQ(j.at("name"), "yard-router");
  EXPECT_EQ(j.at("id"), router->id());
  EXPECT_EQ(j.at("version"), "0.2.0");
  EXPECT_EQ(j.at("description"), "KV-aware router");
  EXPECT_EQ(j.at("metadata"), (json{{"namespace", "test"}}));
  ASSERT_EQ(j.at("endpoints").size(), 2u);
  EXPECT_EQ(j["endpoints"][0], (json{{"name", "generate"},
                                     {"subject", "yard.test.router.generate"},
                                     {"queue_group", "router"},
                                     {"metadata", {{"format", "msgpack"}}}}));
  EXPECT_EQ(j["endpoints"][1].at("name"), "inflight");
  EXPECT_EQ(j["endpoints"][1].at("queue_group"), "");
  EXPECT_TRUE(j["endpoints"][1].at("metadata").is_object());
  EXPECT_TRUE(j["endpoints"][1].at("metadata").empty());

  auto workers = parse_all(gather("$SRV.INFO.yard-worker", 2));
  ASSERT_EQ(workers.size(), 2u);
  for (const auto& w : workers) {
    EXPECT_EQ(w.at("type"), "io.nats.micro.v1.info_response");
    EXPECT_EQ(w.at("description"), "");
    EXPECT_EQ(w.at("endpoints").size(), 1u);
  }
}

TEST_F(nats_service_test, stats_show_recorded_requests_errors_and_times) {
  ASSERT_TRUE(router->record("generate", 100ns));
  ASSERT_TRUE(router->record("generate", 300ns, "no worker"));
  ASSERT_TRUE(router->record("generate", 200ns, "engine died"));
  ASSERT_TRUE(router->record("inflight", 50ns));
  ASSERT_TRUE(worker1->record("generate", 1ms));
  EXPECT_EQ(router->record("nope", 1ns).err().code, yard::errc::not_found);

  auto replies = parse_all(gather("$SRV.STATS", 3));
  ASSERT_EQ(replies.size(), 3u);
  std::regex rfc3339(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$)");
  for (const auto& j : replies) {
    EXPECT_EQ(j.at("type"), "io.nats.micro.v1.stats_response");
    EXPECT_TRUE(j.at("metadata").is_object());
    EXPECT_TRUE(std::regex_match(j.at("started").get<std::string>(), rfc3339)) << j.at("started");
    if (j.at("id") == router->id()) {
      const auto& g = j.at("endpoints").at(0);
      EXPECT_EQ(g.at("name"), "generate");
      EXPECT_EQ(g.at("subject"), "yard.test.router.generate");
      EXPECT_EQ(g.at("queue_group"), "router");
      EXPECT_EQ(g.at("num_requests"), 3);
      EXPECT_EQ(g.at("num_errors"), 2);
      EXPECT_EQ(g.at("last_error"), "engine died");
      EXPECT_EQ(g.at("processing_time"), 600);
      EXPECT_EQ(g.at("average_processing_time"), 200);
      EXPECT_FALSE(g.contains("data"));
      const auto& f = j.at("endpoints").at(1);
      EXPECT_EQ(f.at("num_requests"), 1);
      EXPECT_EQ(f.at("num_errors"), 0);
      EXPECT_EQ(f.at("last_error"), "");
      EXPECT_EQ(f.at("data"), (json{{"peers", 2}}));
    } else if (j.at("id") == worker1->id()) {
      EXPECT_EQ(j.at("endpoints").at(0).at("num_requests"), 1);
      EXPECT_EQ(j.at("endpoints").at(0).at("processing_time"), 1'000'000);
    } else {
      EXPECT_EQ(j.at("id"), worker2->id());
      EXPECT_EQ(j.at("endpoints").at(0).at("num_requests"), 0);
      EXPECT_EQ(j.at("endpoints").at(0).at("average_processing_time"), 0);
    }
  }

  router->reset();
  auto after = json::parse(gather("$SRV.STATS.yard-router." + router->id(), 1).at(0));
  EXPECT_EQ(after["endpoints"][0].at("num_requests"), 0);
  EXPECT_EQ(after["endpoints"][0].at("last_error"), "");
}

TEST_F(nats_service_test, a_request_body_is_ignored) {
  auto r = bus.conn->request("$SRV.PING.yard-router", "{not json at all", 5000);
  ASSERT_TRUE(r) << r.err().describe();
  auto j = json::parse(r->data);
  EXPECT_EQ(j.at("id"), router->id());
  auto i = bus.conn->request("$SRV.INFO.yard-router", std::string("\x81\xa1x\x01", 4), 5000);
  ASSERT_TRUE(i) << i.err().describe();
  EXPECT_EQ(json::parse(i->data).at("type"), "io.nats.micro.v1.info_response");
}

TEST_F(nats_service_test, a_stopped_or_destroyed_service_no_longer_answers) {
  std::string gone = worker1->id();
  worker1->stop();
  EXPECT_TRUE(worker1->stopped());
  worker1->stop();  // idempotent
  ASSERT_TRUE(conn_b->flush());
  auto left = parse_all(gather("$SRV.PING.yard-worker", 1));  // the 300 ms after it would catch a late second
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].at("id"), worker2->id());
  auto direct = bus.conn->request("$SRV.INFO.yard-worker." + gone, "", 1000);
  ASSERT_FALSE(direct);
  EXPECT_EQ(direct.err().code, yard::errc::unavailable);  // no responders

  worker2.reset();
  ASSERT_TRUE(conn_a->flush());
  auto none = bus.conn->request("$SRV.PING.yard-worker", "", 1000);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.err().code, yard::errc::unavailable);
  auto all = parse_all(gather("$SRV.PING", 1));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].at("id"), router->id());
}

TEST_F(nats_service_test, bad_configs_are_refused) {
  nats_service_config c;
  c.name = "yard router";
  c.version = "0.2.0";
  auto bad_name = nats_service::start(*conn_a, c);
  ASSERT_FALSE(bad_name);
  EXPECT_EQ(bad_name.err().code, yard::errc::bad_request);
  c.name = "yard-x";
  for (std::string v : {"v1", "1.2", "01.2.3", "1.2.3-", ""}) {
    c.version = v;
    EXPECT_FALSE(nats_service::start(*conn_a, c)) << v;
  }
  c.version = "1.0.0";
  c.endpoints = {{"a", "s.a", "", {}, {}}, {"a", "s.b", "", {}, {}}};
  EXPECT_FALSE(nats_service::start(*conn_a, c));  // names must be unique: record() keys on them
  c.endpoints = {{"a", "s a", "", {}, {}}};
  EXPECT_FALSE(nats_service::start(*conn_a, c));
  c.endpoints = {{"a", "s.>", "", {}, {}}, {"b", "s.*.x", "q", {}, {}}};
  EXPECT_TRUE(nats_service::start(*conn_a, c));
}

TEST_F(nats_service_test, record_is_exact_under_contention) {
  constexpr int threads = 4, per_thread = 20000;
  auto idx = router->endpoint_index("generate");
  ASSERT_TRUE(idx);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        if (i % 1000 == 0)
          router->record(*idx, 2ns, "err " + std::to_string(t));
        else
          router->record(*idx, 2ns);
      }
    });
  for (auto& th : pool) th.join();
  auto s = router->stats().at(0);
  EXPECT_EQ(s.num_requests, static_cast<std::uint64_t>(threads * per_thread));
  EXPECT_EQ(s.num_errors, static_cast<std::uint64_t>(threads * per_thread / 1000));
  EXPECT_EQ(s.processing_time, std::chrono::nanoseconds(2 * threads * per_thread));
  EXPECT_EQ(s.average_processing_time, 2ns);
  EXPECT_EQ(s.last_error.rfind("err ", 0), 0u);
}

}  // namespace
