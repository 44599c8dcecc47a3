// backends/structured/token_trie.cpp — token_vocabulary (see token_trie.hpp).
#include "backends/structured/token_trie.hpp"

#include <algorithm>

namespace yard::backends::structured {

namespace {

// True when `s` is plain string text (see token_vocabulary::plain); `chars`
// gets its code points. Same UTF-8 rules as json_matcher.
bool plain_text(std::string_view s, std::uint32_t& chars) {
  chars = 0;
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++chars) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x20 || b == '"' || b == '\\') return false;
    if (b < 0x80) { ++i; continue; }
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) need = 1;
    else if (b == 0xE0) { need = 2; lo = 0xA0; }
    else if (b >= 0xE1 && b <= 0xEF) { need = 2; if (b == 0xED) hi = 0x9F; }
    else if (b == 0xF0) { need = 3; lo = 0x90; }
    else if (b >= 0xF1 && b <= 0xF3) need = 3;
    else if (b == 0xF4) { need = 3; hi = 0x8F; }
    else return false;
    for (int k = 1; k <= need; ++k) {
      if (i + k >= s.size()) return false;
      const auto c = static_cast<unsigned char>(s[i + k]);
      if (c < lo || c > hi) return false;
      lo = 0x80;
      hi = 0xBF;
    }
    i += need + 1;
  }
  return true;
}

}  // namespace

token_vocabulary::token_vocabulary(std::vector<std::string> token_bytes, std::vector<token_id> eos_ids,
                                   const std::vector<bool>& non_text)
    : bytes_(std::move(token_bytes)), eos_(std::move(eos_ids)) {
  const std::size_t n = bytes_.size();
  text_.assign(n, 0);
  plain_.assign(n, 0);
  plain_chars_.assign(n, 0);
  for (std::size_t t = 0; t < n; ++t) {
    const auto& s = bytes_[t];
    if (s.empty() || s.size() > max_text_token_bytes) continue;
    if (t < non_text.size() && non_text[t]) continue;
    text_[t] = 1;
  }
  for (auto e : eos_)
    if (e < n) text_[e] = 0;
  std::vector<token_id> all, non_plain;
  for (std::size_t t = 0; t < n; ++t) {
    if (!text_[t]) continue;
    all.push_back(static_cast<token_id>(t));
    std::uint32_t chars = 0;
    if (plain_text(bytes_[t], chars)) {
      plain_[t] = 1;
      plain_chars_[t] = static_cast<std::uint16_t>(std::min<std::uint32_t>(chars, 65535));
      max_plain_chars_ = std::max(max_plain_chars_, chars);
    } else {
      non_plain.push_back(static_cast<token_id>(t));
    }
    max_len_ = std::max<std::uint16_t>(max_len_, static_cast<std::uint16_t>(bytes_[t].size()));
  }
  build(all_, all);
  build(non_plain_, non_plain);
  std::fill(std::begin(root_child_), std::end(root_child_), -1);
  const auto& nodes = all_.nodes;
  for (std::uint32_t i = 1; i < nodes.size(); i = nodes[i].subtree_end) root_child_[nodes[i].byte] = static_cast<std::int32_t>(i);
  all_bytes_ = true;
  for (int b = 0; b < 256 && all_bytes_; ++b)
    all_bytes_ = root_child_[b] >= 0 && nodes[root_child_[b]].tokens_end > nodes[root_child_[b]].tokens_begin;
}

bool token_vocabulary::is_eos(token_id t) const { return std::find(eos_.begin(), eos_.end(), t) != eos_.end(); }

// Sorted byte strings list the trie in preorder: each token extends the path
// of the one before it from their common prefix.
void token_vocabulary::build(trie& out, const std::vector<token_id>& unsorted) const {
  std::vector<token_id> ids = unsorted;
  std::sort(ids.begin(), ids.end(), [&](token_id a, token_id b) {
    const int c = bytes_[a].compare(bytes_[b]);
    return c < 0 || (c == 0 && a < b);
  });
  out.nodes.assign(1, node{});
  out.tokens.clear();
  std::vector<std::uint32_t> path{0};  // path[d]: the node at depth d
  std::string_view prev;
  for (token_id id : ids) {
    const std::string_view s = bytes_[id];
    std::size_t common = 0;
    while (common < prev.size() && common < s.size() && prev[common] == s[common]) ++common;
    while (path.size() - 1 > common) {
      out.nodes[path.back()].subtree_end = static_cast<std::uint32_t>(out.nodes.size());
      path.pop_back();
    }
    for (std::size_t d = common; d < s.size(); ++d) {
      node nd;
      nd.depth = static_cast<std::uint16_t>(d + 1);
      nd.byte = static_cast<unsigned char>(s[d]);
      path.push_back(static_cast<std::uint32_t>(out.nodes.size()));
      out.nodes.push_back(nd);
    }
    node& last = out.nodes[path.back()];
    if (last.tokens_end == last.tokens_begin) last.tokens_begin = static_cast<std::uint32_t>(out.tokens.size());
    out.tokens.push_back(id);
    last.tokens_end = static_cast<std::uint32_t>(out.tokens.size());
    prev = s;
  }
  for (auto i : path) out.nodes[i].subtree_end = static_cast<std::uint32_t>(out.nodes.size());
}

bool token_vocabulary::longest_prefix(std::string_view s, token_id& t, std::size_t& len) const {
  len = 0;
  if (s.empty()) return false;
  const auto& nodes = all_.nodes;
  std::int32_t i = root_child_[static_cast<unsigned char>(s[0])];
  while (i >= 0) {
    const node& nd = nodes[i];
    if (nd.tokens_end > nd.tokens_begin) {
      t = all_.tokens[nd.tokens_begin];
      len = nd.depth;
    }
    if (nd.depth >= s.size()) break;
    const auto want = static_cast<unsigned char>(s[nd.depth]);
    std::int32_t next = -1;
    for (std::uint32_t c = i + 1; c < nd.subtree_end; c = nodes[c].subtree_end)
      if (nodes[c].byte == want) { next = static_cast<std::int32_t>(c); break; }
    i = next;
  }
  return len > 0;
}

std::size_t token_vocabulary::greedy_count(std::string_view s) const {
  std::size_t count = 0;
  while (!s.empty()) {
    token_id t;
    std::size_t len;
    if (!longest_prefix(s, t, len)) return SIZE_MAX;
    s.remove_prefix(len);
    ++count;
  }
  return count;
}

}  // namespace yard::backends::structured
