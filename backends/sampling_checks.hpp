// backends/sampling_checks.hpp — the ranges a request's sampling parameters must keep, wherever it came from.
//
// Owns: the one check of msg::sampling_params (finite numbers in OpenAI's / vLLM's ranges, top_logprobs and
// logit_bias bounds, min_tokens within max_tokens) that a worker applies to every generate request and the HTTP
// frontend's parser (actors/openai_parse) applies to every body it reads, so both sides keep one set of ranges.
// Must not touch: tokenization, engines (pure function).
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.hpp"
#include "messages/types.hpp"

namespace yard::backends {

// bad_request naming the field (`field_prefix` + its name: "field 'sampling.temperature' must be in [0, 2]") or
// success. `max_tokens` 0 = until the context ends (min_tokens is then bounded by the scheduler, which knows the
// context). The HTTP parser passes "" (OpenAI's flat field names), the worker "sampling." (the wire's).
status check_sampling(const msg::sampling_params& s, std::uint32_t max_tokens, std::string_view field_prefix = "sampling.");

}  // namespace yard::backends
