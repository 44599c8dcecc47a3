// backends/external/upstream_output_guard.hpp — what a worker lets through of an upstream server's output.
//
// Owns: one external request's output budget (max_tokens, resume tokens included; absent = what the context
// leaves after the prompt) and its stop strings (backends/stop_strings: truncate at the match, hold back a
// partial one), applied to each delta the server sends. A server is asked to keep both (the body carries
// max_tokens and stop), but a worker answers for what it streams: a server that ignores them (an older
// build, a different notion of a token, a hostile one) still ends the request where the client asked, and
// the worker then closes the upstream stream.
// Must not touch: sockets, the engine's calls (a per-request value the engine owns).
// Thread-safety: a plain value.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backends/engine.hpp"
#include "backends/stop_strings.hpp"

namespace yard::backends::external {

class upstream_output_guard {
 public:
  // `context_tokens`: the server's context (the budget when max_tokens is 0).
  upstream_output_guard(const engine_request& r, std::uint32_t context_tokens);

  struct verdict {
    std::vector<token_id> tokens;  // what may be sent of the delta's tokens
    std::string text;              // and of its text
    std::optional<msg::finish_kind> end;  // length (the budget is spent) or stop (a stop string matched)
  };
  // A delta of `tokens` with `text` (their text: the server's); `last`: the server finished the stream here
  // (nothing is held back). `exact`: the tokens are the server's ids, counted one by one and cut inside the
  // delta (`detokenize` rebuilds the text of a cut run); else they are our tokenizer's reading of the server's
  // text, which can count more than the server did, so a non-empty delta counts as one token (servers stream one
  // token per event) and is passed or dropped whole.
  verdict apply(std::vector<token_id> tokens, std::string text, bool last, bool exact,
                const std::function<std::string(const std::vector<token_id>&)>& detokenize);

  std::uint32_t produced() const { return produced_; }  // counted as above, resume tokens included
  std::uint32_t budget() const { return budget_; }

 private:
  std::uint32_t budget_ = 0;
  std::uint32_t produced_ = 0;
  std::uint32_t min_tokens_ = 0;
  bool armed_by_schema_ = true;  // false with an output schema: stop strings wait, as in the native engine
  stop_strings stops_;
};

}  // namespace yard::backends::external
