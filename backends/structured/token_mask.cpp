// backends/structured/token_mask.cpp — the vocabulary walk (see token_mask.hpp).
#include "backends/structured/token_mask.hpp"

#include <algorithm>

namespace yard::backends::structured {

void token_masker::allowed(const json_matcher& m, const token_vocabulary& v, std::vector<std::uint8_t>& mask_out,
                           std::size_t completion_limit) {
  std::uint32_t room = 0;
  if (m.in_plain_string(room)) {
    // Plain tokens only add characters to the string: all that fit pass (and
    // leave the completion as it is), so only the others need the walk.
    if (room >= v.max_plain_chars()) {
      mask_out = v.plain();
    } else {
      const auto& chars = v.plain_chars();
      mask_out.resize(v.size());
      for (std::size_t t = 0; t < chars.size(); ++t) mask_out[t] = chars[t] != 0 && chars[t] <= room;
    }
    walk(m, v.non_plain_tokens(), v, mask_out, completion_limit);
  } else {
    mask_out.assign(v.size(), 0);
    walk(m, v.all_tokens(), v, mask_out, completion_limit);
  }
  const std::uint8_t eos = m.complete() ? 1 : 0;
  for (auto e : v.eos_ids())
    if (e < mask_out.size()) mask_out[e] = eos;
}

// Preorder: a node's parent state is states_[depth - 1] when the node is
// reached (siblings and their subtrees only write deeper slots).
void token_masker::walk(const json_matcher& m, const token_vocabulary::trie& t, const token_vocabulary& v,
                        std::vector<std::uint8_t>& mask, std::size_t completion_limit) {
  const auto& nodes = t.nodes;
  if (nodes.size() <= 1) return;
  if (states_.size() < static_cast<std::size_t>(v.max_token_bytes()) + 1) states_.resize(v.max_token_bytes() + 1);
  states_[0] = m;
  for (std::uint32_t i = 1; i < nodes.size();) {
    const auto& n = nodes[i];
    json_matcher& s = states_[n.depth];
    s = states_[n.depth - 1];
    if (!s.try_advance(n.byte)) {
      i = n.subtree_end;
      continue;
    }
    if (n.tokens_end > n.tokens_begin) {
      const std::uint8_t ok = completion_limit == no_limit || within(s, v, completion_limit) ? 1 : 0;
      for (auto k = n.tokens_begin; k < n.tokens_end; ++k) mask[t.tokens[k]] = ok;
    }
    ++i;
  }
}

bool token_masker::within(const json_matcher& after, const token_vocabulary& v, std::size_t completion_limit) const {
  if (v.has_all_bytes() && after.shortest_completion_size() <= completion_limit) return true;
  return v.greedy_count(after.shortest_completion()) <= completion_limit;
}

void allowed_tokens(const json_matcher& m, const token_vocabulary& v, std::vector<std::uint8_t>& mask_out) {
  token_masker scratch;
  scratch.allowed(m, v, mask_out);
}

}  // namespace yard::backends::structured
