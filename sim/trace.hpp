// sim/trace.hpp — request traces for the simulator: the Mooncake JSONL loader and token expansion.
//
// Owns: trace_request (one arrival), loading and validating Mooncake JSONL
// ({"timestamp": ms, "input_length": n, "output_length": n, "hash_ids": [...]}
// where each hash id names a 512-token block), and the deterministic expansion
// of hash ids into tokens: token k of hash id h depends only on (h, k), so equal
// hash ids give equal token blocks at any engine block size.
// Must not touch: simulation state.
// Thread-safety: pure functions; traces are plain values (share them read-only).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "messages/types.hpp"

#include "common/status.hpp"
#include "kv/block_hash.hpp"

namespace yard::sim {

inline constexpr std::uint32_t trace_block_tokens = 512;  // tokens per Mooncake hash id

struct trace_request {
  double arrival_ms = 0;            // trace timestamp (before rate scaling)
  std::uint32_t input_length = 0;   // prompt tokens
  std::uint32_t output_length = 0;  // tokens to generate
  std::vector<std::uint64_t> hash_ids;
  std::uint64_t line = 0;           // source line (1-based), or index for generated traces
  // Agent hints (optional trace fields "latency_class", "priority", "session_id"; or assigned by sim_options).
  msg::latency_class latency = msg::latency_class::interactive;
  std::int32_t priority = 0;
  std::string session_id;
};

struct trace_issue {
  std::uint64_t line = 0;
  std::string reason;
};

struct trace {
  std::vector<trace_request> requests;
  std::vector<trace_issue> issues;  // bad lines that were skipped
};

struct trace_load_options {
  bool reject_bad_lines = false;    // true: the first bad line fails the load (default: skip and report)
  std::uint64_t limit = 0;          // keep at most this many requests (default 0 = all)
};

// Parses JSONL text (lines numbered from 1). Bad lines — invalid JSON, missing
// or mistyped fields, negative or zero lengths, timestamps going backwards — are
// reported with their line numbers and skipped, or fail the load when
// reject_bad_lines is set.
result<trace> parse_trace(const std::string& text, const trace_load_options& opts = {});
result<trace> load_trace(const std::string& path, const trace_load_options& opts = {});

// The prompt tokens of a request, expanded from its hash ids (tokens past the
// listed ids come from a per-request unique stream: they never match).
std::vector<kv::token_id> expand_tokens(const trace_request& r);

// Where the shared data folder is: $YARD_SHARED_DIR, else <repo>/../shared
// (repo from $YARD_SOURCE_DIR or the current directory's ancestors). Empty if none.
std::string shared_data_dir();

}  // namespace yard::sim
