// backends/structured/json_matcher_scalars.cpp — json_matcher's byte steps inside strings and numbers (see json_matcher.hpp).
//
// The string lexer (UTF-8 and escapes) serves value strings and keys alike;
// key_step (json_matcher.cpp) adds the trie of declared names on top.
#include "backends/structured/json_matcher.hpp"
#include "backends/structured/json_matcher_states.hpp"

namespace yard::backends::structured {

using namespace matcher_states;

namespace {

bool is_digit(unsigned char b) { return b >= '0' && b <= '9'; }
bool is_hex(unsigned char b) { return is_digit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F'); }

}  // namespace

bool json_matcher::string_step(thread& t, unsigned char b) {
  frame& f = t.f[t.depth - 1];
  if (f.state == lex_plain) {
    const grammar_node& s = g_->nodes[f.node];
    if (b == '"') {
      if (f.count < s.min_length) return false;
      --t.depth;
      return true;
    }
    if (f.count >= s.max_length) return false;
    ++f.count;
  }
  return lex_byte(f, b);
}

bool json_matcher::number_step(frame& f, unsigned char b) const {
  const bool integer = g_->nodes[f.node].kind == node_kind::integer;
  const bool digit = is_digit(b);
  switch (f.state) {
    case num_minus:
      if (b == '0') { f.state = num_zero; return true; }
      if (digit) { f.state = num_int; f.sub = 1; return true; }
      return false;
    case num_zero: break;
    case num_int:
      if (digit) {
        if (f.sub >= max_int_digits) return false;
        ++f.sub;
        return true;
      }
      break;
    case num_dot:
      if (!digit) return false;
      f.state = num_frac;
      f.sub = 1;
      return true;
    case num_frac:
      if (digit) {
        if (f.sub >= max_frac_digits) return false;
        ++f.sub;
        return true;
      }
      if (b != 'e' && b != 'E') return false;
      f.state = num_exp_mark;
      return true;
    case num_exp_mark:
      if (b == '+' || b == '-') { f.state = num_exp_sign; return true; }
      [[fallthrough]];
    case num_exp_sign:
      if (!digit) return false;
      f.state = num_exp;
      f.sub = 1;
      return true;
    case num_exp:
      if (!digit || f.sub >= max_exp_digits) return false;
      ++f.sub;
      return true;
    default: return false;
  }
  if (integer) return false;  // zero or int: a fraction or an exponent may follow
  if (b == '.') { f.state = num_dot; return true; }
  if (b == 'e' || b == 'E') { f.state = num_exp_mark; return true; }
  return false;
}

bool json_matcher::lex_byte(frame& f, unsigned char b) {
  switch (f.state) {
    case lex_plain: {
      if (b == '\\') { f.state = lex_escape; return true; }
      if (b < 0x20 || b == '"') return false;
      if (b < 0x80) return true;
      std::uint8_t need = 0, range = 0;
      if (b >= 0xC2 && b <= 0xDF) need = 1;
      else if (b == 0xE0) { need = 2; range = 1; }
      else if (b >= 0xE1 && b <= 0xEF) { need = 2; range = b == 0xED ? 2 : 0; }
      else if (b == 0xF0) { need = 3; range = 3; }
      else if (b >= 0xF1 && b <= 0xF3) need = 3;
      else if (b == 0xF4) { need = 3; range = 4; }
      else return false;
      f.state = lex_utf8;
      f.sub = need;
      f.flags = static_cast<std::uint8_t>((f.flags & ~range_mask) | (range << range_shift));
      return true;
    }
    case lex_utf8: {
      const int r = (f.flags & range_mask) >> range_shift;
      if (b < range_lo[r] || b > range_hi[r]) return false;
      f.flags &= ~range_mask;
      if (--f.sub == 0) f.state = lex_plain;
      return true;
    }
    case lex_escape:
      switch (b) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
          f.state = lex_plain;
          return true;
        case 'u':
          f.state = lex_hex;
          f.sub = 0;
          return true;
        default: return false;
      }
    case lex_hex:
      if (!is_hex(b)) return false;
      if (f.sub == 0 && (b == 'd' || b == 'D')) f.flags |= hex_surrogate;
      else if (f.sub == 1 && (f.flags & hex_surrogate)) {
        if (b > '7') return false;
        f.flags &= ~hex_surrogate;
      }
      if (++f.sub == 4) f.state = lex_plain;
      return true;
    default: return false;
  }
}

}  // namespace yard::backends::structured
