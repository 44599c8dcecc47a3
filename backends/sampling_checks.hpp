// backends/sampling_checks.hpp — the ranges a request's sampling parameters must keep, wherever it came from.
//
// Owns: the one check of msg::sampling_params (finite numbers in OpenAI's / vLLM's ranges, top_logprobs and
// logit_bias bounds, min_tokens within max_tokens) that a worker applies to every generate request, so a body
// sent straight over NATS meets the same limits as one parsed by the HTTP frontend (actors/openai_parse, which
// names the OpenAI field in its own words first).
// Must not touch: tokenization, engines (pure function).
#pragma once

#include <cstdint>

#include "common/status.hpp"
#include "messages/types.hpp"

namespace yard::backends {

// bad_request naming the field ("field 'sampling.temperature' must be in [0, 2]") or success. `max_tokens` 0 =
// until the context ends (min_tokens is then unbounded here).
status check_sampling(const msg::sampling_params& s, std::uint32_t max_tokens);

}  // namespace yard::backends
