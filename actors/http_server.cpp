#include "actors/http_server.hpp"

#include <sys/resource.h>

#include <chrono>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <random>

#include "actors/http_connection.hpp"
#include "common/log.hpp"

namespace yard::actors {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// Every connection is a file descriptor: take the hard limit, once per process.
void raise_fd_limit(spdlog::logger& log) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  auto old = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) == 0) log.info("raised RLIMIT_NOFILE from {} to {}", old, rl.rlim_cur);
}

}  // namespace

struct http_server::impl {
  std::shared_ptr<http_context> ctx;
  tcp::acceptor acceptor;
  net::steady_timer retry;  // after an accept error (e.g. out of descriptors)
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;

  explicit impl(std::shared_ptr<http_context> c)
      : ctx(std::move(c)), acceptor(net::make_strand(ctx->ioc)), retry(acceptor.get_executor()) {}

  void accept() {
    acceptor.async_accept(net::make_strand(ctx->ioc), [this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        ctx->log->warn("accept failed: {}; retrying in 50 ms", ec.message());
        retry.expires_after(std::chrono::milliseconds(50));
        retry.async_wait([this](boost::system::error_code e) {
          if (!e && acceptor.is_open()) accept();
        });
        return;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);  // SSE writes small chunks: no Nagle delay
      bool over = ctx->open.load() >= ctx->opts.max_connections;
      if (!over) {
        ctx->open++;
        ctx->metrics->connections_open++;
      }
      std::make_shared<http_connection>(std::move(socket), ctx, over)->start();
      accept();
    });
  }
};

http_server::http_server(http_options opts, frontend_port frontend, std::shared_ptr<frontend_metrics> metrics,
                         std::shared_ptr<cluster_view> view)
    : opts_(std::move(opts)), frontend_(std::move(frontend)), metrics_(std::move(metrics)), view_(std::move(view)) {}

http_server::~http_server() { stop(); }

std::size_t http_server::open_connections() const { return impl_ ? impl_->ctx->open.load() : 0; }

status http_server::start() {
  auto log = component_logger("http");
  raise_fd_limit(*log);
  auto ctx = std::make_shared<http_context>(std::max(1, opts_.io_threads));
  ctx->opts = opts_;
  ctx->frontend = frontend_;
  ctx->metrics = metrics_;
  ctx->view = view_;
  ctx->log = log;
  boost::system::error_code ec;
  ctx->next_id = std::random_device{}() & 0xffffff;
  if (!opts_.tls_cert_file.empty() || !opts_.tls_key_file.empty()) {
    if (opts_.tls_cert_file.empty() || opts_.tls_key_file.empty())
      return make_error(errc::bad_request, "HTTPS needs both a certificate (--tls-cert) and a key (--tls-key)");
    ctx->tls.emplace(net::ssl::context::tls_server);
    auto& tls = *ctx->tls;
    // TLS 1.2+ only; the certificate file may hold a chain.
    tls.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 | net::ssl::context::no_sslv3 |
                    net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
    tls.use_certificate_chain_file(opts_.tls_cert_file, ec);
    if (ec) return make_error(errc::bad_request, "TLS certificate " + opts_.tls_cert_file + ": " + ec.message());
    tls.use_private_key_file(opts_.tls_key_file, net::ssl::context::pem, ec);
    if (ec) return make_error(errc::bad_request, "TLS key " + opts_.tls_key_file + ": " + ec.message());
  }
  auto im = std::make_shared<impl>(ctx);
  auto addr = net::ip::make_address(opts_.host, ec);
  if (ec) return make_error(errc::bad_request, "bad HTTP listen address '" + opts_.host + "': " + ec.message());
  tcp::endpoint ep(addr, static_cast<unsigned short>(opts_.port));
  im->acceptor.open(ep.protocol(), ec);
  if (!ec) im->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) im->acceptor.bind(ep, ec);
  if (!ec) im->acceptor.listen(net::socket_base::max_listen_connections, ec);  // SOMAXCONN
  if (ec) return make_error(errc::unavailable, "cannot bind HTTP on " + opts_.host + ":" + std::to_string(opts_.port) + ": " + ec.message());
  port_ = im->acceptor.local_endpoint().port();
  im->work.emplace(net::make_work_guard(ctx->ioc));
  im->accept();
  for (int i = 0; i < std::max(1, opts_.io_threads); ++i) im->threads.emplace_back([ctx] { ctx->ioc.run(); });
  impl_ = std::move(im);
  log->info("OpenAI-compatible API on {}://{}:{}/v1 ({} I/O threads, at most {} connections{})", ctx->tls ? "https" : "http",
            opts_.host, port_, opts_.io_threads, opts_.max_connections, opts_.tenants ? ", API keys required" : "");
  return status::success();
}

void http_server::stop() {
  if (!impl_) return;
  auto im = std::move(impl_);
  auto& ctx = *im->ctx;
  using clock = std::chrono::steady_clock;
  auto wait_closed = [&](std::chrono::milliseconds limit) {
    auto until = clock::now() + limit;
    while (ctx.open.load() > 0 && clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
  // 1. No new connections or requests; idle connections close now.
  ctx.draining = true;
  net::post(im->acceptor.get_executor(), [&im] {
    boost::system::error_code ignored;
    im->acceptor.close(ignored);
    im->retry.cancel();
  });
  for (auto& c : ctx.snapshot()) c->drain();
  // 2. Open requests finish, up to the drain deadline; 3. then the rest are cut.
  wait_closed(std::chrono::milliseconds(opts_.drain_timeout_ms));
  if (ctx.open.load() > 0) {
    ctx.log->warn("{} connections still open after the {} ms drain: closing them", ctx.open.load(), opts_.drain_timeout_ms);
    for (auto& c : ctx.snapshot()) c->close_now();
    wait_closed(std::chrono::milliseconds(2000));
  }
  // 4. Let the I/O threads run out of work (lingering closes end within 1 s), then stop.
  im->work.reset();
  auto until = clock::now() + std::chrono::seconds(3);
  while (!ctx.ioc.stopped() && clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ctx.ioc.stop();
  for (auto& t : im->threads)
    if (t.joinable()) t.join();
}

}  // namespace yard::actors
