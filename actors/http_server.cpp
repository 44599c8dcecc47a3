#include "actors/http_server.hpp"

#include <atomic>
#include <chrono>
#include <random>

#include <caf/all.hpp>
#include <httplib.h>

#include "actors/atoms.hpp"
#include "actors/openai_api.hpp"
#include "common/log.hpp"

namespace yard::actors {

namespace {

using namespace std::chrono_literals;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void send_error(httplib::Response& res, frontend_metrics& m, errc code, const std::string& message) {
  int st = openai::http_status_for(code);
  m.count_error(st);
  res.status = st;
  res.set_content(openai::error_body(code, message), "application/json");
}

}  // namespace

http_server::http_server(http_options opts, caf::actor frontend, std::shared_ptr<frontend_metrics> metrics,
                         std::shared_ptr<cluster_view> view)
    : opts_(std::move(opts)), frontend_(std::move(frontend)), metrics_(std::move(metrics)), view_(std::move(view)) {}

http_server::~http_server() { stop(); }

void http_server::install_routes() {
  auto& svr = *server_;
  auto log = component_logger("http");
  const int threads = opts_.threads;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  svr.set_payload_max_length(opts_.max_body_bytes);
  svr.set_read_timeout(30, 0);
  svr.set_write_timeout(30, 0);
  svr.set_keep_alive_max_count(1000);
  svr.set_tcp_nodelay(true);  // SSE writes small chunks: no Nagle delay

  const std::size_t max_body = opts_.max_body_bytes;
  svr.set_pre_routing_handler([this, max_body](const httplib::Request& req, httplib::Response& res) {
    auto len = req.get_header_value<std::uint64_t>("Content-Length");
    if (len > max_body) {
      send_error(res, *metrics_, errc::payload_too_large,
                 "request body of " + std::to_string(len) + " bytes exceeds the limit of " + std::to_string(max_body));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    errc code = res.status == 404 ? errc::not_found : res.status == 413 ? errc::payload_too_large
              : res.status >= 500 ? errc::internal : errc::bad_request;
    std::string what = res.status == 404 ? "no route for " + req.method + " " + req.path : "HTTP " + std::to_string(res.status);
    metrics_->count_error(res.status);
    res.set_content(openai::error_body(code, what), "application/json");
  });
  svr.set_exception_handler([this, log](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log->error("{} {} raised: {}", req.method, req.path, what);
    send_error(res, *metrics_, errc::internal, what);
  });

  svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    auto n = view_->live_workers();
    nlohmann::json body = {{"status", n > 0 ? "ok" : "unavailable"}, {"workers", n}, {"models", view_->models()}};
    res.status = n > 0 ? 200 : 503;
    res.set_content(body.dump(), "application/json");
  });
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    auto body = metrics_->render();
    render_worker_metrics(body, view_->workers());
    res.set_content(body, "text/plain; version=0.0.4");
  });
  svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(openai::models_body(view_->models(), unix_now()), "application/json");
  });

  auto ids = std::make_shared<std::atomic<std::uint64_t>>(std::random_device{}() & 0xffffff);
  auto generate = [this, ids, log](openai::endpoint ep) {
    return [this, ids, log, ep](const httplib::Request& req, httplib::Response& res) {
      metrics_->requests_total++;
      std::string id = opts_.id_prefix + "-" + std::to_string(unix_now()) + "-" + std::to_string((*ids)++);
      auto parsed = openai::parse(req.body, ep, id);
      if (!parsed) {
        log->info("400 on {}: {}", req.path, parsed.err().message);
        return send_error(res, *metrics_, parsed.err().code, parsed.err().message);
      }
      auto gen = std::move(parsed->gen);
      auto models = view_->models();
      if (view_->live_workers() == 0) return send_error(res, *metrics_, errc::unavailable, "no worker available");
      if (gen.model.empty()) gen.model = opts_.default_model.empty() && !models.empty() ? models.front() : opts_.default_model;
      if (std::find(models.begin(), models.end(), gen.model) == models.end())
        return send_error(res, *metrics_, errc::not_found, "model '" + gen.model + "' does not exist");
      auto queue = std::make_shared<chunk_queue>();
      auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.request_timeout_ms);
      metrics_->in_flight++;
      caf::anon_send(frontend_, open_atom::value, gen, queue);
      // Wait for the first chunk so errors before any token get a real status code.
      std::optional<msg::token_chunk> first;
      while (!first && std::chrono::steady_clock::now() < deadline) first = queue->pop(100ms);
      if (!first) {
        caf::anon_send(frontend_, cancel_atom::value, id);
        metrics_->in_flight--;
        return send_error(res, *metrics_, errc::timeout, "no response from the cluster in time");
      }
      if (first->error) {
        metrics_->in_flight--;
        return send_error(res, *metrics_, static_cast<errc>(first->error->code), first->error->message);
      }
      auto model = gen.model;
      auto created = unix_now();
      // Shapes the response (logprobs, echo, usage chunk): see openai_api.hpp.
      auto render = std::make_shared<openai::response_renderer>(ep, id, model, created, parsed->render);
      if (!gen.stream) {
        std::optional<msg::token_chunk> c = std::move(first);
        while (true) {
          if (!c) {
            if (std::chrono::steady_clock::now() > deadline) {
              caf::anon_send(frontend_, cancel_atom::value, id);
              metrics_->in_flight--;
              return send_error(res, *metrics_, errc::timeout, "request timed out");
            }
            c = queue->pop(100ms);
            continue;
          }
          if (c->error) {
            metrics_->in_flight--;
            return send_error(res, *metrics_, static_cast<errc>(c->error->code), c->error->message);
          }
          render->add(*c);
          if (c->finish_reason) break;
          c.reset();
        }
        metrics_->in_flight--;
        res.set_content(render->full_response(), "application/json");
        return;
      }
      // Streaming: relay chunks as SSE; cancel on disconnect.
      auto pending = std::make_shared<std::optional<msg::token_chunk>>(std::move(first));
      auto finished = std::make_shared<bool>(false);
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          "text/event-stream",
          [this, render, queue, pending, finished, deadline](std::size_t, httplib::DataSink& sink) {
            std::optional<msg::token_chunk> c = std::move(*pending);
            pending->reset();
            if (!c) c = queue->pop(50ms);
            if (!c) {
              if (std::chrono::steady_clock::now() > deadline) return false;
              return sink.is_writable();
            }
            std::string out;
            if (c->error) {
              out = "data: " + openai::error_body(static_cast<errc>(c->error->code), c->error->message) + "\n\n";
            } else {
              out = render->sse(*c);
            }
            if (c->finish_reason) out += "data: [DONE]\n\n";
            if (!sink.write(out.data(), out.size())) return false;
            if (c->finish_reason) {
              *finished = true;
              sink.done();
            }
            return true;
          },
          [this, id, finished, log](bool success) {
            metrics_->in_flight--;
            if (!*finished) {
              log->info("stream {} closed before it finished (client gone): cancelling", id);
              caf::anon_send(frontend_, cancel_atom::value, id);
            }
          });
    };
  };
  svr.Post("/v1/completions", generate(openai::endpoint::completions));
  svr.Post("/v1/chat/completions", generate(openai::endpoint::chat));
}

status http_server::start() {
  server_ = std::make_unique<httplib::Server>();
  install_routes();
  if (opts_.port == 0) {
    port_ = server_->bind_to_any_port(opts_.host);
    if (port_ <= 0) return make_error(errc::unavailable, "cannot bind HTTP on " + opts_.host);
  } else {
    if (!server_->bind_to_port(opts_.host, opts_.port))
      return make_error(errc::unavailable, "cannot bind HTTP on " + opts_.host + ":" + std::to_string(opts_.port) + " (in use?)");
    port_ = opts_.port;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  component_logger("http")->info("OpenAI-compatible API on http://{}:{}/v1", opts_.host, port_);
  return status::success();
}

void http_server::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace yard::actors
