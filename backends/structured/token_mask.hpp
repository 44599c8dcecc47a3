// backends/structured/token_mask.hpp — which tokens a json_matcher accepts next.
//
// Owns: the vocabulary walk: a depth-first pass over the token byte trie
// with one matcher copy per depth, pruning a subtree at its first rejected
// byte; the fast path inside plain strings (every plain token passes, only
// the non-plain trie is walked); the optional budget filter (a token passes
// only if the completion after it still fits in `completion_limit` tokens).
// Must not touch: logits, sampling, the request's budget bookkeeping
// (json_constraint decides the limit and the forced path).
// Thread-safety: allowed_tokens() is pure; a token_masker holds scratch and
// is used by one thread at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/structured/json_matcher.hpp"
#include "backends/structured/token_trie.hpp"

namespace yard::backends::structured {

// Reusable scratch for the walk (the matcher copies, one per trie depth).
class token_masker {
 public:
  // Budget filter off.
  static constexpr std::size_t no_limit = SIZE_MAX;

  // Sets mask_out (resized to v.size()) to 1 for every text token whose whole
  // byte string `m` accepts, and for the EOS ids when m.complete(); 0
  // elsewhere. With a completion_limit, a token also needs the shortest
  // completion after it to take at most that many tokens (its byte length
  // when every byte is a token, else greedy tokenization); tokens that keep
  // the matcher in a plain string are assumed to (the caller only sets a
  // limit it can currently meet).
  void allowed(const json_matcher& m, const token_vocabulary& v, std::vector<std::uint8_t>& mask_out,
               std::size_t completion_limit = no_limit);

 private:
  void walk(const json_matcher& m, const token_vocabulary::trie& t, const token_vocabulary& v,
            std::vector<std::uint8_t>& mask, std::size_t completion_limit);
  bool within(const json_matcher& after, const token_vocabulary& v, std::size_t completion_limit) const;

  std::vector<json_matcher> states_;  // [depth] the matcher after the path's first `depth` bytes
};

// One-shot form with its own scratch.
void allowed_tokens(const json_matcher& m, const token_vocabulary& v, std::vector<std::uint8_t>& mask_out);

}  // namespace yard::backends::structured
