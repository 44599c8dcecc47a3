// The external engine against a minimal OpenAI-compatible server written in the
// test (cpp-httplib), shaped like a server that sends no token ids (llama-server,
// older vLLM): tool calls parsed out of its streamed text, the ids read from the
// text with our tokenizer, vLLM-named load from its /metrics, and its health
// endpoint failing and recovering. The end-to-end tests against Switchyard
// servers are in tests/external_engine_test.cpp.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backends/external/openai_upstream_engine.hpp"

using namespace yard;
using nlohmann::json;

namespace {

bool eventually(const std::function<bool()>& p, int timeout_ms = 10000) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < until) {
    if (p()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return p();
}

class fake_server {
 public:
  fake_server() {
    srv_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object":"list","data":[{"id":"fake-model","object":"model","max_model_len":2048}]})",
                      "application/json");
    });
    srv_.Get("/health", [this](const httplib::Request&, httplib::Response& res) { res.status = healthy ? 200 : 503; });
    srv_.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=\"fake-model\"} 3\n"
                      "vllm:num_requests_waiting{model_name=\"fake-model\"} 2\n"
                      "vllm:kv_cache_usage_perc{model_name=\"fake-model\"} 0.25\n",
                      "text/plain");
    });
    srv_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lk(mu_);
        last_body = json::parse(req.body, nullptr, false);
      }
      // A Hermes tool call, split mid-marker and mid-JSON, with no token ids in the chunks.
      auto pieces = std::make_shared<std::vector<std::string>>(std::vector<std::string>{
          "Let me check. <tool_", "call>{\"name\": \"get_weather\", \"argu", "ments\": {\"city\": \"Paris\"}}</tool_call>"});
      res.set_chunked_content_provider("text/event-stream", [pieces](std::size_t, httplib::DataSink& sink) {
        for (std::size_t i = 0; i < pieces->size(); ++i) {
          json c = {{"object", "text_completion"},
                    {"choices", {{{"index", 0}, {"text", (*pieces)[i]}, {"finish_reason", i + 1 == pieces->size() ? json("stop") : json(nullptr)}}}}};
          std::string ev = "data: " + c.dump() + "\n\n";
          sink.write(ev.data(), ev.size());
        }
        std::string usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":30,"
                            "\"prompt_tokens_details\":{\"cached_tokens\":2}}}\n\ndata: [DONE]\n\n";
        sink.write(usage.data(), usage.size());
        sink.done();
        return true;
      });
    });
    port = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
  }
  ~fake_server() {
    srv_.stop();
    thread_.join();
  }
  json body() {
    std::lock_guard lk(mu_);
    return last_body;
  }

  int port = 0;
  std::atomic<bool> healthy{true};

 private:
  httplib::Server srv_;
  std::thread thread_;
  std::mutex mu_;
  json last_body;
};

std::unique_ptr<backends::engine> engine_for(const fake_server& s, const std::string& structured = "response_format") {
  backends::external::openai_upstream_options o;
  o.structured_output = structured;
  o.upstream = "http://127.0.0.1:" + std::to_string(s.port) + "/v1/";  // a trailing /v1 is dropped
  o.poll_ms = 50;
  o.tokenizer = std::make_shared<backends::byte_tokenizer>();
  o.detokenize = [](const std::vector<msg::token_id>& ids) { return std::string(ids.begin(), ids.end()); };
  auto e = backends::external::make_openai_upstream_engine(std::move(o));
  EXPECT_TRUE(e.ok()) << e.err().describe();
  return e ? std::move(*e) : nullptr;
}

}  // namespace

TEST(openai_upstream_engine, tool_calls_come_out_of_a_server_that_sends_only_text) {
  fake_server server;
  auto e = engine_for(server);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->name(), "openai:fake-model");
  EXPECT_EQ(e->max_context(), 2048u);  // max_model_len from /v1/models
  backends::engine_request r;
  r.request_id = "t1";
  r.prompt = {1, 2, 3, 4};
  r.max_tokens = 64;
  r.tool_format = backends::chat::tool_call_format::hermes;
  ASSERT_TRUE(e->add_request(r).ok());
  std::string content;
  std::vector<msg::tool_call_delta> calls;
  std::size_t tokens = 0;
  std::optional<msg::finish_kind> finish;
  msg::usage usage;
  ASSERT_TRUE(eventually([&] {
    for (auto& o : e->step().outputs) {
      content += o.text_delta;
      calls.insert(calls.end(), o.tool_calls.begin(), o.tool_calls.end());
      tokens += o.new_tokens.size();
      if (o.finish_reason) {
        finish = o.finish_reason;
        usage = o.usage_info;
      }
    }
    return finish.has_value();
  }));
  EXPECT_EQ(*finish, msg::finish_kind::tool_calls);
  EXPECT_EQ(content, "Let me check. ");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(json::parse(calls[0].arguments), json::parse(R"({"city": "Paris"})"));
  // No ids from the server: each chunk's text read with our tokenizer (bytes here).
  const std::size_t text_bytes = std::string("Let me check. <tool_call>{\"name\": \"get_weather\", \"arguments\": "
                                             "{\"city\": \"Paris\"}}</tool_call>").size();
  EXPECT_EQ(tokens, text_bytes);
  EXPECT_EQ(usage.completion_tokens, text_bytes);
  EXPECT_EQ(usage.prompt_tokens, 4u);
  EXPECT_EQ(usage.cached_tokens, 2u);  // the server's prefix-cache count
  auto body = server.body();
  EXPECT_EQ(body["model"], "fake-model");
  EXPECT_EQ(body["prompt"], json::array({1, 2, 3, 4}));
  EXPECT_EQ(body["max_tokens"], 64);
  EXPECT_FALSE(e->has_work());
}

