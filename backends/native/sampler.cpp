#include "backends/native/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace yard::backends::native {

sample_result sample(const float* logits, int vocab, const msg::sampling_params& p, std::mt19937_64& rng) {
  float mx = -INFINITY;
  int arg = 0;
  for (int i = 0; i < vocab; ++i)
    if (logits[i] > mx) { mx = logits[i]; arg = i; }
  double z = 0;
  for (int i = 0; i < vocab; ++i) z += std::exp(static_cast<double>(logits[i]) - mx);
  const double log_z = mx + std::log(z);
  sample_result r;
  if (p.temperature <= 0.0 || p.top_k == 1) {
    r.token = arg;
    r.logprob = static_cast<float>(logits[arg] - log_z);
    return r;
  }
  std::vector<int> idx(static_cast<std::size_t>(vocab));
  std::iota(idx.begin(), idx.end(), 0);
  auto by_logit = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::size_t keep = static_cast<std::size_t>(vocab);
  if (p.top_k > 0 && static_cast<std::size_t>(p.top_k) < keep) {
    keep = static_cast<std::size_t>(p.top_k);
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(keep), idx.end(), by_logit);
  } else {
    std::sort(idx.begin(), idx.end(), by_logit);
  }
  idx.resize(keep);
  std::vector<double> prob(keep);
  double sum = 0;
  for (std::size_t i = 0; i < keep; ++i) sum += (prob[i] = std::exp((logits[idx[i]] - mx) / p.temperature));
  if (p.top_p > 0.0 && p.top_p < 1.0) {
    double acc = 0;
    std::size_t n = 0;
    while (n < keep) {
      acc += prob[n++] / sum;
      if (acc >= p.top_p) break;
    }
    keep = n;
    sum = 0;
    for (std::size_t i = 0; i < keep; ++i) sum += prob[i];
  }
  double u = std::uniform_real_distribution<double>(0.0, sum)(rng);
  // Rounding may leave u >= 0 at the end: then the last token with mass (a
  // masked token, prob 0, is never picked).
  std::size_t pick = 0;
  for (std::size_t i = 0; i < keep; ++i) {
    if (prob[i] > 0) pick = i;
    u -= prob[i];
    if (u < 0 && prob[i] > 0) { pick = i; break; }
  }
  r.token = idx[pick];
  r.logprob = static_cast<float>(logits[r.token] - log_z);
  return r;
}

}  // namespace yard::backends::native
