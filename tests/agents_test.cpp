// Built for agents, end to end (real nats-server, router, two mock workers, HTTP frontend):
// every component answers the NATS services API ($SRV.PING/INFO/STATS); tools and
// response_format over HTTP (whole and streamed) and over NATS with a bare JSON body;
// a session_id keeps a conversation on one worker.
#include <httplib.h>

#include <functional>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "messages/codec.hpp"
#include "messages/subjects.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
using nlohmann::json;
namespace ts = yard::test_support;

namespace {

class agents : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    nats_ = ts::start_nats().release();
    ASSERT_NE(nats_, nullptr);
    node_ = ts::start_cluster(nats_->url(), {.workers = 2, .token_delay_ms = 1.0}).release();
    ASSERT_NE(node_, nullptr);
  }
  static void TearDownTestSuite() {
    delete node_;
    delete nats_;
  }

  // Every reply to one message on `subject` (a NATS request to many responders): all that
  // arrive within `ms`, or, with `done`, until the replies so far satisfy it (at most 10 s).
  static std::vector<json> gather(const std::string& subject, int ms = 500, const std::string& body = "",
                                  const std::function<bool(const std::vector<json>&)>& done = {}) {
    auto c = ts::connect_client(nats_->url());
    EXPECT_NE(c, nullptr);
    std::mutex mu;
    std::vector<json> out;
    auto inbox = c->new_inbox();
    auto sub = c->subscribe(inbox, [&](transport::nats_message m) {
      std::lock_guard<std::mutex> lock(mu);
      out.push_back(json::parse(m.data, nullptr, false));
    });
    EXPECT_TRUE(sub.ok());
    EXPECT_TRUE(c->publish(subject, body, inbox, body.empty() ? "" : "application/json").ok());
    if (done) {
      EXPECT_TRUE(ts::eventually([&] {
        std::lock_guard<std::mutex> lock(mu);
        return done(out);
      }));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    std::lock_guard<std::mutex> lock(mu);
    return out;
  }

  static httplib::Result post(const json& body) {
    httplib::Client cli("127.0.0.1", node_->http_port());
    cli.set_read_timeout(30, 0);
    return cli.Post("/v1/chat/completions", body.dump(), "application/json");
  }

  static json tools() {
    return json::parse(R"([{"type":"function","function":{"name":"get_weather","description":"weather",
      "parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":12},
      "unit":{"enum":["celsius","fahrenheit"]}},"required":["city","unit"]}}}])");
  }

  static inline transport::nats_server_process* nats_ = nullptr;
  static inline cluster::node_runtime* node_ = nullptr;
};

TEST_F(agents, every_component_answers_the_nats_services_api) {
  std::multiset<std::string> names;
  for (const auto& r : gather("$SRV.PING")) {
    ASSERT_FALSE(r.is_discarded());
    EXPECT_EQ(r["type"], "io.nats.micro.v1.ping_response");
    EXPECT_EQ(r["version"], "0.2.0");
    EXPECT_EQ(r["metadata"]["namespace"], "default");
    names.insert(r["name"].get<std::string>());
  }
  EXPECT_EQ(names.count("yard-frontend"), 1u);
  EXPECT_EQ(names.count("yard-router"), 1u);
  EXPECT_EQ(names.count("yard-worker"), 2u);
  auto info = gather("$SRV.INFO.yard-router");
  ASSERT_EQ(info.size(), 1u);
  bool generate = false;
  for (const auto& e : info[0]["endpoints"])
    if (e["name"] == "generate") {
      generate = true;
      EXPECT_EQ(e["subject"], subjects::router_generate("default"));
      EXPECT_EQ(e["queue_group"], "routers");
    }
  EXPECT_TRUE(generate);
  auto workers = gather("$SRV.INFO.yard-worker");
  ASSERT_EQ(workers.size(), 2u);
  for (const auto& w : workers) EXPECT_EQ(w["metadata"]["model"], "mock");
  // One instance by id.
  auto id = workers[0]["id"].get<std::string>();
  EXPECT_EQ(gather("$SRV.PING.yard-worker." + id).size(), 1u);
  auto fe = gather("$SRV.INFO.yard-frontend");
  ASSERT_EQ(fe.size(), 1u);
  EXPECT_EQ(fe[0]["metadata"]["http"], "http://127.0.0.1:" + std::to_string(node_->http_port()));
}

