// backends/sampling/logits_processor.hpp — request-level logits processing shared by every engine.
//
// Owns: the OpenAI/vLLM knobs that reshape a sequence's next-token logits
// before sampling — repetition_penalty (prompt + output), frequency and
// presence penalties (output only, OpenAI's formula), logit_bias, and the
// min_tokens ban on stop tokens (EOS included) — and the top-k log-softmax
// alternatives reported as top_logprobs. The native executors run it on model
// logits; the mock engine on its synthetic logits, so tests see the effects.
// Must not touch: the choice of the token (backends/native/sampler), stop
// handling (scheduler, engines).
// Thread-safety: pure functions.
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "messages/types.hpp"

namespace yard::backends {

using msg::token_id;

// True when apply_logits_processors would change any logit for `p`.
bool needs_logits_processing(const msg::sampling_params& p);

// Applies, in order: repetition_penalty over the tokens of `prompt` and
// `output` (a positive logit is divided by it, a negative one multiplied);
// frequency_penalty * count + presence_penalty for every token in `output`;
// logit_bias; and, while output.size() < min_tokens, -inf for every id in
// `stop_ids` (the caller includes EOS ids there). Ids outside the vocabulary
// are ignored.
void apply_logits_processors(std::span<float> logits, const msg::sampling_params& p, std::span<const token_id> prompt,
                             std::span<const token_id> output, std::span<const token_id> stop_ids);

// The log-softmax of `logits` at `token`.
float token_logprob(std::span<const float> logits, token_id token);

// The `k` most likely tokens with their log-softmax values, most likely
// first; ties go to the lower id. -inf entries are never reported.
std::vector<std::pair<token_id, float>> top_logprobs(std::span<const float> logits, std::uint32_t k);

// Per-token logprob records for a step's new tokens (the wire's
// token_chunk.token_logprobs), with each token's text from `text_of(id)`.
// Empty when `logprobs` is (logprobs were not requested).
template <class TextOf>
std::vector<msg::token_logprob> make_token_logprobs(const std::vector<token_id>& tokens, const std::vector<float>& logprobs,
                                                    const std::vector<std::vector<std::pair<token_id, float>>>& tops,
                                                    TextOf&& text_of) {
  std::vector<msg::token_logprob> out;
  for (std::size_t i = 0; i < tokens.size() && i < logprobs.size(); ++i) {
    msg::token_logprob t;
    t.token = tokens[i];
    t.text = text_of(tokens[i]);
    t.logprob = logprobs[i];
    if (i < tops.size())
      for (const auto& [id, lp] : tops[i]) t.top.push_back(msg::top_logprob{id, text_of(id), lp});
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace yard::backends
