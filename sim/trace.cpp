// sim/trace.cpp — see trace.hpp.
#include "sim/trace.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/log.hpp"

namespace yard::sim {

namespace {

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

constexpr std::uint32_t vocab = 32000;

// Validates one parsed line; on success fills `out`.
std::string check_line(const nlohmann::json& j, trace_request& out) {
  if (!j.is_object()) return "not a JSON object";
  for (const char* f : {"timestamp", "input_length", "output_length", "hash_ids"})
    if (!j.contains(f)) return std::string("missing field '") + f + "'";
  const auto& ts = j["timestamp"];
  if (!ts.is_number()) return "field 'timestamp' must be a number";
  if (ts.get<double>() < 0) return "negative timestamp";
  // Milliseconds: a year of trace is 3.2e10; a timestamp past 1e13 (three centuries) is a broken line.
  if (!(ts.get<double>() <= 1e13)) return "field 'timestamp' is implausibly large";
  for (const char* f : {"input_length", "output_length"}) {
    const auto& v = j[f];
    if (!v.is_number_integer()) return std::string("field '") + f + "' must be an integer";
    auto n = v.get<long long>();
    if (n <= 0) return std::string("field '") + f + "' must be positive (got " + std::to_string(n) + ")";
    if (n > (1ll << 24)) return std::string("field '") + f + "' is implausibly large (" + std::to_string(n) + ")";
  }
  const auto& ids = j["hash_ids"];
  if (!ids.is_array()) return "field 'hash_ids' must be an array";
  out.hash_ids.clear();
  out.hash_ids.reserve(ids.size());
  for (const auto& h : ids) {
    if (!h.is_number_integer() || h.get<long long>() < 0) return "field 'hash_ids' must hold non-negative integers";
    out.hash_ids.push_back(h.get<std::uint64_t>());
  }
  if (auto lc = j.find("latency_class"); lc != j.end()) {
    if (!lc->is_string() || !msg::wire_enum_from(lc->get<std::string>(), out.latency))
      return "field 'latency_class' must be 'interactive' or 'batch'";
  }
  if (auto p = j.find("priority"); p != j.end()) {
    if (!p->is_number_integer() || p->get<long long>() < -1000 || p->get<long long>() > 1000)
      return "field 'priority' must be an integer in [-1000, 1000]";
    out.priority = static_cast<std::int32_t>(p->get<long long>());
  }
  if (auto sid = j.find("session_id"); sid != j.end()) {
    if (!sid->is_string()) return "field 'session_id' must be a string";
    out.session_id = sid->get<std::string>();
  }
  out.arrival_ms = ts.get<double>();
  out.input_length = static_cast<std::uint32_t>(j["input_length"].get<long long>());
  out.output_length = static_cast<std::uint32_t>(j["output_length"].get<long long>());
  return {};
}

}  // namespace

result<trace> parse_trace(const std::string& text, const trace_load_options& opts) {
  auto log = component_logger("sim.trace");
  trace t;
  std::istringstream in(text);
  std::string line;
  std::uint64_t lineno = 0;
  double last_ts = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    trace_request r;
    std::string why;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) why = "invalid JSON";
    else why = check_line(j, r);
    if (why.empty() && r.arrival_ms < last_ts)
      why = "timestamp " + std::to_string(r.arrival_ms) + " goes backwards (previous " + std::to_string(last_ts) + ")";
    if (!why.empty()) {
      if (opts.reject_bad_lines) return make_error(errc::bad_request, "trace line " + std::to_string(lineno) + ": " + why);
      if (t.issues.size() < 20) log->warn("trace line {}: {} (skipped)", lineno, why);
      t.issues.push_back({lineno, why});
      continue;
    }
    last_ts = r.arrival_ms;
    r.line = lineno;
    t.requests.push_back(std::move(r));
    if (opts.limit && t.requests.size() >= opts.limit) break;
  }
  if (t.issues.size() > 20) log->warn("{} bad trace lines in all (first 20 shown)", t.issues.size());
  return t;
}

result<trace> load_trace(const std::string& path, const trace_load_options& opts) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(errc::io_error, "cannot open trace '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  auto r = parse_trace(ss.str(), opts);
  if (!r) return make_error(r.err().code, path + ": " + r.err().message);
  return r;
}

std::vector<kv::token_id> expand_tokens(const trace_request& r) {
  std::vector<kv::token_id> toks(r.input_length);
  for (std::uint32_t k = 0; k < r.input_length; ++k) {
    std::uint32_t blk = k / trace_block_tokens, off = k % trace_block_tokens;
    std::uint64_t key = blk < r.hash_ids.size()
                            ? (r.hash_ids[blk] << 10) | off
                            : (1ull << 63) | (r.line << 24) | k;  // unique to this request
    toks[k] = 1 + static_cast<kv::token_id>(splitmix(key) % vocab);
  }
  return toks;
}

std::string shared_data_dir() {
  namespace fs = std::filesystem;
  if (const char* d = std::getenv("YARD_SHARED_DIR"); d && *d && fs::is_directory(d)) return d;
  std::vector<fs::path> roots;
  if (const char* s = std::getenv("YARD_SOURCE_DIR"); s && *s) roots.emplace_back(s);
  std::error_code ec;
  for (auto p = fs::current_path(ec); !ec && !p.empty(); p = p.parent_path()) {
    roots.push_back(p);
    if (p == p.root_path()) break;
  }
  for (const auto& r : roots) {
    auto cand = r / ".." / "shared";
    if (fs::is_directory(cand / "data", ec)) return fs::weakly_canonical(cand, ec).string();
  }
  return {};
}

}  // namespace yard::sim
