// backends/timing_model.hpp — emulated step time of a vLLM-style engine.
//
// Owns: the engine profile (timing coefficients plus the scheduler/pool limits
// they were measured with), its JSON form (profiles/default.json), and the
// step-time function the mock executor uses.
// Must not touch: scheduling, clocks.
// Thread-safety: plain values and pure functions.
//
// Model, per step (t_i = new tokens of prefilling sequence i, c_i = its context
// already in KV, u = active KV tokens / pool tokens):
//   prefill_ms = Σ_i pa·(t_i² + k·t_i·c_i) + pb·Σ_i t_i + pc     (when any prefill work)
//   decode_ms  = max(dmin, da·u² + db·u + dc)                    (when any decode work)
//   step_ms    = prefill_ms + decode_ms
// With c = 0 the prefill term is exactly the profile's quadratic in new tokens;
// k = 2 charges new tokens attending to cached context like the causal t² term.
#pragma once

#include <cstdint>
#include <string>

#include "backends/scheduler/batch_plan.hpp"
#include "backends/scheduler/scheduler.hpp"
#include "common/status.hpp"

namespace yard::backends {

struct engine_profile {
  std::string name = "default";
  double prefill_a = 4.209989e-7;  // ms per token² (default Dynamo mocker)
  double prefill_b = 1.518344e-2;  // ms per token
  double prefill_c = 16.50142;     // ms per step with prefill
  double prefill_context_factor = 2.0;  // weight of t·c (default 2)
  double decode_a = -25.74;        // ms per u²
  double decode_b = 54.01;         // ms per u
  double decode_c = 5.74;          // ms
  double decode_min_ms = 1.0;      // floor (default 1 ms)
  std::uint32_t block_size = 64;   // tokens per KV block (default 64)
  std::uint32_t num_blocks = 16384;
  std::uint32_t max_num_seqs = 256;
  std::uint32_t max_num_batched_tokens = 8192;
  double watermark = 0.01;
  std::uint32_t max_model_len = 32768;  // longest prompt + output (default 32768)
};

// The built-in default (identical to profiles/default.json).
engine_profile default_profile();

// Parses a profile JSON document; absent fields keep the defaults. Errors name the field.
result<engine_profile> parse_profile(const std::string& json_text);
result<engine_profile> load_profile(const std::string& path);

double prefill_ms(const engine_profile& p, double new_tokens, double context_tokens);
double decode_ms(const engine_profile& p, double kv_utilisation);
// Step time of a plan (before any speedup).
double step_time_ms(const engine_profile& p, const batch_plan& plan);

scheduler_config scheduler_config_from(const engine_profile& p);

// Modelled time to copy `blocks` KV blocks of `block_bytes` at `gbps` GB/s
// (tier onboarding, charged to the mock's step time). gbps <= 0 -> 0.
double onboard_ms(std::size_t blocks, std::size_t block_bytes, double gbps);

}  // namespace yard::backends
