// Bad input at every edge: subjects, HTTP, disconnecting clients, NATS outages.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "messages/codec.hpp"
#include "messages/subjects.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
using nlohmann::json;
namespace ts = yard::test_support;

namespace {

class bad_input : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    nats_ = ts::start_nats().release();
    ASSERT_NE(nats_, nullptr);
    node_ = ts::start_cluster(nats_->url(), {.workers = 2, .token_delay_ms = 5, .max_body_bytes = 64 * 1024}).release();
    ASSERT_NE(node_, nullptr);
    transport::nats_options no;
    no.servers = {nats_->url()};
    client_ = transport::nats_connection::connect(no)->release();
  }
  static void TearDownTestSuite() {
    delete client_;
    delete node_;
    delete nats_;
  }

  // One request on `subject`; returns the first reply chunk decoded (format auto).
  static result<msg::token_chunk> first_reply(const std::string& subject, const std::string& body,
                                              const std::string& content_type = {}) {
    auto r = client_->request(subject, body, 3000, content_type);
    if (!r) return r.err();
    return msg::decode_auto<msg::token_chunk>(r->data, r->content_type);
  }

  // The router must still serve after bad input.
  static void expect_still_serving() {
    msg::generate_request ok;
    ok.request_id = "after-bad-input-" + std::to_string(counter_++);
    ok.prompt = "fine";
    ok.max_tokens = 1;
    auto r = first_reply(subjects::router_generate("default"), msg::encode(ok));
    ASSERT_TRUE(r.ok()) << r.err().describe();
    EXPECT_FALSE(r->error.has_value());
    EXPECT_FALSE(r->worker_id.empty()) << "the first reply is the worker's admission ack";
  }

  static transport::nats_server_process* nats_;
  static cluster::node_runtime* node_;
  static transport::nats_connection* client_;
  static inline int counter_ = 0;
};
transport::nats_server_process* bad_input::nats_ = nullptr;
cluster::node_runtime* bad_input::node_ = nullptr;
transport::nats_connection* bad_input::client_ = nullptr;

TEST_F(bad_input, malformed_json_on_the_generate_subject_gets_a_json_error) {
  auto r = client_->request(subjects::router_generate("default"), "{\"request_id\": \"x\", ", 3000);
  ASSERT_TRUE(r.ok());
  auto j = json::parse(r->data);
  EXPECT_EQ(j["finish_reason"], "error");
  EXPECT_EQ(j["error"]["code"], 400);
  expect_still_serving();
}

TEST_F(bad_input, malformed_msgpack_gets_a_msgpack_error) {
  auto r = first_reply(subjects::router_generate("default"), std::string("\x82\xa1" "a\xc1", 4), "application/msgpack");
  ASSERT_TRUE(r.ok()) << r.err().describe();
  ASSERT_TRUE(r->error.has_value());
  EXPECT_EQ(r->error->code, 400);
  expect_still_serving();
}

TEST_F(bad_input, missing_fields_and_wrong_types_name_the_field) {
  // A missing request_id is not an error: the router names the request, and the reply says which id.
  auto r = first_reply(subjects::router_generate("default"), R"({"prompt":"no id","max_tokens":2})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->error.has_value());
  EXPECT_FALSE(r->request_id.empty());
  auto w = first_reply(subjects::router_generate("default"), R"({"request_id":7,"prompt":"x"})");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->error.has_value());
  EXPECT_NE(w->error->message.find("request_id"), std::string::npos);
  auto t = first_reply(subjects::router_generate("default"), R"({"request_id":"t","max_tokens":"ten"})");
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t->error.has_value());
  EXPECT_NE(t->error->message.find("max_tokens"), std::string::npos);
  // A request with no prompt at all reaches a worker, which says what is missing.
  auto e = first_reply(subjects::router_generate("default"), R"({"request_id":"empty"})");
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e->error.has_value());
  EXPECT_EQ(e->error->code, 400);
  expect_still_serving();
}

TEST_F(bad_input, oversize_body_on_a_subject_gets_413) {
  std::string big = R"({"request_id":"big","prompt":")" + std::string(5u << 20, 'a') + "\"}";
  auto r = first_reply(subjects::router_generate("default"), big);
  ASSERT_TRUE(r.ok()) << r.err().describe();
  ASSERT_TRUE(r->error.has_value());
  EXPECT_EQ(r->error->code, 413);
  expect_still_serving();
}

