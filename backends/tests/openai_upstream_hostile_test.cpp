// The external engine against servers that do not keep the protocol: output past max_tokens, stop strings
// ignored, a finish cut before [DONE], an over-long stream event, ids past 32 bits, a vLLM "abort", 5xx answers
// while the health check passes, a stream that hangs while the server is down, an absurd max_model_len. Each
// must end the client's request where it asked, or with a clear `unavailable` (which migrates it), never hang.
// The server is cpp-httplib in the test; each test gives it the script of its /v1/completions stream.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backends/external/openai_upstream_engine.hpp"

using namespace yard;
using nlohmann::json;

namespace {

// One completions event: `text` with its ids (one per byte, the byte tokenizer's), and an optional finish.
std::string event(const std::string& text, const char* finish = nullptr) {
  json ids = json::array();
  for (unsigned char ch : text) ids.push_back(ch);
  json c = {{"choices", {{{"index", 0}, {"text", text}, {"token_ids", ids},
                          {"finish_reason", finish ? json(finish) : json(nullptr)}}}}};
  return "data: " + c.dump() + "\n\n";
}

class scripted_server {
 public:
  using script = std::function<bool(httplib::DataSink&)>;  // false: drop the connection without ending the body

  explicit scripted_server(std::string models = R"({"data":[{"id":"m","max_model_len":2048}]})")
      : models_(std::move(models)) {
    srv_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { res.set_content(models_, "application/json"); });
    srv_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(std::chrono::milliseconds(health_delay_ms.load()));
      res.status = healthy ? 200 : 503;
    });
    srv_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_body, "text/plain");
    });
    srv_.Post("/v1/completions", [this](const httplib::Request&, httplib::Response& res) {
      posts++;
      if (status != 200) {
        res.status = status;
        res.set_content(R"({"error":{"message":"engine exploded"}})", "application/json");
        return;
      }
      res.set_chunked_content_provider(content_type, [this](std::size_t, httplib::DataSink& sink) {
        script s;
        {
          std::lock_guard lk(mu_);
          s = stream;
        }
        if (!s(sink)) return false;
        sink.done();
        return true;
      });
    });
    port = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
  }
  ~scripted_server() {
    release = true;
    srv_.stop();
    thread_.join();
  }
  void set_stream(script s) {
    std::lock_guard lk(mu_);
    stream = std::move(s);
  }

  int port = 0;
  const char* content_type = "text/event-stream";  // set before the first request
  std::string metrics_body;                        // set before the engine starts
  std::atomic<int> health_delay_ms{0};
  std::atomic<bool> healthy{true}, release{false}, client_left{false};
  std::atomic<int> status{200}, posts{0};

 private:
  std::string models_;
  httplib::Server srv_;
  std::thread thread_;
  std::mutex mu_;
  script stream;
};

std::unique_ptr<backends::engine> engine_for(const scripted_server& s, int health_timeout_ms = 5000,
                                             bool metrics = false) {
  backends::external::openai_upstream_options o;
  o.upstream = "http://127.0.0.1:" + std::to_string(s.port);
  o.poll_ms = 50;
  o.health_timeout_ms = health_timeout_ms;
  o.metrics_path = metrics ? "/metrics" : "";
  o.tokenizer = std::make_shared<backends::byte_tokenizer>();
  o.detokenize = [](const std::vector<msg::token_id>& ids) { return std::string(ids.begin(), ids.end()); };
  auto e = backends::external::make_openai_upstream_engine(std::move(o));
  EXPECT_TRUE(e.ok()) << e.err().describe();
  return e ? std::move(*e) : nullptr;
}

struct outcome {
  std::string text;
  std::size_t tokens = 0;
  std::optional<msg::finish_kind> finish;
  std::optional<errc> error;
  std::string message;
  msg::usage usage;
};

// Runs one request to its end (or 10 s).
outcome run(backends::engine& e, backends::engine_request r) {
  outcome out;
  if (r.request_id.empty()) r.request_id = "r";
  if (r.prompt.empty()) r.prompt = {1, 2, 3};
  auto s = e.add_request(r);
  if (!s) {
    out.error = s.err().code;
    out.message = s.err().message;
    return out;
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!out.finish && std::chrono::steady_clock::now() < until) {
    for (auto& o : e.step().outputs) {
      out.text += o.text_delta;
      out.tokens += o.new_tokens.size();
      if (o.finish_reason) {
        out.finish = o.finish_reason;
        out.usage = o.usage_info;
        if (o.error_message) {
          out.error = o.error_code;
          out.message = *o.error_message;
        }
      }
    }
  }
  return out;
}

