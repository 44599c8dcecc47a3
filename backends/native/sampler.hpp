// backends/native/sampler.hpp — picks the next token from logits.
//
// Owns: greedy, temperature, top-k and top-p sampling with a per-sequence
// seeded generator, and the chosen token's logprob (log-softmax of the raw
// logits, before temperature, as OpenAI-style APIs report it).
// Must not touch: stop conditions (the engine's), the model.
// Thread-safety: sample() is a pure function of its arguments and the rng.
#pragma once

#include <cstdint>
#include <random>

#include "messages/types.hpp"

namespace yard::backends::native {

struct sample_result {
  std::int32_t token = 0;
  float logprob = 0.0f;
};

// temperature <= 0 (or top_k == 1) is greedy; ties go to the lowest id.
sample_result sample(const float* logits, int vocab, const msg::sampling_params& p, std::mt19937_64& rng);

}  // namespace yard::backends::native
