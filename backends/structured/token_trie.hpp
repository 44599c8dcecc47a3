// backends/structured/token_trie.hpp — a tokenizer's vocabulary as byte tries, built once per model.
//
// Owns: token_vocabulary: each token's bytes, the end-of-sequence ids, a
// preorder byte trie of all text tokens and one of the tokens that are not
// "plain string text", per-token plain flags and character counts (the mask's
// fast path inside strings), and greedy longest-prefix tokenization (the
// budget's forced completion path).
// Must not touch: JSON matching (json_matcher), logits (json_constraint), the
// tokenizer itself (engines hand the bytes in).
// Thread-safety: immutable after construction; share one per model as
// std::shared_ptr<const token_vocabulary> between requests and threads.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "messages/types.hpp"

namespace yard::backends::structured {

using msg::token_id;

class token_vocabulary {
 public:
  // One trie node in preorder: its subtree is [index, subtree_end).
  struct node {
    std::uint32_t subtree_end = 0;
    std::uint32_t tokens_begin = 0;  // [tokens_begin, tokens_end) in node_tokens(): ids spelled by the path
    std::uint32_t tokens_end = 0;
    std::uint16_t depth = 0;         // bytes from the root (the root is 0)
    unsigned char byte = 0;          // the edge into this node
  };
  struct trie {
    std::vector<node> nodes;        // [0] is the root
    std::vector<token_id> tokens;   // grouped by node
  };

  // Longer tokens are never allowed inside a value (the mask walk keeps one
  // matcher per trie depth).
  static constexpr std::size_t max_text_token_bytes = 512;

  // token_bytes[id]: the bytes token `id` stands for; an empty string marks a
  // special (non-text) token, never allowed by the grammar. `non_text`, when
  // not empty, flags more special tokens by id. eos_ids are never text either.
  // A byte-fallback token (<0x0A>) must be given as its one byte.
  token_vocabulary(std::vector<std::string> token_bytes, std::vector<token_id> eos_ids,
                   const std::vector<bool>& non_text = {});

  std::size_t size() const { return bytes_.size(); }
  std::string_view bytes(token_id t) const { return t < bytes_.size() ? std::string_view(bytes_[t]) : std::string_view(); }
  std::span<const token_id> eos_ids() const { return eos_; }
  bool is_eos(token_id t) const;
  bool is_text(token_id t) const { return t < text_.size() && text_[t]; }

  const trie& all_tokens() const { return all_; }
  const trie& non_plain_tokens() const { return non_plain_; }
  // [size()] 1 when the token is plain string text: non-empty, no quote,
  // backslash or control byte, whole valid UTF-8 characters.
  const std::vector<std::uint8_t>& plain() const { return plain_; }
  // [size()] a plain token's code points (at most 65535), 0 for the others.
  const std::vector<std::uint16_t>& plain_chars() const { return plain_chars_; }
  // The most characters any plain token holds.
  std::uint32_t max_plain_chars() const { return max_plain_chars_; }
  // Every byte value is some token's whole text (any completion can be
  // spelled one byte per token).
  bool has_all_bytes() const { return all_bytes_; }
  std::uint16_t max_token_bytes() const { return max_len_; }

  // The longest text token that is a prefix of `s`; its length in `len`.
  // False when none is (len 0).
  bool longest_prefix(std::string_view s, token_id& t, std::size_t& len) const;
  // Tokens greedy longest-prefix tokenization of `s` takes; SIZE_MAX when it
  // gets stuck.
  std::size_t greedy_count(std::string_view s) const;

 private:
  void build(trie& out, const std::vector<token_id>& ids) const;

  std::vector<std::string> bytes_;
  std::vector<token_id> eos_;
  std::vector<std::uint8_t> text_;   // [size()] 1 for text tokens
  std::vector<std::uint8_t> plain_;  // [size()]
  std::vector<std::uint16_t> plain_chars_;  // [size()]
  trie all_;
  trie non_plain_;
  std::int32_t root_child_[256];     // node index of each root edge in all_, -1 if none
  std::uint32_t max_plain_chars_ = 0;
  std::uint16_t max_len_ = 0;
  bool all_bytes_ = false;
};

}  // namespace yard::backends::structured
