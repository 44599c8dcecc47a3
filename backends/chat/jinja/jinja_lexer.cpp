#include "backends/chat/jinja/jinja_lexer.hpp"

#include <algorithm>
#include <cstdlib>

#include "backends/chat/jinja/jinja_strings.hpp"

namespace yard::backends::chat::jinja {

namespace {

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t k = 0; k < source.size(); ++k) {
    if (source[k] == '\r') {
      out += '\n';
      if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
    } else {
      out += source[k];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();  // keep_trailing_newline=False
  return out;
}

class lexer {
 public:
  explicit lexer(std::string_view source) : src_(normalize_newlines(source)) {
    line_starts_.push_back(0);
    for (std::size_t k = 0; k < src_.size(); ++k)
      if (src_[k] == '\n') line_starts_.push_back(k + 1);
  }

  std::vector<token> run() {
    std::size_t pos = 0;
    while (pos < src_.size()) {
      std::size_t open = find_tag(pos);
      if (open == std::string::npos) {
        emit_text(src_.substr(pos), pos);
        break;
      }
      char kind = src_[open + 1];
      char sign = open + 2 < src_.size() && (src_[open + 2] == '-' || src_[open + 2] == '+') ? src_[open + 2] : 0;
      emit_text(strip_before(src_.substr(pos, open - pos), kind, sign), pos);
      std::size_t inner = open + 2 + (sign ? 1 : 0);
      if (kind == '#') pos = comment(open, inner);
      else if (kind == '%' && is_raw(inner)) pos = raw(inner);
      else pos = tag(open, inner, kind);
    }
    tokens_.push_back(token{token_kind::eof, "", 0, 0, pos_at(src_.size())});
    return std::move(tokens_);
  }

 private:
  source_pos pos_at(std::size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset) - 1;
    return {static_cast<int>(it - line_starts_.begin()) + 1, static_cast<int>(offset - *it) + 1};
  }

  std::size_t find_tag(std::size_t pos) const {
    for (std::size_t k = src_.find('{', pos); k != std::string::npos; k = src_.find('{', k + 1))
      if (k + 1 < src_.size() && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#')) return k;
    return std::string::npos;
  }

  // The whitespace rules that apply to the text before a tag opening with `kind` and `sign`.
  std::string strip_before(std::string text, char kind, char sign) const {
    if (sign == '-') {
      std::size_t e = text.size();
      while (e > 0 && is_py_space(text[e - 1])) --e;
      text.resize(e);
    } else if (sign != '+' && kind != '{') {  // lstrip_blocks
      std::size_t line_start = text.rfind('\n');
      line_start = line_start == std::string::npos ? 0 : line_start + 1;
      if ((line_start > 0 || line_starting_) &&
          std::all_of(text.begin() + static_cast<std::ptrdiff_t>(line_start), text.end(), is_py_space))
        text.resize(line_start);
    }
    return text;
  }

  // Past the end delimiter at `after` (its sign `sign`), applying `-` stripping or trim_blocks.
  std::size_t strip_after(std::size_t after, char sign, bool trims) {
    if (sign == '-') {
      std::size_t p = after;
      while (p < src_.size() && is_py_space(src_[p])) ++p;
      line_starting_ = p > after && src_[p - 1] == '\n';
      return p;
    }
    line_starting_ = trims && sign != '+' && after < src_.size() && src_[after] == '\n';
    return line_starting_ ? after + 1 : after;
  }

  void emit_text(std::string text, std::size_t offset) {
    if (!text.empty()) tokens_.push_back(token{token_kind::text, std::move(text), 0, 0, pos_at(offset)});
  }

  std::size_t comment(std::size_t open, std::size_t inner) {
    std::size_t close = src_.find("#}", inner);
    if (close == std::string::npos) fail("unclosed comment '{#'", pos_at(open));
    char sign = close > inner && (src_[close - 1] == '-' || src_[close - 1] == '+') ? src_[close - 1] : 0;
    return strip_after(close + 2, sign, true);
  }

  // After `{%` and its sign: is this `raw` (the tag's only word)?
  bool is_raw(std::size_t p) const {
    while (p < src_.size() && is_py_space(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0 || (p + 3 < src_.size() && is_name_char(src_[p + 3]))) return false;
    return true;
  }

  // {% raw %}...{% endraw %}: the text between is emitted untouched. Like Jinja, no trim_blocks after `raw %}`.
  std::size_t raw(std::size_t p) {
    std::size_t open = p;
    while (is_py_space(src_[p])) ++p;
    p += 3;
    while (p < src_.size() && is_py_space(src_[p])) ++p;
    bool strip = p < src_.size() && src_[p] == '-';
    if (strip) ++p;
    if (src_.compare(p, 2, "%}") != 0) fail("expected '%}' after 'raw'", pos_at(p));
    std::size_t body = strip_after(p + 2, strip ? '-' : '+', false);
    for (std::size_t k = find_tag(body); k != std::string::npos; k = find_tag(k + 1)) {
      if (src_[k + 1] != '%') continue;
      std::size_t q = k + 2;
      char sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q++] : 0;
      while (q < src_.size() && is_py_space(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < src_.size() && is_py_space(src_[q])) ++q;
      char end_sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q++] : 0;
      if (src_.compare(q, 2, "%}") != 0) continue;
      emit_text(strip_before(src_.substr(body, k - body), '%', sign), body);
      return strip_after(q + 2, end_sign, true);
    }
    fail("unclosed 'raw' block (no 'endraw')", pos_at(open));
  }

  // {{ ... }} or {% ... %}: the tokens up to the end delimiter that sits outside any brackets.
  std::size_t tag(std::size_t open, std::size_t p, char kind) {
    bool block = kind == '%';
    tokens_.push_back(token{block ? token_kind::block_begin : token_kind::output_begin, "", 0, 0, pos_at(open)});
    int depth = 0;
    while (true) {
      while (p < src_.size() && is_py_space(src_[p])) ++p;
      if (p >= src_.size()) fail(block ? "unclosed tag '{%'" : "unclosed tag '{{'", pos_at(open));
      char end_char = block ? '%' : '}';
      if (depth == 0) {
        char sign = (src_[p] == '-' || (block && src_[p] == '+')) ? src_[p] : 0;
        std::size_t q = p + (sign ? 1 : 0);
        if (q + 1 < src_.size() && src_[q] == end_char && src_[q + 1] == '}') {
          tokens_.push_back(token{block ? token_kind::block_end : token_kind::output_end, "", 0, 0, pos_at(p)});
          return strip_after(q + 2, sign, block);
        }
      }
      p = expression_token(p, depth);
    }
  }

  std::size_t expression_token(std::size_t p, int& depth) {
    source_pos at = pos_at(p);
    char c = src_[p];
    if (is_name_start(c)) {
      std::size_t e = p;
      while (e < src_.size() && is_name_char(src_[e])) ++e;
      tokens_.push_back(token{token_kind::name, src_.substr(p, e - p), 0, 0, at});
      return e;
    }
    if (is_digit(c)) return number(p, at);
    if (c == '\'' || c == '"') return string_literal(p, at);
    static const char* two_char[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : two_char)
      if (src_.compare(p, 2, op) == 0) {
        tokens_.push_back(token{token_kind::op, op, 0, 0, at});
        return p + 2;
      }
    if (std::string_view("+-*/%~()[]{},.:|=<>;").find(c) == std::string_view::npos) {
      std::size_t end = p;
      decode_utf8(src_, end);  // name the whole character, not its first byte
      fail("unexpected character '" + src_.substr(p, end - p) + "'", at);
    }
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') {
      if (depth == 0) fail(std::string("unexpected '") + c + "'", at);
      --depth;
    }
    tokens_.push_back(token{token_kind::op, std::string(1, c), 0, 0, at});
    return p + 1;
  }

  std::size_t number(std::size_t p, source_pos at) {
    auto digits = [&](std::size_t q) {
      while (q < src_.size() && (is_digit(src_[q]) || (src_[q] == '_' && q + 1 < src_.size() && is_digit(src_[q + 1]))))
        ++q;
      return q;
    };
    std::size_t e = digits(p);
    bool after_dot = p > 0 && src_[p - 1] == '.';  // `a.0.1` is two subscripts, not a float
    bool is_float = false;
    if (!after_dot && e + 1 < src_.size() && src_[e] == '.' && is_digit(src_[e + 1])) {
      e = digits(e + 1);
      is_float = true;
    }
    if (!after_dot && e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      std::size_t q = e + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && is_digit(src_[q])) {
        e = digits(q);
        is_float = true;
      }
    }
    std::string text;
    for (std::size_t k = p; k < e; ++k)
      if (src_[k] != '_') text += src_[k];
    token t{is_float ? token_kind::floating : token_kind::integer, text, 0, 0, at};
    if (is_float) t.float_value = std::strtod(text.c_str(), nullptr);
    else t.int_value = std::strtoll(text.c_str(), nullptr, 10);
    tokens_.push_back(std::move(t));
    return e;
  }

