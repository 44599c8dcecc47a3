#include "backends/native/regex_split.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstdint>

#include "backends/native/tokenizer.hpp"

namespace yard::backends::native {

struct regex_split::code {
  pcre2_code* re = nullptr;
  bool jit = false;
  ~code() { pcre2_code_free(re); }
};

result<regex_split> regex_split::compile(std::string_view pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  auto* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                           &off, nullptr);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    return make_error(errc::unsupported, "pre-tokenizer regex '" + std::string(pattern) + "' does not compile at offset " +
                                             std::to_string(off) + ": " + reinterpret_cast<const char*>(msg));
  }
  auto c = std::make_shared<code>();
  c->re = re;
  c->jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
  regex_split r;
  r.code_ = std::move(c);
  r.pattern_ = std::string(pattern);
  return r;
}

namespace {

// Length of the valid UTF-8 prefix of s (the tokenizer's own decoder decides validity).
std::size_t valid_utf8_prefix(std::string_view s) {
  std::size_t i = 0;
  std::uint32_t cp = 0;
  while (i < s.size()) {
    int n = utf8_decode(s, i, cp);
    if (n == 0) break;
    i += static_cast<std::size_t>(n);
  }
  return i;
}

}  // namespace

void regex_split::split(std::string_view text, std::vector<std::string_view>& out) const {
  while (!text.empty()) {
    auto n = valid_utf8_prefix(text);
    if (n > 0) split_valid(text.substr(0, n), out);
    if (n < text.size()) out.push_back(text.substr(n, 1));  // an invalid byte: its own piece
    text.remove_prefix(std::min(text.size(), n + 1));
  }
}

void regex_split::split_valid(std::string_view text, std::vector<std::string_view>& out) const {
  auto* md = pcre2_match_data_create_from_pattern(code_->re, nullptr);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t pos = 0, last = 0;
  while (pos <= text.size()) {
    int rc = code_->jit ? pcre2_jit_match(code_->re, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr)
                        : pcre2_match(code_->re, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;  // no more matches (or a match-time limit: the rest is one piece)
    auto* ov = pcre2_get_ovector_pointer(md);
    std::size_t s = ov[0], e = ov[1];
    if (e == s) {  // an empty match: step one character on
      if (s >= text.size()) break;
      pos = s + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xc0) == 0x80) ++pos;
      continue;
    }
    if (s > last) out.push_back(text.substr(last, s - last));  // text between matches: a piece too
    out.push_back(text.substr(s, e - s));
    last = pos = e;
  }
  if (last < text.size()) out.push_back(text.substr(last));
  pcre2_match_data_free(md);
}

}  // namespace yard::backends::native
