// backends/native/regex_split.hpp — a tokenizer.json "Split" pre-tokenizer run by PCRE2.
//
// Owns: one compiled split regex (PCRE2 in UTF + UCP mode, so \p{L}, \p{N}, \s
// are the real Unicode classes; JIT-compiled when PCRE2 offers it) and the
// Hugging Face "Isolated" split: every match is a piece, and so is any text
// between matches. Text that is not valid UTF-8 is split at each invalid byte
// (a piece of its own); the valid runs go through the regex.
// Must not touch: BPE, vocabularies (tokenizer.cpp).
// Thread-safety: immutable after compile(); split() is const and safe from
// many threads (each call has its own match data).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace yard::backends::native {

class regex_split {
 public:
  // errc::unsupported naming the pattern and PCRE2's message (with the offset)
  // when the pattern does not compile.
  static result<regex_split> compile(std::string_view pattern);

  // Appends the pieces of `text` (views into it) to `out`, in order; together
  // they cover `text` exactly.
  void split(std::string_view text, std::vector<std::string_view>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct code;
  std::shared_ptr<const code> code_;
  std::string pattern_;
  void split_valid(std::string_view text, std::vector<std::string_view>& out) const;
};

// The GPT-2 split (what a ByteLevel pre-tokenizer with use_regex does).
inline constexpr std::string_view gpt2_split_pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace yard::backends::native
