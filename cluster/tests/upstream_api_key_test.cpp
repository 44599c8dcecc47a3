// cluster/tests/upstream_api_key_test.cpp — `--upstream-api-key-file` on an `--engine openai` worker: the key
// read from the file's first line goes as `Authorization: Bearer <key>` on every call to the upstream (model
// listing, completions, metrics); a missing file is an error naming the flag; a wrong key is refused by the
// upstream with an error that names the flag, not a hang. The server is a cpp-httplib one written here.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <unistd.h>

#include "cluster/process_options.hpp"

namespace {

using namespace yard;

// An OpenAI-compatible server that answers only requests carrying `Bearer <key>`, and records which paths saw it.
class keyed_server {
 public:
  explicit keyed_server(std::string key) : key_(std::move(key)) {
    srv_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (req.get_header_value("Authorization") != "Bearer " + key_) {
        res.status = 401;
        res.set_content(R"({"error":{"message":"invalid api key"}})", "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }
      std::lock_guard lk(mu_);
      authorised_.insert(req.path);
      return httplib::Server::HandlerResponse::Unhandled;
    });
    srv_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object":"list","data":[{"id":"keyed","object":"model","max_model_len":512}]})", "application/json");
    });
    srv_.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
    srv_.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("vllm:num_requests_running 0\n", "text/plain");
    });
    srv_.Post("/v1/completions", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("data: {\"choices\":[{\"index\":0,\"text\":\"ok\",\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
                      "text/event-stream");
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
  }
  ~keyed_server() {
    srv_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  bool saw_key_on(const std::string& path) {
    std::lock_guard lk(mu_);
    return authorised_.count(path) > 0;
  }

 private:
  std::string key_;
  httplib::Server srv_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::set<std::string> authorised_;
};

struct key_file {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("yard-upstream-key-" + std::to_string(::getpid()));
  explicit key_file(const std::string& content) { std::ofstream(path) << content; }
  ~key_file() { std::filesystem::remove(path); }
};

cluster::engine_options openai_options(const keyed_server& s, const std::string& key_path) {
  cluster::engine_options o;
  o.engine = "openai";
  o.model = "mock";  // the byte tokenizer
  o.upstream.url = s.url();
  o.upstream.api_key_file = key_path;
  o.upstream.poll_ms = 50;
  return o;
}

TEST(upstream_api_key, the_key_file_goes_as_a_bearer_token_on_every_call) {
  keyed_server server("sk-yard-test");
  key_file f("sk-yard-test\nsecond line is ignored\n");
  auto e = cluster::make_engine(openai_options(server, f.path.string()));
  ASSERT_TRUE(e.ok()) << e.err().describe();
  EXPECT_EQ((*e)->max_context(), 512u);  // the model listing answered: the key went with it
  backends::engine_request r;
  r.request_id = "k1";
  r.prompt = {'h', 'i'};
  r.max_tokens = 8;
  ASSERT_TRUE((*e)->add_request(r).ok());
  std::string text;
  bool finished = false;
  std::string error_text;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!finished && std::chrono::steady_clock::now() < until) {
    for (auto& o : (*e)->step().outputs) {
      text += o.text_delta;
      if (o.error_message) error_text = *o.error_message;
      if (o.finish_reason) finished = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(finished);
  EXPECT_EQ(error_text, "");
  EXPECT_EQ(text, "ok");
  EXPECT_TRUE(server.saw_key_on("/v1/models"));
  EXPECT_TRUE(server.saw_key_on("/v1/completions"));
  auto polled = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server.saw_key_on("/metrics") && std::chrono::steady_clock::now() < polled)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(server.saw_key_on("/metrics")) << "the load poller must send the key too";
}

TEST(upstream_api_key, a_missing_file_names_the_flag_and_a_wrong_key_is_a_clear_error) {
  keyed_server server("sk-right");
  auto missing = cluster::make_engine(openai_options(server, "/nonexistent/yard-key"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.err().message.find("--upstream-api-key-file"), std::string::npos) << missing.err().message;

  key_file wrong("sk-wrong\n");
  auto e = cluster::make_engine(openai_options(server, wrong.path.string()));
  // The model listing is refused: with no --upstream-model the worker cannot name the model and says why.
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.err().message.find("401"), std::string::npos) << e.err().message;
  EXPECT_NE(e.err().message.find("--upstream-api-key-file"), std::string::npos) << e.err().message;
}

}  // namespace