// Structured output is the server's to enforce: the request's schema goes up in the server's dialect.
TEST(openai_upstream_engine, an_output_schema_goes_to_the_server_in_its_dialect) {
  fake_server server;
  const json schema = {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}, {"required", {"city"}}};
  auto run_one = [&](backends::engine& e, const std::string& id) {
    backends::engine_request r;
    r.request_id = id;
    r.prompt = {1, 2, 3};
    r.max_tokens = 32;
    r.output_schema = schema.dump();
    auto s = e.add_request(r);
    if (!s) return s;
    std::optional<msg::finish_kind> finish;
    EXPECT_TRUE(eventually([&] {
      for (auto& o : e.step().outputs)
        if (o.finish_reason) finish = o.finish_reason;
      return finish.has_value();
    }));
    return status::success();
  };
  auto vllm = engine_for(server);
  ASSERT_NE(vllm, nullptr);
  EXPECT_TRUE(vllm->constrains_by_schema());
  ASSERT_TRUE(run_one(*vllm, "s1").ok());
  auto body = server.body();
  EXPECT_EQ(body["response_format"]["type"], "json_schema");
  EXPECT_EQ(body["response_format"]["json_schema"]["schema"], schema);
  EXPECT_FALSE(body.contains("json_schema"));

  auto sglang = engine_for(server, "sglang");
  ASSERT_TRUE(run_one(*sglang, "s2").ok());
  body = server.body();
  ASSERT_TRUE(body["json_schema"].is_string());  // SGLang takes the schema as a JSON string
  EXPECT_EQ(json::parse(body["json_schema"].get<std::string>()), schema);
  EXPECT_FALSE(body.contains("response_format"));

  auto llama = engine_for(server, "llama.cpp");
  ASSERT_TRUE(run_one(*llama, "s3").ok());
  body = server.body();
  EXPECT_EQ(body["json_schema"], schema);  // llama-server takes it as an object

  auto off = engine_for(server, "none");
  EXPECT_FALSE(off->constrains_by_schema());
  auto refused = run_one(*off, "s4");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.err().code, errc::unsupported);

  // A migrated constrained request would restart its value upstream: refused, not garbled.
  backends::engine_request resumed;
  resumed.request_id = "s5";
  resumed.prompt = {1, 2, 3};
  resumed.resume_tokens = {'{'};
  resumed.output_schema = schema.dump();
  auto r5 = vllm->add_request(resumed);
  ASSERT_FALSE(r5.ok());
  EXPECT_EQ(r5.err().code, errc::unsupported);

  backends::external::openai_upstream_options bad;
  bad.upstream = "http://127.0.0.1:" + std::to_string(server.port);
  bad.tokenizer = std::make_shared<backends::byte_tokenizer>();
  bad.detokenize = [](const std::vector<msg::token_id>&) { return std::string(); };
  bad.structured_output = "xgrammar";
  auto b = backends::external::make_openai_upstream_engine(bad);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.err().message.find("xgrammar"), std::string::npos);
}

TEST(openai_upstream_engine, load_comes_from_the_servers_metrics_and_health_decides_availability) {
  fake_server server;
  auto e = engine_for(server);
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(eventually([&] {
    auto l = e->load();
    return l.active_requests == 3 && l.queued_requests == 2 && l.active_kv_blocks == 250 && l.total_kv_blocks == 1000;
  }));
  EXPECT_FALSE(e->unavailable_reason().has_value());
  server.healthy = false;  // two failed checks in a row: the worker drains
  ASSERT_TRUE(eventually([&] { return e->unavailable_reason().has_value(); }));
  EXPECT_NE(e->unavailable_reason()->find("HTTP 503"), std::string::npos) << *e->unavailable_reason();
  backends::engine_request r;
  r.request_id = "refused";
  r.prompt = {1};
  auto s = e->add_request(r);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().code, errc::unavailable);
  server.healthy = true;
  EXPECT_TRUE(eventually([&] { return !e->unavailable_reason().has_value(); }));
}

TEST(openai_upstream_engine, bad_options_are_errors_not_crashes) {
  backends::external::openai_upstream_options o;
  o.tokenizer = std::make_shared<backends::byte_tokenizer>();
  o.detokenize = [](const std::vector<msg::token_id>&) { return std::string(); };
  o.upstream = "127.0.0.1:8000";
  auto a = backends::external::make_openai_upstream_engine(o);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.err().code, errc::bad_request);
  o.upstream = "http://127.0.0.1:1";  // nothing listens, and the model must be learnt from it
  auto b = backends::external::make_openai_upstream_engine(o);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.err().code, errc::unavailable);
  EXPECT_NE(b.err().message.find("--upstream-model"), std::string::npos);
  o.model = "named";  // named: the worker starts and drains until the server answers
  o.poll_ms = 50;
  auto c = backends::external::make_openai_upstream_engine(o);
  ASSERT_TRUE(c.ok()) << c.err().describe();
  EXPECT_TRUE(eventually([&] { return (*c)->unavailable_reason().has_value(); }));
  o.kv_events_endpoint = "tcp://127.0.0.1:1";
  o.kv_events_source = "tensorrt";
  auto d = backends::external::make_openai_upstream_engine(o);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.err().message.find("tensorrt"), std::string::npos);
}
