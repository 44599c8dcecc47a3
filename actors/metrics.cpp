#include "actors/metrics.hpp"

#include "actors/worker_metrics.hpp"

namespace yard::actors {

void frontend_metrics::count_error(int http_status) {
  std::lock_guard<std::mutex> lock(labelled_mu_);
  errors_by_status_[http_status]++;
}

void frontend_metrics::count_tenant_request(const std::string& tenant, int http_status) {
  std::lock_guard<std::mutex> lock(labelled_mu_);
  tenants_[tenant].requests_by_status[http_status]++;
}

void frontend_metrics::count_tenant_tokens(const std::string& tenant, std::uint64_t prompt, std::uint64_t completion) {
  std::lock_guard<std::mutex> lock(labelled_mu_);
  auto& t = tenants_[tenant];
  t.prompt_tokens += prompt;
  t.completion_tokens += completion;
}

std::string frontend_metrics::render() const {
  prom::exposition out;
  render(out);
  return out.text();
}

void frontend_metrics::render(prom::exposition& out) const {
  out.counter("yard_requests_total", "Requests received by the frontend.", {}, double(requests_total.load()));
  {
    std::lock_guard<std::mutex> lock(labelled_mu_);
    out.family("yard_request_errors_total", "counter", "Requests answered with an error, by HTTP status.");
    if (errors_by_status_.empty()) out.sample("yard_request_errors_total", {{"status", "500"}}, 0);
    for (const auto& [st, n] : errors_by_status_)
      out.sample("yard_request_errors_total", {{"status", std::to_string(st)}}, double(n));
    if (!tenants_.empty()) {
      out.family("yard_tenant_requests_total", "counter", "Generate requests by API-key tenant and HTTP status.");
      out.family("yard_tenant_tokens_total", "counter", "Tokens by API-key tenant (prompt, completion).");
      for (const auto& [name, t] : tenants_) {
        for (const auto& [st, n] : t.requests_by_status)
          out.sample("yard_tenant_requests_total", {{"tenant", name}, {"status", std::to_string(st)}}, double(n));
        out.sample("yard_tenant_tokens_total", {{"tenant", name}, {"kind", "prompt"}}, double(t.prompt_tokens));
        out.sample("yard_tenant_tokens_total", {{"tenant", name}, {"kind", "completion"}}, double(t.completion_tokens));
      }
    }
  }
  out.gauge("yard_requests_in_flight", "Requests being served.", {}, double(in_flight.load()));
  out.counter("yard_output_tokens_total", "Tokens streamed to clients.", {}, double(output_tokens_total.load()));
  out.counter("yard_migrations_total", "Requests re-dispatched after a worker failed.", {}, double(migrations_total.load()));
  out.counter("yard_client_disconnects_total", "Requests cancelled because their client disconnected.", {},
              double(client_disconnects_total.load()));
  out.gauge("yard_http_connections_open", "HTTP connections open now.", {}, double(connections_open.load()));
  out.counter("yard_http_connections_rejected_total", "Connections answered 503 over --http-max-connections.", {},
              double(connections_rejected_total.load()));
  ttft.render(out, "yard_time_to_first_token_seconds", "Time from request to first token.", {});
  itl.render(out, "yard_inter_token_latency_seconds", "Time between consecutive tokens.", {});
  e2e.render(out, "yard_request_duration_seconds", "Time from request to last token.", {});
}

void render_worker_metrics(std::string& out, const std::vector<worker_status>& workers) {
  prom::exposition ex;
  for (const auto& w : workers)
    render_worker_load(ex, {{"worker", w.id}, {"role", w.role}, {"model", w.model}}, w.load, w.draining, std::nullopt);
  out += ex.text();
}

}  // namespace yard::actors