// A 1 MB JSON prompt: as token ids and hashes the router's forward would be over 4 MiB of JSON, so it goes as
// sent, and the answer is about the prompt's length, never a body size the client did not send.
TEST_F(bad_input, a_large_json_prompt_is_judged_by_its_length_not_by_its_forwarded_size) {
  json huge = {{"request_id", "huge"}, {"prompt", std::string(1000000, 'a')}, {"max_tokens", 2}};
  auto r = first_reply(subjects::router_generate("default"), huge.dump(), "application/json");
  ASSERT_TRUE(r.ok()) << r.err().describe();
  ASSERT_TRUE(r->error.has_value());
  EXPECT_EQ(r->error->code, 400) << r->error->message;
  EXPECT_NE(r->error->message.find("context"), std::string::npos) << r->error->message;
  expect_still_serving();
}

// The sampling ranges the HTTP parser enforces hold for a body sent straight over NATS too.
TEST_F(bad_input, sampling_out_of_range_on_a_subject_is_400_naming_the_field) {
  for (const char* sampling : {R"({"temperature":-1})", R"({"top_p":0})", R"({"top_logprobs":1000})",
                               R"({"repetition_penalty":0})", R"({"logit_bias":[{"token":1,"bias":1e30}]})",
                               R"({"min_tokens":100})"}) {
    SCOPED_TRACE(sampling);
    auto r = first_reply(subjects::router_generate("default"),
                         std::string(R"({"request_id":"samp","prompt":"x","max_tokens":2,"sampling":)") + sampling + "}");
    ASSERT_TRUE(r.ok()) << r.err().describe();
    ASSERT_TRUE(r->error.has_value());
    EXPECT_EQ(r->error->code, 400);
    EXPECT_NE(r->error->message.find("sampling."), std::string::npos) << r->error->message;
  }
  expect_still_serving();
}

// A status probe or a KV snapshot request asked in JSON is answered in JSON.
TEST_F(bad_input, json_questions_on_worker_subjects_get_json_answers) {
  for (const auto& subject : {subjects::worker_status("default", "w0"), subjects::kv_snapshot("default", "w0")}) {
    auto r = client_->request(subject, "{}", 3000, "application/json");
    ASSERT_TRUE(r.ok()) << subject << ": " << r.err().describe();
    EXPECT_EQ(r->content_type, "application/json") << subject;
    EXPECT_FALSE(json::parse(r->data, nullptr, false).is_discarded()) << subject;
  }
}

// A cancel that overtakes its request (the cancel goes straight to the workers, the request through the router)
// still ends it: the request arrives to a "cancelled" at once instead of running its 400 tokens. Another id, or
// the same id's next attempt, is not touched.
TEST_F(bad_input, a_cancel_that_overtakes_its_request_still_ends_it) {
  client_->publish(subjects::worker_cancel("default"), R"({"request_id":"overtaken"})", {}, "application/json");
  client_->publish(subjects::worker_cancel("default"), R"({"request_id":"moved","attempt":0})", {}, "application/json");
  client_->flush();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto r = first_reply(subjects::router_generate("default"), R"({"request_id":"overtaken","prompt":"x","max_tokens":400})");
  ASSERT_TRUE(r.ok()) << r.err().describe();
  EXPECT_EQ(r->finish_reason, msg::finish_kind::cancelled);
  EXPECT_FALSE(r->error.has_value());
  auto next = first_reply(subjects::router_generate("default"),
                          R"({"request_id":"moved","attempt":1,"prompt":"x","max_tokens":1})");
  ASSERT_TRUE(next.ok()) << next.err().describe();
  EXPECT_NE(next->finish_reason, msg::finish_kind::cancelled) << "only the cancelled attempt is ended";
  expect_still_serving();
}

TEST_F(bad_input, unknown_subject_fails_fast_with_no_responders) {
  auto r = client_->request("yard.default.nothing.here", "{}", 3000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable) << r.err().describe();
}

TEST_F(bad_input, unknown_model_on_a_subject_is_404) {
  auto r = first_reply(subjects::router_generate("default"), R"({"request_id":"m","prompt":"x","model":"gpt-99"})");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->error.has_value());
  EXPECT_EQ(r->error->code, 404);
}

