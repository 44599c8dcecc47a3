// backends/tokenizer_fingerprint.hpp — does this engine tokenize like that one?
//
// Owns: a 64-bit fingerprint of a tokenizer (an engine's or a router's): XXH3 of the token ids it
// gives a fixed probe text (scripts, digits, spaces, punctuation, an added-token
// look-alike). Two engines with the same fingerprint split prompts into the same
// tokens, so their KV block hashes agree; a router compares its own with each
// worker's (heartbeat field) and refuses to trust the blocks of one that differs.
// Must not touch: engine state (it only calls tokenize).
// Thread-safety: pure function of a const engine.
#pragma once

#include <cstdint>

#include "backends/prompt_tokenizer.hpp"

namespace yard::backends {

// 0 when the engine cannot tokenize the probe (0 means "unknown" on the wire).
std::uint64_t tokenizer_fingerprint(const prompt_tokenizer& t);

}  // namespace yard::backends
