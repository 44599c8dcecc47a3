#include "backends/external/upstream_load.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace yard::backends::external {

namespace {

bool name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

// Skips a `{...}` label block (quoted values may hold '}' and escapes); returns
// the position after it, or npos when it is unterminated.
std::size_t skip_labels(std::string_view line, std::size_t i) {
  bool quoted = false;
  for (++i; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
    } else if (c == '"') {
      quoted = true;
    } else if (c == '}') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

std::optional<double> value_of(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  auto end = s.find_first_of(" \t");
  std::string v(s.substr(0, end));
  if (v.empty()) return std::nullopt;
  if (v == "+Inf") return INFINITY;
  if (v == "-Inf") return -INFINITY;
  if (v == "NaN") return NAN;
  char* stop = nullptr;
  double d = std::strtod(v.c_str(), &stop);
  if (stop != v.c_str() + v.size()) return std::nullopt;
  return d;
}

}  // namespace

metric_sums parse_prometheus_text(std::string_view text) {
  metric_sums out;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    std::size_t i = 0;
    while (i < line.size() && name_char(line[i], i == 0)) ++i;
    if (i == 0) {
      out.malformed_lines++;
      continue;
    }
    auto name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') i = skip_labels(line, i);
    if (i == std::string_view::npos || i >= line.size()) {
      out.malformed_lines++;
      continue;
    }
    auto v = value_of(line.substr(i));
    if (!v || std::isnan(*v)) {
      if (!v) out.malformed_lines++;
      continue;
    }
    auto it = out.sum.find(name);
    if (it == out.sum.end()) it = out.sum.emplace(std::string(name), 0.0).first;
    it->second += *v;
    out.series[std::string(name)]++;
  }
  return out;
}

upstream_load load_from_metrics(const metric_sums& m) {
  auto sum = [&](std::string_view n) -> std::optional<double> {
    auto it = m.sum.find(n);
    if (it == m.sum.end()) return std::nullopt;
    return it->second;
  };
  auto mean = [&](std::string_view n) -> std::optional<double> {
    auto it = m.sum.find(n);
    if (it == m.sum.end()) return std::nullopt;
    auto c = m.series.find(n);
    return it->second / std::max(1, c == m.series.end() ? 1 : c->second);
  };
  upstream_load l;
  auto fraction = [&](std::optional<double> f) {
    if (!f) return;
    l.kv_capacity = 1000.0;
    l.kv_used = std::clamp(*f, 0.0, 1.0) * 1000.0;
  };
  if (auto r = sum("vllm:num_requests_running")) {
    l.dialect = "vllm";
    l.running = r;
    l.waiting = sum("vllm:num_requests_waiting");
    auto f = mean("vllm:kv_cache_usage_perc");
    fraction(f ? f : mean("vllm:gpu_cache_usage_perc"));
  } else if (auto r = sum("sglang:num_running_reqs")) {
    l.dialect = "sglang";
    l.running = r;
    l.waiting = sum("sglang:num_queue_reqs");
    fraction(mean("sglang:token_usage"));
  } else if (auto r = sum("llamacpp:requests_processing")) {
    l.dialect = "llama.cpp";
    l.running = r;
    l.waiting = sum("llamacpp:requests_deferred");
    fraction(mean("llamacpp:kv_cache_usage_ratio"));
  } else if (auto r = sum("yard_worker_active_requests")) {
    l.dialect = "switchyard";
    l.running = r;
    l.waiting = sum("yard_worker_queued_requests");
    l.kv_used = sum("yard_worker_kv_blocks_active");
    l.kv_capacity = sum("yard_worker_kv_blocks_capacity");
  }
  // Counts: a negative or NaN value is not one (dropped); a huge one is clamped to what a uint32 load field holds
  // (an overloaded server must not look idle after a wrapping cast).
  for (auto* v : {&l.running, &l.waiting, &l.kv_used, &l.kv_capacity}) {
    if (!*v) continue;
    if (!(**v >= 0.0)) v->reset();
    else *v = std::min(**v, 4294967295.0);
  }
  if (l.kv_used && l.kv_capacity && *l.kv_used > *l.kv_capacity) l.kv_used = l.kv_capacity;
  return l;
}

}  // namespace yard::backends::external
