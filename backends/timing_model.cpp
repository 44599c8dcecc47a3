// backends/timing_model.cpp — see timing_model.hpp.
#include "backends/timing_model.hpp"

#include <cmath>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace yard::backends {

engine_profile default_profile() { return engine_profile{}; }

namespace {

template <class T>
status read_field(const nlohmann::json& obj, const char* key, const std::string& where, T& out) {
  if (!obj.contains(key)) return status::success();
  const auto& v = obj.at(key);
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return make_error(errc::bad_request, "profile field '" + where + key + "' must be a string");
    out = v.get<std::string>();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) return make_error(errc::bad_request, "profile field '" + where + key + "' must be a number");
    out = v.get<double>();
  } else {
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<long long>() >= 0))
      return make_error(errc::bad_request, "profile field '" + where + key + "' must be a non-negative integer");
    out = static_cast<T>(v.get<unsigned long long>());
  }
  return status::success();
}

}  // namespace

result<engine_profile> parse_profile(const std::string& json_text) {
  auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(errc::bad_request, "profile is not a JSON object");
  engine_profile p;
  status st;
  auto chk = [&](status s) { if (st.ok() && !s.ok()) st = s; };
  chk(read_field(j, "name", "", p.name));
  if (j.contains("prefill")) {
    const auto& o = j["prefill"];
    if (!o.is_object()) return make_error(errc::bad_request, "profile field 'prefill' must be an object");
    chk(read_field(o, "a", "prefill.", p.prefill_a));
    chk(read_field(o, "b", "prefill.", p.prefill_b));
    chk(read_field(o, "c", "prefill.", p.prefill_c));
    chk(read_field(o, "context_factor", "prefill.", p.prefill_context_factor));
  }
  if (j.contains("decode")) {
    const auto& o = j["decode"];
    if (!o.is_object()) return make_error(errc::bad_request, "profile field 'decode' must be an object");
    chk(read_field(o, "a", "decode.", p.decode_a));
    chk(read_field(o, "b", "decode.", p.decode_b));
    chk(read_field(o, "c", "decode.", p.decode_c));
    chk(read_field(o, "min_ms", "decode.", p.decode_min_ms));
  }
  chk(read_field(j, "block_size", "", p.block_size));
  chk(read_field(j, "num_blocks", "", p.num_blocks));
  chk(read_field(j, "max_num_seqs", "", p.max_num_seqs));
  chk(read_field(j, "max_num_batched_tokens", "", p.max_num_batched_tokens));
  chk(read_field(j, "watermark", "", p.watermark));
  chk(read_field(j, "max_model_len", "", p.max_model_len));
  if (!st.ok()) return st.err();
  if (p.block_size == 0) return make_error(errc::bad_request, "profile field 'block_size' must be > 0");
  if (p.max_model_len == 0) return make_error(errc::bad_request, "profile field 'max_model_len' must be > 0");
  if (p.num_blocks == 0) return make_error(errc::bad_request, "profile field 'num_blocks' must be > 0");
  if (p.watermark < 0 || p.watermark >= 1) return make_error(errc::bad_request, "profile field 'watermark' must be in [0, 1)");
  if (p.max_num_seqs == 0) return make_error(errc::bad_request, "profile field 'max_num_seqs' must be > 0");
  if (p.max_num_batched_tokens == 0) return make_error(errc::bad_request, "profile field 'max_num_batched_tokens' must be > 0");
  // A coefficient may be negative (a fitted curve bends: the default decode_a is), but the times it gives may not:
  // a negative or non-finite step time made the simulator report TTFTs under a millisecond.
  const double len = p.max_model_len;
  const auto usable = [](double ms) { return std::isfinite(ms) && ms >= 0.0; };
  for (double n : {1.0, 16.0, 256.0, 4096.0, len})
    for (double ctx : {0.0, len / 2})
      if (n <= len && !usable(prefill_ms(p, n, ctx)))
        return make_error(errc::bad_request, "profile: prefill.a/b/c/context_factor give a negative or non-finite time (" +
                                                 std::to_string(n) + " new tokens after " + std::to_string(ctx) + ")");
  for (double u : {0.0, 0.25, 0.5, 0.75, 1.0})
    if (!usable(decode_ms(p, u)))
      return make_error(errc::bad_request, "profile: decode.a/b/c/min_ms give a negative or non-finite time (KV use " +
                                               std::to_string(u) + ")");
  return p;
}

result<engine_profile> load_profile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return make_error(errc::io_error, "cannot open profile '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  auto r = parse_profile(ss.str());
  if (!r) return make_error(r.err().code, path + ": " + r.err().message);
  return r;
}

double prefill_ms(const engine_profile& p, double t, double c) {
  return p.prefill_a * (t * t + p.prefill_context_factor * t * c) + p.prefill_b * t + p.prefill_c;
}

double decode_ms(const engine_profile& p, double u) {
  return std::max(p.decode_min_ms, p.decode_a * u * u + p.decode_b * u + p.decode_c);
}

double step_time_ms(const engine_profile& p, const batch_plan& plan) {
  double ms = 0;
  bool any_prefill = false, any_decode = plan.num_decode_seqs > 0;
  for (const auto& e : plan.seqs) {
    if (!e.is_prefill) continue;
    // A one-token "prefill" (a resumed sequence whose KV is all present, e.g.
    // after a disaggregated prefill of a block-aligned prompt) is a decode.
    if (e.tokens.size() <= 1 && e.start_pos > 0) {
      any_decode = true;
      continue;
    }
    double t = static_cast<double>(e.tokens.size()), c = e.start_pos;
    ms += p.prefill_a * (t * t + p.prefill_context_factor * t * c) + p.prefill_b * t;
    any_prefill = true;
  }
  if (any_prefill) ms += p.prefill_c;
  if (any_decode) {
    double cap = double(plan.num_blocks) * plan.block_size;
    double u = cap > 0 ? std::min(1.0, double(plan.active_kv_tokens) / cap) : 0.0;
    ms += decode_ms(p, u);
  }
  return ms;
}

double onboard_ms(std::size_t blocks, std::size_t block_bytes, double gbps) {
  if (gbps <= 0) return 0.0;
  return double(blocks) * double(block_bytes) / (gbps * 1e6);  // GB/s = 1e6 bytes per ms
}

scheduler_config scheduler_config_from(const engine_profile& p) {
  scheduler_config c;
  c.max_num_seqs = p.max_num_seqs;
  c.max_num_batched_tokens = p.max_num_batched_tokens;
  c.watermark = p.watermark;
  c.max_model_len = p.max_model_len;
  return c;
}

}  // namespace yard::backends
