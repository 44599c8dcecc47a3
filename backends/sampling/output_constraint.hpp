// backends/sampling/output_constraint.hpp — a per-request rule on which tokens may come next.
//
// Owns: the interface executors call while sampling a constrained request
// (structured output, forced tool calls: backends/structured builds the
// implementation). mask() is called on the request's logits row right before
// sampling, advance() with the token chosen; a request's calls come in output
// order, one token at a time, from the engine's one owner thread.
// Must not touch: sampling itself, the scheduler, tokenization.
// Thread-safety: one request's constraint is used by one thread at a time.
#pragma once

#include <cstdint>
#include <span>

#include "messages/types.hpp"

namespace yard::backends {

class output_constraint {
 public:
  virtual ~output_constraint() = default;
  // Sets the logit of every token that may not come next to -infinity.
  // `tokens_left`: the output budget left, this token included (the
  // constraint closes its value in time).
  virtual void mask(std::span<float> logits, std::uint32_t tokens_left) = 0;
  // The token that was sampled (one mask() allowed it).
  virtual void advance(msg::token_id t) = 0;
  // Nothing more may follow (the engine ends the request: finish reason stop).
  virtual bool finished() const = 0;
};

}  // namespace yard::backends
