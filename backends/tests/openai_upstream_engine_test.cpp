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

std::unique_ptr<backends::engine> engine_for(const fake_server& s) {
  backends::external::openai_upstream_options o;
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
