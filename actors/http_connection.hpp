// actors/http_connection.hpp — one HTTP/1.1 connection of the frontend's API.
//
// Owns: one accepted socket and everything on it: reading requests under the
// header and idle keep-alive timeouts (a slow or silent client is dropped and
// holds nothing), routing, writing responses, and the request in flight — a
// generate request's chunk_queue, whose notify posts a drain to this
// connection's strand, so an SSE stream is written when its chunks arrive.
// While a request is open an async read watches the socket: EOF or a reset
// cancels the request on the frontend actor (streamed and non-streamed alike).
// Also the shared http_context (options, handles, registry of connections).
// Must not touch: NATS (through the frontend actor only), the acceptor.
// With TLS (--tls-cert/--tls-key) the same runs over a Beast ssl_stream after
// a server handshake bounded by the header timeout.
// Thread-safety: every member function runs on the connection's strand,
// except drain()/close_now(), which post there; http_context is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <caf/actor.hpp>
#include <spdlog/logger.h>

#include "actors/chunk_queue.hpp"
#include "actors/http_server.hpp"
#include "actors/openai_api.hpp"

namespace yard::actors {

class http_connection;

// What the server and every connection share. Outlives the I/O threads.
struct http_context {
  http_options opts;
  frontend_port frontend;  // opens and cancels requests
  std::shared_ptr<frontend_metrics> metrics;
  std::shared_ptr<cluster_view> view;
  std::shared_ptr<spdlog::logger> log;
  boost::asio::io_context ioc;
  std::optional<boost::asio::ssl::context> tls;  // HTTPS: every connection handshakes first
  std::atomic<std::uint64_t> next_id{0};
  std::atomic<bool> draining{false};  // stop() began: no new requests, close when idle
  std::atomic<std::size_t> open{0};   // registered (non-rejected) connections

  void add(http_connection* c, std::weak_ptr<http_connection> w);
  void remove(http_connection* c);
  // A snapshot of the live connections.
  std::vector<std::shared_ptr<http_connection>> snapshot();

  explicit http_context(int io_threads) : ioc(io_threads) {}

 private:
  std::mutex mu_;
  std::unordered_map<http_connection*, std::weak_ptr<http_connection>> conns_;
};

class http_connection : public std::enable_shared_from_this<http_connection> {
 public:
  // `rejected`: over the connection cap: answer 503 and close.
  http_connection(boost::asio::ip::tcp::socket socket, std::shared_ptr<http_context> ctx, bool rejected);
  ~http_connection();
  void start();
  // Stop taking requests: an idle connection closes now, a busy one after its response.
  void drain();
  // Close now; an open request is cancelled on the frontend.
  void close_now();

 private:
  void begin();  // after the TLS handshake (or at once): the first request, or the over-cap 503
  // The byte stream: TLS over TCP, or TCP. f gets whichever this connection has.
  template <class F> void with_stream(F&& f) {
    if (tls_) f(*tls_);
    else f(*plain_);
  }
  boost::beast::tcp_stream& tcp_layer() { return tls_ ? boost::beast::get_lowest_layer(*tls_) : *plain_; }
  void read_request(bool first);
  void read_header();
  void on_header(boost::beast::error_code ec);
  void read_body();
  void on_body(boost::beast::error_code ec);
  void reject_malformed(boost::beast::error_code ec);
  void route();
  void serve_generate(openai::endpoint ep);
  void on_chunks();
  void handle_chunk(msg::token_chunk& c);
  void on_deadline();
  void open_other_choices();  // n > 1: choices 1..n-1, once choice 0 has produced
  void cancel_choices();      // cancels every choice of the request in flight
  void end_request();
  void respond(int status, const char* content_type, const std::string& body);
  void respond_error(errc code, const std::string& message);
  // With API keys on: the tenant of the key the request presented ("" = none), or a 401 sent (false).
  bool authenticate(const std::string& api_key);
  // The tenant's verdict on a request that ended with this status (metrics, token budget).
  void account_tenant(int http_status, const msg::usage* usage);
  void write(std::string bytes);
  void start_write();
  void on_written(boost::beast::error_code ec);
  void after_response();
  void watch_client();
  void on_watch(boost::beast::error_code ec, std::size_t n);
  void on_client_gone();
  void graceful_close();
  void linger();
  void close();

  std::optional<boost::beast::tcp_stream> plain_;
  std::optional<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls_;
  std::shared_ptr<http_context> ctx_;
  boost::beast::flat_buffer buf_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  boost::asio::steady_timer deadline_;
  bool rejected_ = false;
  bool closed_ = false;
  bool lingering_ = false;     // half-closed, reading until the client closes
  bool idle_ = true;            // waiting for a request (drain may close us)
  bool keep_alive_ = true;      // of the current request
  bool response_done_ = false;  // the last bytes of the response are queued
  bool head_only_ = false;      // a HEAD request: the response's head without its body
  bool http10_ = false;         // an HTTP/1.0 request: a stream is not chunked (the close ends it)
  bool writing_ = false;
  bool watching_ = false;          // the disconnect watch read is pending
  bool resume_after_watch_ = false;  // read the next request once the watch read returns
  std::string out_, pending_;   // bytes being written / queued behind them
  std::string extra_headers_;   // added to the next response head ("Name: value\r\n" lines)
  openai::request_hint_headers hints_;  // the current request's agent-hint headers
  const tenant* tenant_ = nullptr;  // its tenant (API keys on), until the request is accounted

  // The generate request in flight (active_), if any.
  bool active_ = false;
  bool got_first_ = false;
  bool stream_mode_ = false;
  openai::endpoint ep_ = openai::endpoint::completions;
  std::string id_, model_, text_, body_;
  std::int64_t created_ = 0;
  std::shared_ptr<openai::response_renderer> render_;  // the current request's response shaping
  std::uint32_t n_ = 1;                      // choices of the request in flight
  std::vector<std::string> choice_ids_;      // their request ids: id, id-c1, ... id-c<n-1>
  std::optional<msg::generate_request> rest_;  // n > 1: the request the other choices copy, until they are opened
  chunk_queue_ptr queue_;
};

}  // namespace yard::actors
