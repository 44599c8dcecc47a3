// backends/native/tokenizer.hpp — byte-level BPE from a tokenizer.json.
//
// Owns: the vocabulary, merge ranks, added/special tokens, the pre-tokenizer
// split (tokenizer.json's own Split regexes / ByteLevel / Digits, in order,
// run by PCRE2 with real Unicode classes: regex_split.hpp; GPT-2's split when
// the file names none; an unsupported pre-tokenizer fails the load), BPE
// encoding and decoding.
// Must not touch: models, chat formatting (chat_template).
// Thread-safety: a loaded tokenizer is immutable; encode/decode are const and
// safe from many threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backends/native/regex_split.hpp"
#include "backends/utf8.hpp"
#include "common/status.hpp"

namespace yard::backends::native {

using tok_id = std::int32_t;

// gpt2/llama3/qwen2: byte-level BPE with that regex split. sentencepiece:
// SentencePiece-style BPE (Llama 2, TinyLlama, Mistral): spaces become U+2581,
// BPE over code points, <0xNN> byte fallback.
enum class pretokenizer { gpt2, llama3, qwen2, sentencepiece };

class tokenizer {
 public:
  static result<tokenizer> load(const std::string& path);
  static result<tokenizer> parse(std::string_view json_text);

  // Encodes text. With `parse_special`, added tokens in the text (e.g.
  // "<|eot_id|>") become their ids; with `add_bos`, the post-processor's BOS
  // (if the tokenizer has one) is prepended.
  std::vector<tok_id> encode(std::string_view text, bool parse_special = true, bool add_bos = false) const;
  // Concatenated bytes of the tokens (may end inside a UTF-8 character).
  std::string decode(const std::vector<tok_id>& ids, bool skip_special = false) const;
  // Raw bytes of one token ("" for unknown ids).
  std::string token_bytes(tok_id id, bool skip_special = false) const;

  bool is_special(tok_id id) const;
  std::optional<tok_id> find(std::string_view token) const;  // by vocab/added-token string
  std::size_t size() const { return id_to_token_.size(); }    // highest id + 1
  std::optional<tok_id> bos() const { return bos_; }
  pretokenizer mode() const { return mode_; }

  // The pre-tokenizer split alone (for tests).
  std::vector<std::string> pre_split(std::string_view text) const;

 private:
  void bpe_word(std::string_view word, std::vector<tok_id>& out) const;
  void bpe_symbols(std::vector<std::string> sym, std::vector<tok_id>& out) const;
  void encode_sentencepiece(std::string_view seg, bool first, std::vector<tok_id>& out) const;
  bool sp_prepend_all_ = true;   // Prepend normalizer / Metaspace "always" (false: "first")
  bool sp_strip_lead_ = true;    // decoder strips one leading space
  std::unordered_map<std::string, tok_id> vocab_;        // byte-level string -> id
  std::vector<std::string> id_to_token_;                  // id -> byte-level string or added content
  std::vector<char> is_added_, is_special_;               // [id]
  std::unordered_map<std::string, int> merge_rank_;       // "a b" -> rank
  std::vector<std::string> added_;                        // added-token contents, longest first
  std::unordered_map<std::string, tok_id> added_ids_;
  std::optional<tok_id> bos_;
  pretokenizer mode_ = pretokenizer::gpt2;
  std::vector<regex_split> splits_;  // applied in order, each to every piece of the one before
};

// GPT-2 byte <-> printable code point mapping, as UTF-8 strings.
const std::string& byte_to_unicode(std::uint8_t b);
// Inverse: returns false for a code point outside the mapping.
bool unicode_to_byte(std::uint32_t cp, std::uint8_t& out);

// UTF-8 helpers live in backends/utf8.hpp (the engine shell streams text with them too).
using backends::utf8_append;
using backends::utf8_decode;
using backends::utf8_stream;

}  // namespace yard::backends::native
