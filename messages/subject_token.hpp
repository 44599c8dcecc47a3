// messages/subject_token.hpp — what may stand as one token of a Switchyard subject: a worker or node id, a
// namespace, a bus user.
//
// Owns: the one rule, 1..128 characters of [A-Za-z0-9_-]. NATS gives '.', '*' and '>' meaning inside a subject,
// so an id holding one would subscribe to (or speak for) other workers: `--id '*'` answered every worker's
// requests. Spaces and control characters break the text protocol.
// Must not touch: anything (a pure function).
#pragma once

#include <string_view>

namespace yard::subjects {

inline constexpr std::size_t max_token_length = 128;

inline bool valid_token(std::string_view s) {
  if (s.empty() || s.size() > max_token_length) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
  return true;
}

}  // namespace yard::subjects
