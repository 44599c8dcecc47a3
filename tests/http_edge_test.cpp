// tests/http_edge_test.cpp — the event-driven HTTP edge under many clients and
// bad clients: hundreds of concurrent streams, slowloris, the connection cap,
// cancel on disconnect (non-streamed), graceful drain, keep-alive reuse.
// Real nats-server, in-process mock workers; plain sockets as clients.
#include <httplib.h>

#include <atomic>
#include <thread>

#include "messages/codec.hpp"
#include "messages/subjects.hpp"
#include "tests/support/cluster_fixture.hpp"
#include "tests/support/raw_http.hpp"

namespace yard {
namespace {

using test_support::eventually;
using test_support::raw_socket;

std::unique_ptr<cluster::node_runtime> start_edge(const std::string& url, actors::http_options http, double token_delay_ms,
                                                  int workers = 1) {
  transport::nats_options no;
  no.servers = {url};
  auto rt = cluster::node_runtime::create(no);
  if (!rt) {
    ADD_FAILURE() << rt.err().describe();
    return nullptr;
  }
  cluster::engine_options eng;
  eng.token_delay_ms = token_delay_ms;
  for (int i = 0; i < workers; ++i) {
    actors::worker_config wc;
    wc.id = "w" + std::to_string(i);
    wc.heartbeat_ms = 100;
    EXPECT_TRUE((*rt)->add_worker(eng, wc).ok());
  }
  EXPECT_TRUE((*rt)->add_router({}).ok());
  http.host = "127.0.0.1";
  http.port = 0;
  EXPECT_TRUE((*rt)->add_frontend({}, http).ok());
  EXPECT_TRUE(eventually([&] { return (*rt)->live_workers() == static_cast<std::size_t>(workers); }));
  return std::move(*rt);
}

// Reads one whole Content-Length response from `s` starting at s.data[from].
std::string read_response(raw_socket& s, std::size_t from = 0) {
  if (!s.read_until("\r\n\r\n", 10000, from)) return {};
  auto head_end = s.data.find("\r\n\r\n", from) + 4;
  auto cl = s.data.find("Content-Length: ", from);
  if (cl == std::string::npos || cl > head_end) return s.data.substr(from, head_end - from);
  auto len = std::stoul(s.data.substr(cl + 16));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s.data.size() < head_end + len && std::chrono::steady_clock::now() < deadline && !s.eof()) s.read_some(100);
  return s.data.substr(from, head_end + len - from);
}

long worker_active_requests(int port) {
  httplib::Client cli("127.0.0.1", port);
  auto r = cli.Get("/metrics");
  if (!r) return -1;
  auto p = r->body.find("\nyard_worker_active_requests{");
  if (p == std::string::npos) return -1;
  auto eol = r->body.find('\n', p + 1);
  auto sp = r->body.rfind(' ', eol);
  return std::stol(r->body.substr(sp + 1, eol - sp - 1));
}

const std::string stream_body = R"({"prompt":"hello","max_tokens":4000,"stream":true})";

TEST(http_edge, hundreds_of_concurrent_streams_all_get_first_bytes) {
  auto nats = test_support::start_nats();
  ASSERT_TRUE(nats);
  auto node = start_edge(nats->url(), {}, 200.0);  // a token per stream every 200 ms
  ASSERT_TRUE(node);
  const int n = 300;  // more than the old 128-thread pool could hold
  std::vector<raw_socket> socks;
  for (int i = 0; i < n; ++i) {
    socks.emplace_back(node->http_port());
    ASSERT_TRUE(socks.back().ok());
    ASSERT_TRUE(socks.back().send(test_support::post_request("/v1/completions", stream_body)));
  }
  int with_bytes = 0;
  for (auto& s : socks) with_bytes += s.read_until("data: ", 20000) ? 1 : 0;
  EXPECT_EQ(with_bytes, n);
  EXPECT_EQ(node->metrics()->in_flight.load(), n);
  EXPECT_NE(socks.front().data.find("text/event-stream"), std::string::npos);
  socks.clear();  // every client goes away: every request is cancelled
  EXPECT_TRUE(eventually([&] { return node->metrics()->in_flight.load() == 0; }));
  EXPECT_EQ(node->metrics()->client_disconnects_total.load(), static_cast<std::uint64_t>(n));
  EXPECT_TRUE(eventually([&] { return worker_active_requests(node->http_port()) == 0; }));
}

TEST(http_edge, slowloris_is_dropped_after_the_header_timeout_while_health_answers) {
  auto nats = test_support::start_nats();
  ASSERT_TRUE(nats);
  actors::http_options http;
  http.header_timeout_ms = 500;
  auto node = start_edge(nats->url(), http, 1.0);
  ASSERT_TRUE(node);
  std::vector<raw_socket> slow;
  for (int i = 0; i < 50; ++i) {
    slow.emplace_back(node->http_port());
    ASSERT_TRUE(slow.back().send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));  // never finished
  }
  httplib::Client cli("127.0.0.1", node->http_port());
  auto r = cli.Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  for (auto& s : slow) {
    EXPECT_TRUE(s.wait_closed(5000));
    EXPECT_EQ(s.data.find("HTTP/1.1 200"), std::string::npos);  // dropped, not served
  }
  EXPECT_TRUE(eventually([&] { return node->metrics()->connections_open.load() == 0; }));
  r = cli.Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(http_edge, connections_over_the_cap_get_503) {
  auto nats = test_support::start_nats();
  ASSERT_TRUE(nats);
  actors::http_options http;
  http.max_connections = 2;
  auto node = start_edge(nats->url(), http, 1.0);
  ASSERT_TRUE(node);
  raw_socket a(node->http_port()), b(node->http_port());
  ASSERT_TRUE(a.send(test_support::get_request("/health")));
  ASSERT_TRUE(b.send(test_support::get_request("/health")));
  EXPECT_EQ(read_response(a).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(read_response(b).rfind("HTTP/1.1 200", 0), 0u);
  raw_socket c(node->http_port());
  ASSERT_TRUE(c.send(test_support::get_request("/health")));
  auto res = read_response(c);
  EXPECT_EQ(res.rfind("HTTP/1.1 503", 0), 0u) << res;
  EXPECT_NE(res.find("too many open connections"), std::string::npos);
  EXPECT_NE(res.find("\"error\""), std::string::npos);
  EXPECT_TRUE(c.wait_closed(5000));
  EXPECT_EQ(node->metrics()->connections_rejected_total.load(), 1u);
  // The two admitted connections keep working; a freed slot admits a new one.
  auto from = a.data.size();
  ASSERT_TRUE(a.send(test_support::get_request("/health")));
  EXPECT_EQ(read_response(a, from).rfind("HTTP/1.1 200", 0), 0u);
  b.close();
  EXPECT_TRUE(eventually([&] { return node->metrics()->connections_open.load() == 1; }));
  raw_socket d(node->http_port());
  ASSERT_TRUE(d.send(test_support::get_request("/health")));
  EXPECT_EQ(read_response(d).rfind("HTTP/1.1 200", 0), 0u);
}

TEST(http_edge, a_non_streamed_request_is_cancelled_when_its_client_disconnects) {
  auto nats = test_support::start_nats();
  ASSERT_TRUE(nats);
  auto node = start_edge(nats->url(), {}, 20.0);
  ASSERT_TRUE(node);
  std::atomic<int> cancels{0};
  auto sub = node->nats().subscribe(subjects::worker_cancel("default"), [&](transport::nats_message m) {
    auto c = msg::decode_auto<msg::cancel_request>(m.data, m.content_type);
    if (c && c->reason == "client disconnected") cancels++;
  });
  ASSERT_TRUE(sub);
  node->nats().flush();
  {
    raw_socket s(node->http_port());
    ASSERT_TRUE(s.send(test_support::post_request("/v1/completions", R"({"prompt":"hello","max_tokens":4000})")));
    ASSERT_TRUE(eventually([&] { return worker_active_requests(node->http_port()) == 1; }));
    EXPECT_EQ(node->metrics()->in_flight.load(), 1);
  }  // the client closes its socket before any response
  EXPECT_TRUE(eventually([&] { return cancels.load() == 1; }));
  EXPECT_TRUE(eventually([&] { return node->metrics()->in_flight.load() == 0; }));
  EXPECT_EQ(node->metrics()->client_disconnects_total.load(), 1u);
  EXPECT_TRUE(eventually([&] { return worker_active_requests(node->http_port()) == 0; }));
}

TEST(http_edge, graceful_stop_lets_an_open_stream_finish) {
  auto nats = test_support::start_nats();
  ASSERT_TRUE(nats);
  actors::http_options http;
  http.drain_timeout_ms = 20000;
  auto node = start_edge(nats->url(), http, 100.0);
  ASSERT_TRUE(node);
  raw_socket s(node->http_port());
  ASSERT_TRUE(s.send(test_support::post_request("/v1/completions", R"({"prompt":"hello","max_tokens":15,"stream":true})")));
  ASSERT_TRUE(s.read_until("data: ", 10000));
  std::thread stopper([&] { node->shutdown(); });
  EXPECT_TRUE(s.read_until("data: [DONE]", 20000)) << s.data;
  EXPECT_TRUE(s.read_until("0\r\n\r\n", 5000));
  EXPECT_TRUE(s.wait_closed(5000));
  stopper.join();
  EXPECT_EQ(node->metrics()->client_disconnects_total.load(), 0u);
}

TEST(http_edge, keep_alive_connections_are_reused) {
  auto nats = test_support::start_nats();
  ASSERT_TRUE(nats);
  auto node = start_edge(nats->url(), {}, 1.0);
  ASSERT_TRUE(node);
  raw_socket s(node->http_port());
  std::size_t from = 0;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(s.send(test_support::post_request("/v1/completions", R"({"prompt":"hello","max_tokens":4})")));
    auto res = read_response(s, from);
    EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << res;
    EXPECT_NE(res.find("\"choices\""), std::string::npos);
    from = s.data.size();
    ASSERT_TRUE(s.send(test_support::get_request("/health")));
    res = read_response(s, from);
    EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << res;
    from = s.data.size();
  }
  // A streamed response on the same connection, then another request after it.
  ASSERT_TRUE(s.send(test_support::post_request("/v1/chat/completions",
                                                R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stream":true})")));
  ASSERT_TRUE(s.read_until("0\r\n\r\n", 10000, from));
  EXPECT_NE(s.data.find("data: [DONE]", from), std::string::npos);
  from = s.data.size();
  ASSERT_TRUE(s.send(test_support::get_request("/v1/models")));
  EXPECT_EQ(read_response(s, from).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_FALSE(s.eof());
  EXPECT_EQ(node->metrics()->connections_open.load(), 1);
  EXPECT_EQ(node->metrics()->requests_total.load(), 6u);
}

// What strict and large-body clients need of the edge: HEAD is GET without a body (the next response on the
// connection is not read out of step); GET /v1/models/{id}; 405 with Allow on a known path; an HTTP/1.0 stream
// without chunked coding; Expect: 100-continue answered before the body is sent; and a body slower than the
// header timeout (a big prompt on a slow link) still read, under the idle timeout.
TEST(http_edge, head_100_continue_and_a_slow_body) {
  auto nats = test_support::start_nats();
  ASSERT_TRUE(nats);
  actors::http_options http;
  http.header_timeout_ms = 400;
  http.cors_origins = {"https://app.example"};
  auto node = start_edge(nats->url(), http, 1.0);
  ASSERT_TRUE(node);
  {
    raw_socket s(node->http_port());  // a browser's CORS preflight, then its request
    ASSERT_TRUE(s.send("OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n"
                       "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type\r\n\r\n"));
    auto res = read_response(s);
    EXPECT_EQ(res.rfind("HTTP/1.1 204", 0), 0u) << res;
    EXPECT_NE(res.find("Access-Control-Allow-Origin: https://app.example"), std::string::npos) << res;
    EXPECT_NE(res.find("Access-Control-Allow-Headers: authorization, content-type"), std::string::npos) << res;
    std::size_t from = s.data.size();
    ASSERT_TRUE(s.send("GET /v1/models HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n"));
    res = read_response(s, from);
    EXPECT_NE(res.find("Access-Control-Allow-Origin: https://app.example"), std::string::npos) << res;
    from = s.data.size();
    ASSERT_TRUE(s.send("GET /v1/models HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n"));
    res = read_response(s, from);
    EXPECT_EQ(res.find("Access-Control-Allow-Origin"), std::string::npos) << "an origin not listed gets no CORS header";
  }
  {
    raw_socket s(node->http_port());
    ASSERT_TRUE(s.send("HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(s.read_until("\r\n\r\n", 10000));
    EXPECT_EQ(s.data.rfind("HTTP/1.1 200", 0), 0u) << s.data;
    EXPECT_NE(s.data.find("Content-Length: "), std::string::npos);
    const std::size_t after_head = s.data.find("\r\n\r\n") + 4;
    ASSERT_TRUE(s.send(test_support::get_request("/v1/models")));
    auto res = read_response(s, after_head);
    EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << "the HEAD response carried a body: " << s.data;
    EXPECT_NE(res.find("\"object\""), std::string::npos);
  }
  {
    raw_socket s(node->http_port());  // models.retrieve, and a known path with the wrong method
    ASSERT_TRUE(s.send(test_support::get_request("/v1/models/mock")));
    auto res = read_response(s);
    EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << res;
    EXPECT_NE(res.find("\"id\":\"mock\""), std::string::npos) << res;
    std::size_t from = s.data.size();
    ASSERT_TRUE(s.send(test_support::get_request("/v1/models/nope")));
    res = read_response(s, from);
    EXPECT_EQ(res.rfind("HTTP/1.1 404", 0), 0u) << res;
    EXPECT_NE(res.find("model_not_found"), std::string::npos) << res;
    from = s.data.size();
    ASSERT_TRUE(s.send(test_support::get_request("/v1/chat/completions")));
    res = read_response(s, from);
    EXPECT_EQ(res.rfind("HTTP/1.1 405", 0), 0u) << res;
    EXPECT_NE(res.find("Allow: POST"), std::string::npos) << res;
  }
  {
    raw_socket s(node->http_port());  // HTTP/1.0 has no chunked coding: the events as they are, then the close
    const std::string body = R"({"prompt":"old client","max_tokens":3,"stream":true})";
    ASSERT_TRUE(s.send("POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body));
    ASSERT_TRUE(s.wait_closed(10000));
    EXPECT_EQ(s.data.find("Transfer-Encoding"), std::string::npos) << s.data;
    auto head_end = s.data.find("\r\n\r\n");
    ASSERT_NE(head_end, std::string::npos);
    EXPECT_EQ(s.data.compare(head_end + 4, 6, "data: "), 0) << s.data;  // no chunk size before the first event
    EXPECT_NE(s.data.find("data: [DONE]\n\n"), std::string::npos) << s.data;
  }
  {
    raw_socket s(node->http_port());
    const std::string body = R"({"prompt":"hello","max_tokens":3})";
    ASSERT_TRUE(s.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
                       "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
    ASSERT_TRUE(s.read_until("HTTP/1.1 100 Continue\r\n\r\n", 5000)) << s.data;
    const std::size_t from = s.data.size();
    ASSERT_TRUE(s.send(body));
    auto res = read_response(s, from);
    EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << res;
  }
  {
    raw_socket s(node->http_port());
    const std::string body = R"({"prompt":"slow body","max_tokens":3})";
    ASSERT_TRUE(s.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n"));
    for (std::size_t i = 0; i < body.size(); i += 12) {  // ~1 s in all, over twice the header timeout
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      ASSERT_TRUE(s.send(body.substr(i, 12)));
    }
    auto res = read_response(s);
    EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << res;
  }
}

}  // namespace
}  // namespace yard
