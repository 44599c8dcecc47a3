#include "actors/metrics.hpp"

#include <fmt/format.h>

namespace yard::actors {

void histogram::observe(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  counts_[i]++;
  sum_ += seconds;
  ++n_;
}

std::uint64_t histogram::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return n_;
}

void histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> lock(mu_);
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cum);
  }
  cum += counts_.back();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, cum, name, sum_, name, n_);
}

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

namespace {

std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// One single-valued series with its HELP and TYPE lines.
template <class V>
void scalar(std::string& out, const char* name, const char* type, const char* help, V value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

}  // namespace

std::string frontend_metrics::render() const {
  std::string out;
  scalar(out, "yard_requests_total", "counter", "Requests received by the frontend.", requests_total.load());
  {
    std::lock_guard<std::mutex> lock(labelled_mu_);
    out += "# HELP yard_request_errors_total Requests answered with an error, by HTTP status.\n# TYPE yard_request_errors_total counter\n";
    if (errors_by_status_.empty()) out += "yard_request_errors_total{status=\"500\"} 0\n";
    for (const auto& [st, n] : errors_by_status_) out += fmt::format("yard_request_errors_total{{status=\"{}\"}} {}\n", st, n);
    if (!tenants_.empty()) {
      out += "# HELP yard_tenant_requests_total Generate requests by API-key tenant and HTTP status.\n# TYPE yard_tenant_requests_total counter\n";
      for (const auto& [name, t] : tenants_)
        for (const auto& [st, n] : t.requests_by_status)
          out += fmt::format("yard_tenant_requests_total{{tenant=\"{}\",status=\"{}\"}} {}\n", label_value(name), st, n);
      out += "# HELP yard_tenant_tokens_total Tokens by API-key tenant (prompt, completion).\n# TYPE yard_tenant_tokens_total counter\n";
      for (const auto& [name, t] : tenants_) {
        out += fmt::format("yard_tenant_tokens_total{{tenant=\"{}\",kind=\"prompt\"}} {}\n", label_value(name), t.prompt_tokens);
        out += fmt::format("yard_tenant_tokens_total{{tenant=\"{}\",kind=\"completion\"}} {}\n", label_value(name),
                           t.completion_tokens);
      }
    }
  }
  scalar(out, "yard_requests_in_flight", "gauge", "Requests being served.", in_flight.load());
  scalar(out, "yard_output_tokens_total", "counter", "Tokens streamed to clients.", output_tokens_total.load());
  scalar(out, "yard_migrations_total", "counter", "Requests re-dispatched after a worker failed.", migrations_total.load());
  scalar(out, "yard_client_disconnects_total", "counter", "Requests cancelled because their client disconnected.",
         client_disconnects_total.load());
  scalar(out, "yard_http_connections_open", "gauge", "HTTP connections open now.", connections_open.load());
  scalar(out, "yard_http_connections_rejected_total", "counter", "Connections answered 503 over --http-max-connections.",
         connections_rejected_total.load());
  ttft.render(out, "yard_time_to_first_token_seconds", "Time from request to first token.");
  itl.render(out, "yard_inter_token_latency_seconds", "Time between consecutive tokens.");
  e2e.render(out, "yard_request_duration_seconds", "Time from request to last token.");
  return out;
}

void render_worker_metrics(std::string& out, const std::vector<worker_status>& workers) {
  struct series {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const worker_status&);
  };
  static const series all[] = {
      {"yard_worker_draining", "gauge", "1 while the worker drains (takes no new work).",
       [](const worker_status& w) { return w.draining ? 1.0 : 0.0; }},
      {"yard_worker_active_requests", "gauge", "Sequences being decoded.",
       [](const worker_status& w) { return double(w.load.active_requests); }},
      {"yard_worker_queued_requests", "gauge", "Requests waiting for admission.",
       [](const worker_status& w) { return double(w.load.queued_requests); }},
      {"yard_worker_pending_prefill_tokens", "gauge", "Prompt tokens not yet prefilled.",
       [](const worker_status& w) { return double(w.load.pending_prefill_tokens); }},
      {"yard_worker_kv_blocks_active", "gauge", "G1 KV blocks referenced by live sequences.",
       [](const worker_status& w) { return double(w.load.active_kv_blocks); }},
      {"yard_worker_kv_blocks_total", "gauge", "G1 KV pool capacity in blocks.",
       [](const worker_status& w) { return double(w.load.total_kv_blocks); }},
      {"yard_worker_kv_blocks_g2", "gauge", "KV blocks held in the host tier (G2).",
       [](const worker_status& w) { return double(w.load.g2_kv_blocks); }},
      {"yard_worker_kv_blocks_g3", "gauge", "KV blocks held in the disk tier (G3).",
       [](const worker_status& w) { return double(w.load.g3_kv_blocks); }},
      {"yard_worker_kv_offloaded_blocks_total", "counter", "KV blocks copied down from G1 on eviction.",
       [](const worker_status& w) { return double(w.load.kv_offloaded_blocks); }},
      {"yard_worker_kv_onboarded_blocks_total", "counter", "KV blocks brought back into G1 from G2/G3.",
       [](const worker_status& w) { return double(w.load.kv_onboarded_blocks); }},
      {"yard_worker_g3_dropped_writes_total", "counter", "G3 writes refused because the disk fell behind.",
       [](const worker_status& w) { return double(w.load.g3_dropped_writes); }},
      {"yard_worker_g3_disabled", "gauge", "1 when G3 failed (disk full, I/O error) and runs degraded.",
       [](const worker_status& w) { return w.load.g3_disabled ? 1.0 : 0.0; }},
  };
  for (const auto& s : all) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", s.name, s.help, s.name, s.type);
    for (const auto& w : workers)
      out += fmt::format("{}{{worker=\"{}\",role=\"{}\",model=\"{}\"}} {}\n", s.name, label_value(w.id),
                         label_value(w.role), label_value(w.model), s.value(w));
  }
}

}  // namespace yard::actors
