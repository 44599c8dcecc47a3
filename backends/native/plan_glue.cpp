// backends/native/plan_glue.cpp — see plan_glue.hpp.
#include "backends/native/plan_glue.hpp"

#include <algorithm>
#include <random>

#include "backends/native/sampler.hpp"
#include "backends/sampling/logits_processor.hpp"
#include "backends/sampling/output_constraint.hpp"

namespace yard::backends::native {

std::vector<batch_item> batch_items(const batch_plan& plan) {
  std::vector<batch_item> items;
  items.reserve(plan.seqs.size());
  for (const auto& e : plan.seqs) {
    batch_item it;
    it.tokens = e.tokens.data();
    it.n_tokens = static_cast<int>(e.tokens.size());
    it.start_pos = static_cast<int>(e.start_pos);
    it.block_table = e.block_table;
    it.want_logits = e.sample;
    items.push_back(it);
  }
  return items;
}

void sample_plan(const batch_plan& plan, const float* logits, int vocab, execution_result& r) {
  r.sampled.assign(plan.seqs.size(), 0);
  r.logprobs.assign(plan.seqs.size(), 0.0f);
  std::size_t row = 0;
  std::vector<float> processed;
  for (std::size_t i = 0; i < plan.seqs.size(); ++i) {
    const auto& e = plan.seqs[i];
    if (!e.sample || e.tokens.empty()) continue;
    msg::sampling_params greedy;
    const auto& sp = e.sampling ? *e.sampling : greedy;
    std::seed_seq seq{static_cast<std::uint32_t>(sp.seed.value_or(0)), static_cast<std::uint32_t>(sp.seed.value_or(0) >> 32),
                      e.output_index};
    std::mt19937_64 rng(seq);
    const float* row_logits = logits + row * static_cast<std::size_t>(vocab);
    ++row;
    if (needs_logits_processing(sp)) {
      // Penalties, logit_bias and the min_tokens ban reshape a copy of the row.
      processed.assign(row_logits, row_logits + vocab);
      const auto all = e.all_tokens;
      const auto n_prompt = std::min<std::size_t>(e.num_prompt_tokens, all.size());
      apply_logits_processors(processed, sp, all.subspan(0, n_prompt), all.subspan(n_prompt), e.stop_token_ids);
      row_logits = processed.data();
    }
    if (e.constraint) {
      // Structured output: disallowed tokens to -inf on the (processed) row.
      if (row_logits != processed.data()) processed.assign(row_logits, row_logits + vocab);
      e.constraint->mask(std::span<float>(processed.data(), static_cast<std::size_t>(vocab)), e.tokens_left);
      row_logits = processed.data();
    }
    auto s = sample(row_logits, vocab, sp, rng);
    r.sampled[i] = static_cast<token_id>(s.token);
    if (e.constraint) e.constraint->advance(r.sampled[i]);
    r.logprobs[i] = s.logprob;
    if (sp.logprobs && sp.top_logprobs > 0) {
      r.top_logprobs.resize(plan.seqs.size());
      r.top_logprobs[i] = top_logprobs(std::span<const float>(row_logits, static_cast<std::size_t>(vocab)), sp.top_logprobs);
    }
  }
}

}  // namespace yard::backends::native
