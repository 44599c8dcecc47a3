// backends/tests/engine_test_util.hpp — driving an engine to idle in tests.
//
// Owns: run_all (step until idle, collecting each request's tokens, text,
// finish reason, usage, logprobs and the model time of its steps), req (a
// token-prompt request) and prompt (deterministic token prompts). Used by the
// native engine and KV tiering tests; must not touch engine internals.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backends/engine.hpp"

namespace yard::backends::testing {

struct run_out {
  std::vector<token_id> tokens;
  std::string text;
  std::string finish;
  msg::usage usage;
  std::vector<float> logprobs;
  std::vector<msg::token_logprob> token_logprobs;
  std::vector<double> step_ms;  // model time of every step that produced output for this request
};

// Steps until idle (at most 10,000 steps); per request what it produced.
inline std::map<std::string, run_out> run_all(engine& e) {
  std::map<std::string, run_out> out;
  for (int guard = 0; e.has_work() && guard < 10000; ++guard) {
    auto r = e.step();
    for (auto& o : r.outputs) {
      auto& ro = out[o.request_id];
      ro.tokens.insert(ro.tokens.end(), o.new_tokens.begin(), o.new_tokens.end());
      ro.text += o.text_delta;
      ro.logprobs.insert(ro.logprobs.end(), o.logprobs.begin(), o.logprobs.end());
      ro.token_logprobs.insert(ro.token_logprobs.end(), o.token_logprobs.begin(), o.token_logprobs.end());
      ro.step_ms.push_back(r.model_time_ms);
      if (o.finish_reason) {
        ro.finish = std::string(msg::wire_name(*o.finish_reason));
        ro.usage = o.usage_info;
      }
    }
  }
  return out;
}

inline engine_request req(const std::string& id, std::vector<token_id> prompt, std::uint32_t max_tokens) {
  engine_request r;
  r.request_id = id;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  return r;
}

// n tokens in [0, 250), different for each salt.
inline std::vector<token_id> prompt(int n, std::uint32_t salt) {
  std::vector<token_id> p(n);
  for (int i = 0; i < n; ++i) p[i] = (salt * 131 + static_cast<std::uint32_t>(i) * 37 + 11) % 250;
  return p;
}

}  // namespace yard::backends::testing