TEST_F(bad_input, http_errors_use_openai_schema_and_status_codes) {
  httplib::Client cli("127.0.0.1", node_->http_port());
  auto bad_json = cli.Post("/v1/completions", "{not json", "application/json");
  ASSERT_TRUE(bad_json);
  EXPECT_EQ(bad_json->status, 400);
  EXPECT_EQ(json::parse(bad_json->body)["error"]["type"], "invalid_request_error");
  auto missing = cli.Post("/v1/chat/completions", R"({"model":"mock"})", "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 400);
  EXPECT_NE(json::parse(missing->body)["error"]["message"].get<std::string>().find("messages"), std::string::npos);
  auto wrong_type = cli.Post("/v1/completions", R"({"prompt":"x","max_tokens":"many"})", "application/json");
  ASSERT_TRUE(wrong_type);
  EXPECT_EQ(wrong_type->status, 400);
  auto model = cli.Post("/v1/completions", R"({"prompt":"x","model":"nope"})", "application/json");
  ASSERT_TRUE(model);
  EXPECT_EQ(model->status, 404);
  auto model_err = json::parse(model->body)["error"];  // what OpenAI answers, and its clients branch on
  EXPECT_EQ(model_err["code"], "model_not_found");
  EXPECT_EQ(model_err["type"], "invalid_request_error");
  EXPECT_EQ(model_err["param"], "model");
  auto too_long = cli.Post("/v1/completions", R"({"prompt":"x","max_tokens":100000000})", "application/json");
  ASSERT_TRUE(too_long);
  EXPECT_EQ(too_long->status, 400);
  EXPECT_EQ(json::parse(too_long->body)["error"]["code"], "context_length_exceeded") << too_long->body;
  auto route = cli.Get("/v1/nothing");
  ASSERT_TRUE(route);
  EXPECT_EQ(route->status, 404);
  EXPECT_TRUE(json::parse(route->body).contains("error"));
  auto big = cli.Post("/v1/completions", std::string(100 * 1024, ' '), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
}

TEST_F(bad_input, http_garbage_gets_400_and_the_server_keeps_serving) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(node_->http_port()));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  std::string garbage = "\x01\x02 GARBAGE \xff\r\n\r\n";
  ASSERT_GT(send(fd, garbage.data(), garbage.size(), 0), 0);
  char buf[512] = {0};
  auto n = recv(fd, buf, sizeof(buf) - 1, 0);
  close(fd);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buf).find(" 400 "), std::string::npos) << buf;
  httplib::Client cli("127.0.0.1", node_->http_port());
  auto ok = cli.Post("/v1/completions", R"({"prompt":"x","max_tokens":2})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

// Sums active+queued requests over the workers' latest heartbeats.
struct load_watch {
  explicit load_watch(transport::nats_connection& c) {
    sub = *c.subscribe(subjects::heartbeat_all("default"), [this](transport::nats_message m) {
      auto hb = msg::decode_auto<msg::heartbeat>(m.data, m.content_type);
      if (!hb || !hb->load) return;
      std::lock_guard<std::mutex> lock(mu);
      busy[hb->instance_id] = hb->load->active_requests + hb->load->queued_requests;
    });
  }
  std::uint32_t total() {
    std::lock_guard<std::mutex> lock(mu);
    std::uint32_t t = 0;
    for (auto& [k, v] : busy) t += v;
    return t;
  }
  std::mutex mu;
  std::map<std::string, std::uint32_t> busy;
  transport::subscription sub;
};

TEST_F(bad_input, client_disconnect_mid_stream_stops_the_worker) {
  load_watch watch(*client_);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(node_->http_port()));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  // No max_tokens: the stream runs to the end of the mock's context (4096 tokens), far past the disconnect.
  std::string body = R"({"prompt":"long one","stream":true})";
  std::string req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_GT(send(fd, req.data(), req.size(), 0), 0);
  char buf[4096];
  std::string got;
  while (got.find("data: ") == std::string::npos) {
    auto n = recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    got.append(buf, static_cast<std::size_t>(n));
  }
  ASSERT_TRUE(ts::eventually([&] { return watch.total() >= 1; }, 5000)) << "the worker never reported the request";
  close(fd);  // the client goes away mid-stream
  EXPECT_TRUE(ts::eventually([&] { return watch.total() == 0; }, 5000))
      << "the worker kept generating for a client that left";
}

TEST(nats_outage, worker_without_a_nats_server_exits_with_a_clear_error) {
  int port = transport::free_loopback_port();
  ts::yard_process worker({"worker", "--nats", "nats://127.0.0.1:" + std::to_string(port), "--id", "lonely"});
  EXPECT_EQ(worker.wait_exit(15000), 1);
}

TEST(nats_outage, cluster_serves_again_after_the_nats_server_restarts) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto node = ts::start_cluster(nats->url(), {.workers = 1, .token_delay_ms = 1});
  ASSERT_NE(node, nullptr);
  httplib::Client cli("127.0.0.1", node->http_port());
  auto first = cli.Post("/v1/completions", R"({"prompt":"x","max_tokens":2})", "application/json");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200);
  ASSERT_TRUE(nats->restart().ok());
  EXPECT_TRUE(ts::eventually([&] { return node->nats().connected(); }, 15000)) << "no reconnect";
  bool served = ts::eventually(
      [&] {
        auto r = cli.Post("/v1/completions", R"({"prompt":"y","max_tokens":2})", "application/json");
        return r && r->status == 200;
      },
      15000);
  EXPECT_TRUE(served);
  EXPECT_GE(node->nats().reconnects(), 1u);
}

}  // namespace