  // A quoted string with Python's escapes (\n \t \\ \' \" \xhh \uXXXX \UXXXXXXXX octal; unknown ones kept).
  std::size_t string_literal(std::size_t p, source_pos at) {
    char quote = src_[p];
    std::string out;
    std::size_t q = p + 1;
    while (true) {
      if (q >= src_.size()) fail("unclosed string literal", at);
      char c = src_[q];
      if (c == quote) break;
      if (c != '\\' || q + 1 >= src_.size()) {
        out += c;
        ++q;
        continue;
      }
      char e = src_[q + 1];
      q += 2;
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (int k = 0; k < n; ++k, ++q) {
            int h = q < src_.size() ? hex_value(src_[q]) : -1;
            if (h < 0) fail(std::string("truncated \\") + e + " escape in string literal", at);
            cp = cp * 16 + static_cast<char32_t>(h);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && q < src_.size() && src_[q] >= '0' && src_[q] <= '7'; ++k, ++q)
              cp = cp * 8 + static_cast<char32_t>(src_[q] - '0');
            append_utf8(out, cp);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    tokens_.push_back(token{token_kind::string, std::move(out), 0, 0, at});
    return q + 1;
  }

  std::string src_;
  std::vector<std::size_t> line_starts_;  // byte offset of each line's first character
  std::vector<token> tokens_;
  bool line_starting_ = true;  // the text that follows starts a line (lstrip_blocks may strip its indent)
};

}  // namespace

std::vector<token> lex(std::string_view source) { return lexer(source).run(); }

}  // namespace yard::backends::chat::jinja
