// actors/http_connection.cpp — reading and writing on one connection (see http_connection.hpp); the route
// table is http_routes.cpp, generate requests http_generate.cpp.
#include "actors/http_connection.hpp"
#include "actors/http_wire.hpp"

#include <algorithm>
#include <utility>
#include <chrono>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <caf/all.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"

namespace yard::actors {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

using http_wire::response_head;
using http_wire::unix_now;

namespace {

constexpr std::size_t header_limit = 16 * 1024;    // request line + headers
constexpr std::size_t pipelined_limit = 64 * 1024; // bytes read ahead while a request runs
constexpr auto write_timeout = std::chrono::seconds(30);
constexpr auto linger_timeout = std::chrono::seconds(1);

// A parse error (answered 400), not a closed or timed-out connection.
bool is_malformed(beast::error_code ec) {
  static const auto& http_category = bhttp::make_error_code(bhttp::error::bad_method).category();
  return ec && ec.category() == http_category && ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
         ec != bhttp::error::need_more && ec != bhttp::error::need_buffer;
}

}  // namespace

void http_context::add(http_connection* c, std::weak_ptr<http_connection> w) {
  std::lock_guard<std::mutex> lock(mu_);
  conns_.emplace(c, std::move(w));
}

void http_context::remove(http_connection* c) {
  std::lock_guard<std::mutex> lock(mu_);
  conns_.erase(c);
}

std::vector<std::shared_ptr<http_connection>> http_context::snapshot() {
  std::vector<std::shared_ptr<http_connection>> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.reserve(conns_.size());
  for (auto& [p, w] : conns_)
    if (auto s = w.lock()) out.push_back(std::move(s));
  return out;
}

http_connection::http_connection(tcp::socket socket, std::shared_ptr<http_context> ctx, bool rejected)
    : ctx_(std::move(ctx)), deadline_(socket.get_executor()), rejected_(rejected) {
  if (ctx_->tls) tls_.emplace(std::move(socket), *ctx_->tls);
  else plain_.emplace(std::move(socket));
}

http_connection::~http_connection() {
  if (queue_) queue_->set_notify(nullptr);
  if (!rejected_) {
    ctx_->remove(this);
    ctx_->open--;
    ctx_->metrics->connections_open--;
  }
}

void http_connection::start() {
  auto self = shared_from_this();
  if (!rejected_) ctx_->add(this, self);
  net::dispatch(tcp_layer().get_executor(), [self] {
    if (!self->tls_) return self->begin();
    self->tcp_layer().expires_after(std::chrono::milliseconds(self->ctx_->opts.header_timeout_ms));
    self->tls_->async_handshake(net::ssl::stream_base::server, [self](beast::error_code ec) {
      if (ec) {
        self->ctx_->log->debug("TLS handshake failed: {}", ec.message());
        return self->close();
      }
      self->begin();
    });
  });
}

void http_connection::begin() {
  auto self = shared_from_this();
  {
    if (self->rejected_) {
      self->ctx_->metrics->connections_rejected_total++;
      self->keep_alive_ = false;
      self->idle_ = false;
      self->respond_error(errc::unavailable, "too many open connections (--http-max-connections " +
                                                 std::to_string(self->ctx_->opts.max_connections) + ")");
      return;
    }
    self->read_request(true);
  }
}

void http_connection::drain() {
  net::post(tcp_layer().get_executor(), [self = shared_from_this()] {
    if (self->idle_) self->close();
  });
}

void http_connection::close_now() {
  net::post(tcp_layer().get_executor(), [self = shared_from_this()] {
    if (self->active_) {
      self->cancel_choices();
      self->end_request();
    }
    self->close();
  });
}

// --- reading a request -------------------------------------------------------

void http_connection::read_request(bool first) {
  if (closed_) return;
  idle_ = true;
  if (!keep_alive_ || ctx_->draining) return graceful_close();
  parser_.emplace();
  parser_->header_limit(header_limit);
  parser_->body_limit(ctx_->opts.max_body_bytes);
  if (first || buf_.size() > 0) return read_header();
  // Keep-alive: wait (idle timeout) for the next request's first bytes; from
  // then on the header timeout applies.
  tcp_layer().expires_after(std::chrono::milliseconds(ctx_->opts.idle_timeout_ms));
  with_stream([&](auto& s) {
    s.async_read_some(buf_.prepare(512), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      if (ec) return self->close();
      self->buf_.commit(n);
      self->read_header();
    });
  });
}

