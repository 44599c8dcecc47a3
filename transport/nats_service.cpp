#include "transport/nats_service.hpp"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <random>
#include <regex>

#include <nlohmann/json.hpp>

#include "common/log.hpp"

namespace yard::transport {

namespace {

using ordered_json = nlohmann::ordered_json;

auto& log() {
  static auto l = component_logger("nats_service");
  return l;
}

// Like the clients' NUID: 22 base62 characters (~131 random bits).
std::string new_instance_id() {
  static constexpr char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::random_device rd;
  std::mt19937_64 gen((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
  std::uniform_int_distribution<int> pick(0, 61);
  std::string id(22, '0');
  for (auto& c : id) c = alphabet[pick(gen)];
  return id;
}

// RFC 3339 in UTC with nanoseconds, as Go's time.RFC3339Nano parses it.
std::string rfc3339_nanos(std::chrono::system_clock::time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  long frac = static_cast<long>(ns % 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

bool has_space(std::string_view s) { return s.find_first_of(" \t\r\n") != std::string_view::npos; }

// Subject as ADR-32 endpoints allow: non-empty, no whitespace, '>' only as the last token.
bool valid_subject(std::string_view s) {
  if (s.empty() || has_space(s) || s.front() == '.' || s.back() == '.') return false;
  auto gt = s.find('>');
  return gt == std::string_view::npos || (gt == s.size() - 1 && (gt == 0 || s[gt - 1] == '.'));
}

ordered_json metadata_json(const service_metadata& m) {
  ordered_json o = ordered_json::object();  // {} rather than null when empty
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

}  // namespace

bool valid_semver(std::string_view version) {
  // semver.org's suggested regex (the one nats.go uses), in ECMAScript syntax.
  static const std::regex re(
      R"(^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$)");
  return std::regex_match(version.begin(), version.end(), re);
}

bool valid_service_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// Counters of one endpoint. Relaxed atomics: a STATS snapshot may see a request's
// count without its time (or the reverse); each counter is exact on its own.
struct endpoint_counter {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> processing_ns{0};
  mutable std::mutex error_mu;  // guards last_error only
  std::string last_error;
};

struct nats_service::state {
  nats_service_config cfg;
  std::string id;
  std::string started;  // RFC 3339 UTC, fixed at start
  std::string ping_body, info_body;  // immutable after start: built once
  std::unique_ptr<endpoint_counter[]> counters;  // [cfg.endpoints.size()]
  nats_connection* conn = nullptr;
  std::atomic<bool> stopped{false};
  std::mutex subs_mu;
  std::vector<subscription> subs;  // each handler holds a shared_ptr to this state: stop() breaks the cycle

  ordered_json identity(std::string_view type) const {
    ordered_json j = ordered_json::object();
    j["type"] = type;
    j["name"] = cfg.name;
    j["id"] = id;
    j["version"] = cfg.version;
    j["metadata"] = metadata_json(cfg.metadata);
    return j;
  }

  endpoint_stats snapshot(std::size_t i) const {
    const auto& ep = cfg.endpoints[i];
    const auto& c = counters[i];
    endpoint_stats s;
    s.name = ep.name;
    s.subject = ep.subject;
    s.queue_group = ep.queue_group;
    s.num_requests = c.requests.load(std::memory_order_relaxed);
    s.num_errors = c.errors.load(std::memory_order_relaxed);
    s.processing_time = std::chrono::nanoseconds(c.processing_ns.load(std::memory_order_relaxed));
    s.average_processing_time =
        s.num_requests == 0 ? std::chrono::nanoseconds(0) : s.processing_time / static_cast<std::int64_t>(s.num_requests);
    std::lock_guard<std::mutex> lock(c.error_mu);
    s.last_error = c.last_error;
    return s;
  }

  std::string stats_body() const {
    ordered_json j = identity(stats_response_type);
    ordered_json eps = ordered_json::array();
    for (std::size_t i = 0; i < cfg.endpoints.size(); ++i) {
      auto s = snapshot(i);
      ordered_json e = ordered_json::object();
      e["name"] = s.name;
      e["subject"] = s.subject;
      e["queue_group"] = s.queue_group;
      e["num_requests"] = s.num_requests;
      e["num_errors"] = s.num_errors;
      e["last_error"] = s.last_error;
      e["processing_time"] = s.processing_time.count();
      e["average_processing_time"] = s.average_processing_time.count();
      if (const auto& data = cfg.endpoints[i].stats_data) {
        auto parsed = ordered_json::parse(data(), nullptr, /*allow_exceptions=*/false);
        if (!parsed.is_discarded()) e["data"] = std::move(parsed);
      }
      eps.push_back(std::move(e));
    }
    j["endpoints"] = std::move(eps);
    j["started"] = started;
    return j.dump();
  }
};

nats_service::nats_service(std::shared_ptr<state> s) : state_(std::move(s)) {}

nats_service::~nats_service() { stop(); }

result<std::unique_ptr<nats_service>> nats_service::start(nats_connection& conn, nats_service_config cfg) {
  if (!valid_service_name(cfg.name))
    return make_error(errc::bad_request, "service name '" + cfg.name + "' must be [A-Za-z0-9_-]+");
  if (!valid_semver(cfg.version))
    return make_error(errc::bad_request, "service '" + cfg.name + "': version '" + cfg.version + "' is not SemVer");
  if (!valid_subject(cfg.api_prefix) || cfg.api_prefix.find_first_of("*>") != std::string::npos)
    return make_error(errc::bad_request, "service '" + cfg.name + "': bad API prefix '" + cfg.api_prefix + "'");
  for (std::size_t i = 0; i < cfg.endpoints.size(); ++i) {
    const auto& ep = cfg.endpoints[i];
    std::string where = "service '" + cfg.name + "' endpoint '" + ep.name + "'";
    if (!valid_service_name(ep.name)) return make_error(errc::bad_request, where + ": name must be [A-Za-z0-9_-]+");
    if (!valid_subject(ep.subject)) return make_error(errc::bad_request, where + ": bad subject '" + ep.subject + "'");
    if (has_space(ep.queue_group)) return make_error(errc::bad_request, where + ": bad queue group");
    for (std::size_t k = 0; k < i; ++k)
      if (cfg.endpoints[k].name == ep.name) return make_error(errc::bad_request, where + ": listed twice");
  }

  auto st = std::make_shared<state>();
  st->cfg = std::move(cfg);
  st->id = new_instance_id();
  st->started = rfc3339_nanos(std::chrono::system_clock::now());
  st->conn = &conn;
  st->counters = std::make_unique<endpoint_counter[]>(st->cfg.endpoints.size());
  st->ping_body = st->identity(ping_response_type).dump();
  {
    ordered_json j = st->identity(info_response_type);
    j["description"] = st->cfg.description;
    ordered_json eps = ordered_json::array();
    for (const auto& ep : st->cfg.endpoints) {
      ordered_json e = ordered_json::object();
      e["name"] = ep.name;
      e["subject"] = ep.subject;
      e["queue_group"] = ep.queue_group;
      e["metadata"] = metadata_json(ep.metadata);
      eps.push_back(std::move(e));
    }
    j["endpoints"] = std::move(eps);
    st->info_body = j.dump();
  }

  // Three subscriptions, the verb a wildcard: <prefix>.*, <prefix>.*.<name>,
  // <prefix>.*.<name>.<id> (PING, INFO, STATS; other verbs are ignored). Only
  // the addressed services subscribe a name or id subject, so a query for one
  // that is gone gets NATS "no responders" at once. No queue group: every
  // instance answers discovery. The body is ignored (always empty).
  std::vector<subscription> subs;
  const std::string prefix = st->cfg.api_prefix + ".";
  for (const std::string& tail : {std::string(), "." + st->cfg.name, "." + st->cfg.name + "." + st->id}) {
    auto sub = conn.subscribe(prefix + "*" + tail, [st, prefix](nats_message m) {
      if (m.reply.empty() || st->stopped.load(std::memory_order_acquire)) return;
      std::string_view verb(m.subject);
      verb.remove_prefix(std::min(prefix.size(), verb.size()));
      verb = verb.substr(0, verb.find('.'));
      std::string stats;
      const std::string* body = nullptr;
      if (verb == "PING") body = &st->ping_body;
      else if (verb == "INFO") body = &st->info_body;
      else if (verb == "STATS") body = &(stats = st->stats_body());
      else return;
      auto sent = st->conn->publish(m.reply, *body, {}, "application/json");
      if (!sent) log()->warn("service {} ({}): reply on {} failed: {}", st->cfg.name, st->id, m.subject, sent.err().describe());
    });
    if (!sub) {
      st->stopped = true;
      return make_error(sub.err().code, "service '" + st->cfg.name + "': " + sub.err().message);
    }
    subs.push_back(std::move(*sub));
  }
  if (auto f = conn.flush(); !f) {
    st->stopped = true;
    return make_error(f.err().code, "service '" + st->cfg.name + "': " + f.err().message);
  }
  {
    std::lock_guard<std::mutex> lock(st->subs_mu);
    st->subs = std::move(subs);
  }
  log()->info("service {} {} started as {} with {} endpoint(s)", st->cfg.name, st->cfg.version, st->id,
              st->cfg.endpoints.size());
  return std::unique_ptr<nats_service>(new nats_service(std::move(st)));
}

void nats_service::stop() {
  state_->stopped.store(true, std::memory_order_release);
  std::vector<subscription> subs;
  {
    std::lock_guard<std::mutex> lock(state_->subs_mu);
    subs.swap(state_->subs);
  }
  subs.clear();  // unsubscribes; the handlers (and their state references) go when nats.c completes them
}

bool nats_service::stopped() const { return state_->stopped.load(std::memory_order_acquire); }
const std::string& nats_service::id() const { return state_->id; }
const std::string& nats_service::name() const { return state_->cfg.name; }

std::optional<std::size_t> nats_service::endpoint_index(std::string_view endpoint) const {
  const auto& eps = state_->cfg.endpoints;
  for (std::size_t i = 0; i < eps.size(); ++i)
    if (eps[i].name == endpoint) return i;
  return std::nullopt;
}

status nats_service::record(std::string_view endpoint, std::chrono::nanoseconds processing,
                            std::optional<std::string> error) {
  auto i = endpoint_index(endpoint);
  if (!i)
    return make_error(errc::not_found, "service '" + state_->cfg.name + "' has no endpoint '" + std::string(endpoint) + "'");
  record(*i, processing, std::move(error));
  return status::success();
}

void nats_service::record(std::size_t endpoint_index, std::chrono::nanoseconds processing,
                          std::optional<std::string> error) {
  assert(endpoint_index < state_->cfg.endpoints.size());
  auto& c = state_->counters[endpoint_index];
  c.requests.fetch_add(1, std::memory_order_relaxed);
  c.processing_ns.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(processing.count(), 0)),
                            std::memory_order_relaxed);
  if (error) {
    c.errors.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(c.error_mu);
    c.last_error = std::move(*error);
  }
}

void nats_service::reset() {
  for (std::size_t i = 0; i < state_->cfg.endpoints.size(); ++i) {
    auto& c = state_->counters[i];
    c.requests.store(0, std::memory_order_relaxed);
    c.errors.store(0, std::memory_order_relaxed);
    c.processing_ns.store(0, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(c.error_mu);
    c.last_error.clear();
  }
}

std::vector<endpoint_stats> nats_service::stats() const {
  std::vector<endpoint_stats> out;
  for (std::size_t i = 0; i < state_->cfg.endpoints.size(); ++i) out.push_back(state_->snapshot(i));
  return out;
}

std::string nats_service::ping_json() const { return state_->ping_body; }
std::string nats_service::info_json() const { return state_->info_body; }
std::string nats_service::stats_json() const { return state_->stats_body(); }

}  // namespace yard::transport