// Writes `ev` every few ms until the client goes away (or `n` events); notes a client that left.
scripted_server::script endless(scripted_server& srv, std::string ev, int n = 2000) {
  return [&srv, ev = std::move(ev), n](httplib::DataSink& sink) {
    for (int i = 0; i < n && !srv.release; ++i) {
      if (!sink.write(ev.data(), ev.size())) {
        srv.client_left = true;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  };
}

}  // namespace

TEST(openai_upstream_hostile, output_past_max_tokens_is_cut_and_the_upstream_closed) {
  scripted_server srv;
  srv.set_stream(endless(srv, event("a")));
  auto e = engine_for(srv);
  ASSERT_NE(e, nullptr);
  backends::engine_request r;
  r.max_tokens = 8;
  auto o = run(*e, r);
  ASSERT_TRUE(o.finish);
  EXPECT_EQ(*o.finish, msg::finish_kind::length);
  EXPECT_FALSE(o.error);
  EXPECT_EQ(o.tokens, 8u);
  EXPECT_EQ(o.text, "aaaaaaaa");
  EXPECT_EQ(o.usage.completion_tokens, 8u);
  EXPECT_TRUE([&] {
    for (int i = 0; i < 500 && !srv.client_left; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return srv.client_left.load();
  }()) << "the worker kept reading a stream it had ended";
  // One event carrying more ids than the budget left: cut inside the event, its text rebuilt from the kept ids.
  srv.set_stream([](httplib::DataSink& sink) {
    auto ev = event("xyz0123456789");
    return sink.write(ev.data(), ev.size());
  });
  r.request_id = "one-big-event";
  r.max_tokens = 5;
  o = run(*e, r);
  EXPECT_EQ(o.text, "xyz01");
  EXPECT_EQ(o.tokens, 5u);
  ASSERT_TRUE(o.finish);
  EXPECT_EQ(*o.finish, msg::finish_kind::length);
}

TEST(openai_upstream_hostile, stop_strings_hold_when_the_server_ignores_them) {
  scripted_server srv;
  srv.set_stream([](httplib::DataSink& sink) {
    for (const char* t : {"aaab", "ccc"}) {
      auto ev = event(t);
      if (!sink.write(ev.data(), ev.size())) return false;
    }
    auto fin = event("", "length") + "data: [DONE]\n\n";
    return sink.write(fin.data(), fin.size());
  });
  auto e = engine_for(srv);
  ASSERT_NE(e, nullptr);
  backends::engine_request r;
  r.max_tokens = 64;
  r.stop = {"b"};
  auto o = run(*e, r);
  EXPECT_EQ(o.text, "aaa");
  ASSERT_TRUE(o.finish);
  EXPECT_EQ(*o.finish, msg::finish_kind::stop);
  // A stop string split across events, held back until the next decides it.
  r.request_id = "split";
  r.stop = {"abc"};
  o = run(*e, r);
  EXPECT_EQ(o.text, "aa");  // "aaab" holds back "ab" (it may start "abc"); "ccc" completes the match
  ASSERT_TRUE(o.finish);
  EXPECT_EQ(*o.finish, msg::finish_kind::stop);
}

TEST(openai_upstream_hostile, a_stream_cut_after_its_finish_is_whole) {
  scripted_server srv;
  srv.set_stream([](httplib::DataSink& sink) {
    auto evs = event("Hello") + event(" world", "stop");
    sink.write(evs.data(), evs.size());
    return false;  // no usage, no [DONE], no end of the chunked body
  });
  auto e = engine_for(srv);
  ASSERT_NE(e, nullptr);
  backends::engine_request r;
  r.max_tokens = 64;
  auto o = run(*e, r);
  EXPECT_FALSE(o.error) << o.message;
  EXPECT_EQ(o.text, "Hello world");
  ASSERT_TRUE(o.finish);
  EXPECT_EQ(*o.finish, msg::finish_kind::stop);
}

TEST(openai_upstream_hostile, broken_events_end_the_request_unavailable) {
  scripted_server srv;
  auto e = engine_for(srv);
  ASSERT_NE(e, nullptr);
  auto expect_unavailable = [&](const std::string& id, scripted_server::script s, const std::string& says) {
    srv.set_stream(std::move(s));
    backends::engine_request r;
    r.request_id = id;
    r.max_tokens = 64;
    auto o = run(*e, r);
    ASSERT_TRUE(o.finish) << id;
    EXPECT_EQ(o.error, errc::unavailable) << id << ": " << o.message;
    EXPECT_NE(o.message.find(says), std::string::npos) << id << ": " << o.message;
  };
  // 5 MiB of one event's data with no end of the event.
  expect_unavailable("over-long", [](httplib::DataSink& sink) {
    std::string head = "data: ", block(64 * 1024, 'y');
    if (!sink.write(head.data(), head.size())) return false;
    for (int i = 0; i < 80; ++i)
      if (!sink.write(block.data(), block.size())) return false;
    return true;
  }, "over 4194304 bytes");
  expect_unavailable("wide-id", [](httplib::DataSink& sink) {
    std::string ev = R"(data: {"choices":[{"index":0,"text":"a","token_ids":[4294967393]}]})" "\n\n";
    return sink.write(ev.data(), ev.size());
  }, "non-id");
  expect_unavailable("abort", [](httplib::DataSink& sink) {
    auto ev = event("a") + event("", "abort");
    return sink.write(ev.data(), ev.size());
  }, "abort");
  // Three failures in a row while the health check passes: the worker holds itself out (see below).
  EXPECT_TRUE(e->unavailable_reason().has_value());
}

TEST(openai_upstream_hostile, a_page_that_is_not_an_event_stream_is_named_as_such) {
  scripted_server srv;
  srv.content_type = "text/html";
  srv.set_stream([](httplib::DataSink& sink) {
    std::string page = "<html><body>login</body></html>";
    return sink.write(page.data(), page.size());
  });
  auto e = engine_for(srv);
  ASSERT_NE(e, nullptr);
  backends::engine_request r;
  r.max_tokens = 4;
  auto o = run(*e, r);
  EXPECT_EQ(o.error, errc::unavailable);
  EXPECT_NE(o.message.find("Content-Type 'text/html', not an event stream"), std::string::npos) << o.message;
}

TEST(openai_upstream_hostile, a_server_failing_requests_while_healthy_is_held_out) {
  scripted_server srv;
  srv.status = 500;
  auto e = engine_for(srv);
  ASSERT_NE(e, nullptr);
  for (int i = 0; i < 3; ++i) {
    backends::engine_request r;
    r.request_id = "f" + std::to_string(i);
    r.max_tokens = 4;
    auto o = run(*e, r);
    EXPECT_EQ(o.error, errc::unavailable) << o.message;
    EXPECT_NE(o.message.find("HTTP 500: engine exploded"), std::string::npos) << o.message;
  }
  auto why = e->unavailable_reason();
  ASSERT_TRUE(why.has_value()) << "three 500s in a row while /health says 200";
  EXPECT_NE(why->find("3 requests in a row"), std::string::npos) << *why;
  backends::engine_request r;
  r.request_id = "while-held";
  EXPECT_EQ(run(*e, r).error, errc::unavailable);
  EXPECT_EQ(srv.posts.load(), 3) << "a held worker sends nothing upstream";
}

TEST(openai_upstream_hostile, a_silent_stream_ends_when_the_server_is_called_down) {
  scripted_server srv;
  srv.set_stream([&srv](httplib::DataSink& sink) {
    auto ev = event("a");
    if (!sink.write(ev.data(), ev.size())) return false;
    while (!srv.release) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // hangs
    return false;
  });
  auto e = engine_for(srv, /*health_timeout_ms=*/200);
  ASSERT_NE(e, nullptr);
  backends::engine_request r;
  r.request_id = "hung";
  r.prompt = {1, 2, 3};
  r.max_tokens = 64;
  ASSERT_TRUE(e->add_request(r).ok());
  std::size_t tokens = 0;
  for (int i = 0; i < 100 && tokens == 0; ++i)
    for (auto& o : e->step().outputs) tokens += o.new_tokens.size();
  ASSERT_EQ(tokens, 1u);
  srv.healthy = false;  // two failed checks: called down; the stream has said nothing since its first token
  outcome o;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!o.finish && std::chrono::steady_clock::now() < until)
    for (auto& out : e->step().outputs)
      if (out.finish_reason) {
        o.finish = out.finish_reason;
        if (out.error_message) o.message = *out.error_message;
        o.error = out.error_code;
      }
  ASSERT_TRUE(o.finish) << "a hung stream outlived the server's down verdict";
  EXPECT_EQ(*o.finish, msg::finish_kind::error);
  EXPECT_EQ(o.error, errc::unavailable);
  EXPECT_NE(o.message.find("silent"), std::string::npos) << o.message;
}

TEST(openai_upstream_hostile, a_context_that_is_not_a_models_is_ignored) {
  scripted_server srv(R"({"data":[{"id":"m","max_model_len":4294967301}]})");
  auto e = engine_for(srv);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->max_context(), 8192u) << "2^32 + 5 must not wrap to a context of 5";
}

// A health answer slower than the timeout is a failed check that says so; a metrics page over 4 MiB is not read
// (the worker's own counts stand), and a sane one is.
TEST(openai_upstream_hostile, a_slow_health_check_and_a_huge_metrics_page_are_bounded) {
  scripted_server srv;
  srv.metrics_body = "vllm:num_requests_running 7\n" + std::string(5u << 20, '#') + "\n";
  auto e = engine_for(srv, /*health_timeout_ms=*/200, /*metrics=*/true);
  ASSERT_NE(e, nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a few polls
  EXPECT_EQ(e->load().active_requests, 0u) << "a 5 MiB page was read";
  srv.health_delay_ms = 400;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!e->unavailable_reason() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(e->unavailable_reason().has_value()) << "health answers 400 ms late against a 200 ms timeout";
  EXPECT_NE(e->unavailable_reason()->find("no answer within 200 ms"), std::string::npos) << *e->unavailable_reason();
}
