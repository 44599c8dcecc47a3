// sim/synthetic.cpp — see synthetic.hpp.
#include "sim/synthetic.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace yard::sim {

trace generate_synthetic(const synthetic_options& o) {
  std::mt19937_64 rng(o.seed);
  std::exponential_distribution<double> gap(o.session_rate_per_s / 1000.0);
  std::exponential_distribution<double> think(1.0 / std::max(1.0, o.think_time_ms));
  std::uniform_int_distribution<std::uint32_t> group(0, std::max(1u, o.prefix_groups) - 1);
  std::uniform_int_distribution<std::uint32_t> out_len(std::max(1u, o.output_tokens / 2), std::max(1u, o.output_tokens * 3 / 2));
  std::uniform_int_distribution<std::uint32_t> tail(1, trace_block_tokens);
  std::uint64_t next_id = 0;
  std::vector<std::vector<std::uint64_t>> prefixes(std::max(1u, o.prefix_groups));
  for (auto& p : prefixes)
    for (std::uint32_t b = 0; b < o.prefix_blocks; ++b) p.push_back(next_id++);
  trace t;
  double start = 0;
  for (std::uint32_t s = 0; s < o.sessions; ++s) {
    start += gap(rng);
    std::vector<std::uint64_t> ids = prefixes[group(rng)];
    double at = start;
    for (std::uint32_t turn = 0; turn < o.turns_per_session; ++turn) {
      for (std::uint32_t b = 0; b < std::max(1u, o.turn_blocks); ++b) ids.push_back(next_id++);
      trace_request r;
      r.arrival_ms = std::floor(at);
      r.hash_ids = ids;
      r.input_length = static_cast<std::uint32_t>((ids.size() - 1) * trace_block_tokens + tail(rng));
      r.output_length = out_len(rng);
      t.requests.push_back(std::move(r));
      at += think(rng);
    }
  }
  std::stable_sort(t.requests.begin(), t.requests.end(),
                   [](const trace_request& a, const trace_request& b) { return a.arrival_ms < b.arrival_ms; });
  for (std::size_t i = 0; i < t.requests.size(); ++i) t.requests[i].line = i + 1;
  return t;
}

}  // namespace yard::sim