// Flag values that used to abort a process (bad_alloc, length_error: exit 134), flood the bus (a 0 ms period),
// wrap (a port of 70000 served on 4464) or reach other workers (an id of '*' subscribed to every worker's
// subject): each is refused at start with a plain non-zero exit, before anything is allocated or connected.
TEST(bad_flags, values_out_of_range_are_refused_at_start_not_crashes) {
  auto server = ts::start_nats();  // a flag taken by mistake starts a process that runs: the wait times out (-1)
  ASSERT_NE(server, nullptr);
  const std::string nats = server->url();
  const std::string trace = ::testing::TempDir() + "bad_flags_trace.jsonl";
  {
    std::ofstream f(trace);
    for (int i = 0; i < 3; ++i)
      f << R"({"timestamp":)" << i * 100 << R"(,"input_length":600,"output_length":8,"hash_ids":[1,2]})" << "\n";
  }
  const std::vector<std::vector<std::string>> cases = {
      {"worker", "--nats", nats, "--id", "*"},
      {"worker", "--nats", nats, "--id", "a.b"},
      {"worker", "--nats", nats, "--id", "w0", "--heartbeat-ms", "0"},
      {"worker", "--nats", nats, "--id", "w0", "--namespace", ">"},
      {"frontend", "--nats", nats, "--http-port", "70000"},
      {"frontend", "--nats", nats, "--max-body-bytes", "-1"},
      {"up", "--nats-port", "70000"},
      {"planner", "--nats", nats, "--interval-ms", "0", "--dry-run"},
      {"bus-config", "--user", "u:worker:*"},
      {"bus-config", "--namespace", ">"},
      {"sim", "--trace", trace, "--workers", "2", "--sweep", "workers=99999999999"},
      {"bench", "engine", "--threads", "100000"},
      {"bench", "engine", "--prefill-tokens", "-1"},
      {"bench", "edge", "--quick", "--streams", "-1"},
      {"bench", "tiers", "--mib", "-1"},
      {"up", "--nats", ""},  // was read as no --nats: an embedded cluster started
      {"mkmodel", "--preset", "tiny", "--out", ::testing::TempDir() + "bad_flags_model", "--rope-scaling", "bogus"},
  };
  for (const auto& args : cases) {
    std::string line;
    for (const auto& a : args) line += a + " ";
    ts::yard_process p(args);
    const int code = p.wait_exit(10000);
    EXPECT_GT(code, 0) << line << ": accepted (or timed out: -1)";
    EXPECT_LT(code, 128) << line << ": ended by a signal";
  }
  // The same commands with good values are taken (the check above is not a refusal of everything).
  EXPECT_EQ(ts::yard_process({"bus-config", "--user", "u:worker:w0"}).wait_exit(10000), 0);
  ts::yard_process good({"worker", "--nats", nats, "--id", "w-0_ok", "--heartbeat-ms", "100"});
  EXPECT_EQ(good.wait_exit(1500), -1) << "a worker with good flags runs";
  std::remove(trace.c_str());
}

// A body the frontend takes (under --max-body-bytes) but a NATS server with the default max_payload (1 MiB)
// refuses: a 413 at once, naming max_payload, not three dispatches and a 503 after the ack timeout (seen: 6 s).
TEST(bad_flags, a_request_over_the_nats_max_payload_is_a_413_at_once) {
  transport::nats_server_options so;
  so.max_payload_bytes = 1u << 20;
  auto server = transport::nats_server_process::start(so);
  ASSERT_TRUE(server.ok()) << server.err().describe();
  auto node = ts::start_cluster((*server)->url(), {.workers = 1, .token_delay_ms = 1});
  ASSERT_NE(node, nullptr);
  httplib::Client cli("127.0.0.1", node->http_port());
  cli.set_read_timeout(20, 0);
  json body = {{"model", "mock"}, {"prompt", std::string(2u << 20, 'a')}, {"max_tokens", 1}};
  auto r = cli.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413) << r->body << " (it was a 503 after three dispatches)";
  EXPECT_NE(r->body.find("max_payload"), std::string::npos) << r->body;
  auto ok = cli.Post("/v1/completions", json({{"model", "mock"}, {"prompt", "hi"}, {"max_tokens", 2}}).dump(), "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}
