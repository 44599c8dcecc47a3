// sim/synthetic.hpp — a synthetic trace generator: shared-prefix groups, multi-turn sessions, Poisson arrivals.
//
// Owns: generating trace_request lists in the Mooncake shape (hash ids of 512-token
// blocks), deterministically from a seed. Must not touch: files, simulation.
// Thread-safety: pure function.
#pragma once

#include <cstdint>

#include "sim/trace.hpp"

namespace yard::sim {

struct synthetic_options {
  std::uint32_t sessions = 200;          // conversations (default 200)
  std::uint32_t turns_per_session = 4;   // turns per conversation, the last may be cut by `requests` (default 4)
  std::uint32_t prefix_groups = 8;       // distinct shared system prompts (default 8)
  std::uint32_t prefix_blocks = 8;       // 512-token blocks in each shared prefix (default 8 = 4096 tokens)
  std::uint32_t turn_blocks = 2;         // new 512-token blocks per turn (default 2)
  std::uint32_t output_tokens = 200;     // mean output length (default 200)
  double session_rate_per_s = 2.0;       // Poisson session starts (default 2/s)
  double think_time_ms = 5000;           // mean gap between turns of one session (default 5 s)
  std::uint64_t seed = 1;
};

trace generate_synthetic(const synthetic_options& o);

}  // namespace yard::sim