void http_connection::read_header() {
  tcp_layer().expires_after(std::chrono::milliseconds(ctx_->opts.header_timeout_ms));
  with_stream([&](auto& s) {
    bhttp::async_read_header(s, buf_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  });
}

void http_connection::on_header(beast::error_code ec) {
  const std::size_t max_body = ctx_->opts.max_body_bytes;
  // Beast reports a Content-Length over body_limit as an error of the header read.
  if (ec && ec != bhttp::error::body_limit) {
    if (ec == beast::error::timeout) ctx_->log->debug("dropping a connection whose request header did not arrive in time");
    if (is_malformed(ec)) return reject_malformed(ec);
    return close();
  }
  if (auto len = parser_->content_length(); ec || (len && *len > max_body)) {
    idle_ = false;
    keep_alive_ = false;  // the body stays unread
    std::string what = len ? "request body of " + std::to_string(*len) + " bytes" : "request body";
    return respond_error(errc::payload_too_large, what + " exceeds the limit of " + std::to_string(max_body));
  }
  // The header timeout covers the header only: a body (a large prompt on a slow link) gets the idle timeout.
  tcp_layer().expires_after(std::chrono::milliseconds(std::max(ctx_->opts.idle_timeout_ms, ctx_->opts.header_timeout_ms)));
  // A client that asked to be told first (curl does for bodies over 1 MiB) waits for 100 Continue before it sends.
  auto expect = parser_->get()[bhttp::field::expect];
  if (beast::iequals(expect, "100-continue") && !parser_->is_done()) {
    static const std::string go = "HTTP/1.1 100 Continue\r\n\r\n";
    return with_stream([&](auto& s) {
      net::async_write(s, net::buffer(go), [self = shared_from_this()](beast::error_code wec, std::size_t) {
        if (wec) return self->close();
        self->read_body();
      });
    });
  }
  read_body();
}

void http_connection::read_body() {
  with_stream([&](auto& s) {
    bhttp::async_read(s, buf_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
  });
}

void http_connection::on_body(beast::error_code ec) {
  if (ec == bhttp::error::body_limit) {
    idle_ = false;
    keep_alive_ = false;
    return respond_error(errc::payload_too_large, "request body exceeds the limit of " + std::to_string(ctx_->opts.max_body_bytes));
  }
  if (is_malformed(ec)) return reject_malformed(ec);
  if (ec) return close();
  tcp_layer().expires_never();
  idle_ = false;
  route();
}

void http_connection::reject_malformed(beast::error_code ec) {
  idle_ = false;
  keep_alive_ = false;
  respond_error(errc::bad_request, "malformed HTTP request: " + ec.message());
}

// --- writing -------------------------------------------------------------------

void http_connection::respond(int status, const char* content_type, const std::string& body) {
  if (ctx_->draining) keep_alive_ = false;
  auto out = response_head(status, content_type, keep_alive_);
  out += extra_headers_;
  extra_headers_.clear();
  out += fmt::format("Content-Length: {}\r\n\r\n", body.size());
  if (!std::exchange(head_only_, false)) out += body;
  response_done_ = true;
  write(std::move(out));
}

void http_connection::respond_error(errc code, const std::string& message) {
  int st = openai::http_status_for(code);
  ctx_->metrics->count_error(st);
  account_tenant(st, nullptr);
  respond(st, "application/json", openai::error_body(code, message));
}

void http_connection::write(std::string bytes) {
  if (closed_) return;
  if (writing_) {
    pending_ += bytes;
    return;
  }
  out_ = std::move(bytes);
  writing_ = true;
  tcp_layer().expires_after(write_timeout);  // a client that stops reading is dropped
  start_write();
}

void http_connection::start_write() {
  with_stream([&](auto& s) {
    net::async_write(s, net::buffer(out_), [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_written(ec); });
  });
}

void http_connection::on_written(beast::error_code ec) {
  writing_ = false;
  if (ec) {
    if (active_) return on_client_gone();
    return close();
  }
  tcp_layer().expires_never();
  if (!pending_.empty()) {
    out_.swap(pending_);
    std::string().swap(pending_);
    writing_ = true;
    tcp_layer().expires_after(write_timeout);
    start_write();
    return;
  }
  std::string().swap(out_);
  if (response_done_) after_response();
}

void http_connection::after_response() {
  response_done_ = false;
  if (watching_) {
    // The disconnect watch still owns the read side: cancel it, continue in on_watch.
    resume_after_watch_ = true;
    beast::error_code ignored;
    tcp_layer().socket().cancel(ignored);
    return;
  }
  read_request(false);  // or a graceful close when not keep-alive
}

// --- client disconnect -----------------------------------------------------------

void http_connection::watch_client() {
  if (watching_ || closed_ || buf_.size() >= pipelined_limit) return;
  watching_ = true;
  // Through the TLS layer when there is one (a raw read would eat encrypted bytes).
  auto on_read = [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_watch(ec, n); };
  if (tls_) tls_->async_read_some(buf_.prepare(512), std::move(on_read));
  else plain_->socket().async_read_some(buf_.prepare(512), std::move(on_read));
}

void http_connection::on_watch(beast::error_code ec, std::size_t n) {
  watching_ = false;
  if (!ec) buf_.commit(n);
  if (resume_after_watch_) {
    resume_after_watch_ = false;
    if (ec && ec != net::error::operation_aborted) return close();
    return read_request(false);  // or a graceful close when not keep-alive
  }
  if (ec == net::error::operation_aborted || closed_) return;
  if (ec) return on_client_gone();
  if (active_) watch_client();  // the client sent more (pipelining): keep it for later
}

void http_connection::on_client_gone() {
  if (active_) {
    ctx_->log->info("client of {} went away: cancelling", id_);
    ctx_->metrics->client_disconnects_total++;
    account_tenant(499, nullptr);
    cancel_choices();
    end_request();
  }
  close();
}

// --- closing ---------------------------------------------------------------------

void http_connection::graceful_close() {
  if (closed_ || lingering_) return;
  // Half-close, then read until the client closes too (bounded), so unread
  // request bytes do not turn our last response into a reset.
  if (tls_) return close();  // TLS records frame every response: nothing to linger for
  lingering_ = true;
  idle_ = true;
  beast::error_code ignored;
  tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ignored);
  tcp_layer().expires_after(linger_timeout);
  linger();
}

void http_connection::linger() {
  buf_.consume(buf_.size());
  tcp_layer().async_read_some(buf_.prepare(512), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
    if (ec) return self->close();
    self->buf_.commit(n);
    self->linger();
  });
}

void http_connection::close() {
  if (closed_) return;
  closed_ = true;
  idle_ = false;
  deadline_.cancel();
  beast::error_code ignored;
  tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ignored);
  tcp_layer().close();
}

}  // namespace yard::actors
