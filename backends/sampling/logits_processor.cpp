// backends/sampling/logits_processor.cpp — see logits_processor.hpp.
#include "backends/sampling/logits_processor.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

namespace yard::backends {

bool needs_logits_processing(const msg::sampling_params& p) {
  return p.repetition_penalty != 1.0 || p.frequency_penalty != 0.0 || p.presence_penalty != 0.0 ||
         !p.logit_bias.empty() || p.min_tokens > 0;
}

void apply_logits_processors(std::span<float> logits, const msg::sampling_params& p, std::span<const token_id> prompt,
                             std::span<const token_id> output, std::span<const token_id> stop_ids) {
  const std::size_t vocab = logits.size();
  if (p.repetition_penalty != 1.0 && p.repetition_penalty > 0.0) {
    std::vector<bool> seen(vocab, false);
    for (auto spans : {prompt, output})
      for (auto t : spans)
        if (t < vocab) seen[t] = true;
    const float rp = static_cast<float>(p.repetition_penalty);
    for (std::size_t t = 0; t < vocab; ++t)
      if (seen[t]) logits[t] = logits[t] > 0 ? logits[t] / rp : logits[t] * rp;
  }
  if (p.frequency_penalty != 0.0 || p.presence_penalty != 0.0) {
    std::unordered_map<token_id, std::uint32_t> count;
    for (auto t : output)
      if (t < vocab) ++count[t];
    for (const auto& [t, n] : count)
      logits[t] -= static_cast<float>(p.frequency_penalty * n + p.presence_penalty);
  }
  for (const auto& b : p.logit_bias)
    if (b.token < vocab) logits[b.token] += b.bias;
  if (output.size() < p.min_tokens)
    for (auto t : stop_ids)
      if (t < vocab) logits[t] = -INFINITY;
}

namespace {

double log_sum_exp(std::span<const float> logits) {
  float mx = -INFINITY;
  for (float x : logits) mx = std::max(mx, x);
  if (mx == -INFINITY) return -INFINITY;
  double z = 0;
  for (float x : logits) z += std::exp(static_cast<double>(x) - mx);
  return mx + std::log(z);
}

}  // namespace

float token_logprob(std::span<const float> logits, token_id token) {
  if (token >= logits.size()) return -INFINITY;
  return static_cast<float>(logits[token] - log_sum_exp(logits));
}

std::vector<std::pair<token_id, float>> top_logprobs(std::span<const float> logits, std::uint32_t k) {
  std::vector<std::pair<token_id, float>> out;
  if (k == 0 || logits.empty()) return out;
  const double lse = log_sum_exp(logits);
  std::vector<token_id> idx(logits.size());
  std::iota(idx.begin(), idx.end(), token_id{0});
  const std::size_t n = std::min<std::size_t>(k, idx.size());
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n), idx.end(), [&](token_id a, token_id b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  for (std::size_t i = 0; i < n; ++i) {
    if (logits[idx[i]] == -INFINITY) break;
    out.emplace_back(idx[i], static_cast<float>(logits[idx[i]] - lse));
  }
  return out;
}

}  // namespace yard::backends