TEST_F(agents, forced_tool_call_over_http_whole_and_streamed) {
  json body = {{"model", "mock"},
               {"messages", {{{"role", "user"}, {"content", "weather in Paris?"}}}},
               {"tools", tools()},
               {"tool_choice", "required"},
               {"max_tokens", 96}};
  auto r = post(body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  auto& ch = j["choices"][0];
  EXPECT_EQ(ch["finish_reason"], "tool_calls") << r->body;
  ASSERT_EQ(ch["message"]["tool_calls"].size(), 1u) << r->body;
  auto call = ch["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_EQ(call["function"]["name"], "get_weather");
  auto args = json::parse(call["function"]["arguments"].get<std::string>());
  EXPECT_TRUE(args["city"].is_string());
  EXPECT_TRUE(args["unit"] == "celsius" || args["unit"] == "fahrenheit");
  EXPECT_TRUE(ch["message"]["content"].is_null());

  // The tool's answer goes back with the call; role "tool" is accepted.
  json follow = body;
  follow["messages"].push_back(ch["message"]);
  follow["messages"].push_back({{"role", "tool"}, {"tool_call_id", call["id"]}, {"content", "18 C"}});
  follow["tool_choice"] = "none";
  follow["max_tokens"] = 8;
  auto f = post(follow);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->status, 200) << f->body;

  body["stream"] = true;
  auto s = post(body);
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200);
  std::string name, arguments, finish;
  std::size_t pos = 0;
  while ((pos = s->body.find("data: ", pos)) != std::string::npos) {
    auto end = s->body.find("\n\n", pos);
    auto data = s->body.substr(pos + 6, end - pos - 6);
    pos = end;
    if (data == "[DONE]") break;
    auto ev = json::parse(data);
    auto& c0 = ev["choices"][0];
    for (const auto& d : c0["delta"].value("tool_calls", json::array())) {
      if (d["function"].contains("name")) name = d["function"]["name"];
      arguments += d["function"].value("arguments", "");
    }
    if (!c0["finish_reason"].is_null()) finish = c0["finish_reason"];
  }
  EXPECT_EQ(name, "get_weather");
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_FALSE(json::parse(arguments, nullptr, false).is_discarded()) << arguments;
}

TEST_F(agents, json_schema_output_over_http) {
  json schema = json::parse(R"({"type":"object","properties":{"name":{"type":"string","maxLength":10},
    "tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":4},"ok":{"type":"boolean"}},
    "required":["name","tags","ok"],"additionalProperties":false})");
  for (int i = 0; i < 5; ++i) {
    json body = {{"model", "mock"},
                 {"messages", {{{"role", "user"}, {"content", "json " + std::to_string(i)}}}},
                 {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "t"}, {"schema", schema}}}}},
                 {"max_tokens", 80}};
    auto r = post(body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    auto content = json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>();
    auto v = json::parse(content, nullptr, false);
    ASSERT_FALSE(v.is_discarded()) << content;
    EXPECT_TRUE(v["name"].is_string() && v["tags"].is_array() && v["ok"].is_boolean()) << content;
  }
  json bad_schema = {{"type", "string"}, {"format", "email"}};
  json bad = {{"model", "mock"},
              {"messages", {{{"role", "user"}, {"content", "x"}}}},
              {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "t"}, {"schema", bad_schema}}}}}};
  auto b = post(bad);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->status, 400) << b->body;
}

// A NATS client sending only what it must: a JSON body with messages, tools and tool_choice.
TEST_F(agents, tool_call_over_nats_with_a_bare_json_body) {
  json req = {{"messages", {{{"role", "user"}, {"content", "weather?"}}}},
              {"tools", tools()},
              {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}},
              {"max_tokens", 96}};
  auto chunks = gather(subjects::router_generate("default"), 0, req.dump(), [](const std::vector<json>& got) {
    return !got.empty() && got.back().contains("finish_reason");
  });
  std::string name, args;
  for (const auto& ch : chunks)
    for (const auto& d : ch.value("tool_calls", json::array())) {
      if (d.contains("name")) name = d["name"];
      args += d.value("arguments", "");
    }
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.back()["finish_reason"], "tool_calls");
  EXPECT_EQ(name, "get_weather");
  EXPECT_FALSE(json::parse(args, nullptr, false).is_discarded()) << args;
}

// Forged or careless bus clients: malformed tools or schemas are error chunks (400), and the worker serves on.
TEST_F(agents, malformed_agent_fields_over_nats_are_error_replies) {
  auto c = ts::connect_client(nats_->url());
  ASSERT_NE(c, nullptr);
  for (const char* body : {R"({"messages":[{"role":"user","content":"x"}],"tools":[1,2],"tool_choice":"required"})",
                           R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"string","pattern":"a+"}}}})",
                           R"({"messages":[{"role":"user","content":"x"}],"tools":"none"})"}) {
    auto r = c->request(subjects::router_generate("default"), body, 5000);
    ASSERT_TRUE(r.ok()) << r.err().describe();
    auto j = json::parse(r->data, nullptr, false);
    // The worker checks the fields before it acknowledges: the first reply is the error chunk.
    ASSERT_TRUE(j.contains("error")) << body;
    EXPECT_EQ(j["error"]["code"], 400) << j.dump();
  }
  // Still serving.
  json ok = {{"model", "mock"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 3}};
  auto r = post(ok);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(agents, a_session_stays_on_its_worker_and_stats_count_requests) {
  auto before = node_->router_stats();
  ASSERT_TRUE(before.has_value());
  for (int i = 0; i < 6; ++i) {
    json body = {{"model", "mock"},
                 {"messages", {{{"role", "user"}, {"content", "turn " + std::to_string(i) + " of a long talk"}}}},
                 {"max_tokens", 4},
                 {"session_id", "conv-42"}};
    auto r = post(body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
  }
  auto after = node_->router_stats();
  ASSERT_TRUE(after.has_value());
  EXPECT_GE(after->sticky_hits - before->sticky_hits, 5u);
  EXPECT_GE(after->sessions, 1u);
  // The router's STATS count what its generate endpoint received.
  auto stats = gather("$SRV.STATS.yard-router");
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0]["type"], "io.nats.micro.v1.stats_response");
  std::uint64_t generate = 0;
  for (const auto& e : stats[0]["endpoints"])
    if (e["name"] == "generate") generate = e["num_requests"];
  EXPECT_GE(generate, 6u);
}

}  // namespace
