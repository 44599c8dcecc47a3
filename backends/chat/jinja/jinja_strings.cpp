#include "backends/chat/jinja/jinja_strings.hpp"

#include <algorithm>

namespace yard::backends::chat::jinja {

namespace {

// Case mapping for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic; other code points have no case here.
bool in(char32_t c, char32_t lo, char32_t hi) { return c >= lo && c <= hi; }
// Latin Extended-A pairs: upper case at even code points, except in the two runs where it is odd.
bool odd_upper_run(char32_t c) { return in(c, 0x139, 0x148) || in(c, 0x179, 0x17e); }
bool even_upper_run(char32_t c) { return (in(c, 0x100, 0x137) && c != 0x130 && c != 0x131) || in(c, 0x14a, 0x177); }

char32_t upper_cp(char32_t c) {
  if (c < 0x80) return in(c, 'a', 'z') ? c - 32 : c;
  if (in(c, 0xe0, 0xfe) && c != 0xf7) return c - 0x20;
  if (c == 0xff) return 0x178;
  if (c == 0xb5) return 0x39c;
  if (c == 0x131) return 'I';
  if (c == 0x17f) return 'S';
  if (odd_upper_run(c)) return c % 2 == 0 ? c - 1 : c;
  if (even_upper_run(c)) return c % 2 == 1 ? c - 1 : c;
  if (in(c, 0x3b1, 0x3c9)) return c == 0x3c2 ? 0x3a3 : c - 0x20;
  if (in(c, 0x430, 0x44f)) return c - 0x20;
  if (in(c, 0x450, 0x45f)) return c - 0x50;
  return c;
}

char32_t lower_cp(char32_t c) {
  if (c < 0x80) return in(c, 'A', 'Z') ? c + 32 : c;
  if (in(c, 0xc0, 0xde) && c != 0xd7) return c + 0x20;
  if (c == 0x178) return 0xff;
  if (odd_upper_run(c)) return c % 2 == 1 ? c + 1 : c;
  if (even_upper_run(c)) return c % 2 == 0 ? c + 1 : c;
  if (in(c, 0x391, 0x3a9) && c != 0x3a2) return c + 0x20;
  if (in(c, 0x410, 0x42f)) return c + 0x20;
  if (in(c, 0x400, 0x40f)) return c + 0x50;
  return c;
}

bool is_cased(char32_t c) { return upper_cp(c) != c || lower_cp(c) != c || c == 0xdf || c == 0x138 || c == 0x149; }

// ß has no single upper-case letter: upper() writes "SS", title case "Ss".
void append_upper(std::string& out, char32_t c, bool title) {
  if (c == 0xdf) out += title ? "Ss" : "SS";
  else append_utf8(out, upper_cp(c));
}

// Characters Python's repr() escapes even though they are not ASCII control characters.
bool is_py_unprintable(char32_t cp) {
  return (cp >= 0x7f && cp <= 0xa0) || cp == 0xad || (cp >= 0x2000 && cp <= 0x200f) ||
         (cp >= 0x2028 && cp <= 0x202f) || (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 || cp == 0xfeff ||
         (cp >= 0xe000 && cp <= 0xf8ff);
}

void append_hex(std::string& out, char32_t cp, int digits) {
  static const char* hex = "0123456789abcdef";
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += hex[(cp >> shift) & 0xf];
}

}  // namespace

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool is_py_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= '\x1c' && c <= '\x1f');
}

char32_t decode_utf8(std::string_view s, std::size_t& pos) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char b0 = byte(pos);
  int extra = b0 >= 0xf0 ? 3 : b0 >= 0xe0 ? 2 : b0 >= 0xc0 ? 1 : 0;
  if (extra == 0 || pos + extra >= s.size()) {  // ASCII, a stray byte, or a sequence cut off by the end
    ++pos;
    return b0;
  }
  char32_t cp = b0 & (0x3f >> extra);
  for (int k = 1; k <= extra; ++k) {
    unsigned char b = byte(pos + k);
    if ((b & 0xc0) != 0x80) {  // invalid continuation: the lead byte stands alone
      ++pos;
      return b0;
    }
    cp = (cp << 6) | (b & 0x3f);
  }
  pos += 1 + extra;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::size_t code_point_count(std::string_view s) {
  if (is_ascii(s)) return s.size();
  std::size_t n = 0;
  for (std::size_t pos = 0; pos < s.size(); ++n) decode_utf8(s, pos);
  return n;
}

std::vector<std::size_t> code_point_offsets(std::string_view s) {
  std::vector<std::size_t> offsets;
  offsets.reserve(s.size() + 1);
  for (std::size_t pos = 0; pos < s.size();) {
    offsets.push_back(pos);
    decode_utf8(s, pos);
  }
  offsets.push_back(s.size());
  return offsets;
}

namespace {

// Calls f(out, code point, index) for each code point of `s`; bytes that are not valid UTF-8 are copied as is.
template <class F>
std::string map_code_points(std::string_view s, F f) {
  std::string out;
  out.reserve(s.size());
  std::size_t index = 0;
  for (std::size_t pos = 0; pos < s.size(); ++index) {
    std::size_t start = pos;
    char32_t cp = decode_utf8(s, pos);
    if (cp >= 0x80 && pos - start == 1) out += s[start];
    else f(out, cp, index);
  }
  return out;
}

}  // namespace

std::string py_lower(std::string_view s) {
  return map_code_points(s, [](std::string& out, char32_t cp, std::size_t) { append_utf8(out, lower_cp(cp)); });
}

std::string py_upper(std::string_view s) {
  return map_code_points(s, [](std::string& out, char32_t cp, std::size_t) { append_upper(out, cp, false); });
}

std::string py_capitalize(std::string_view s) {
  return map_code_points(s, [](std::string& out, char32_t cp, std::size_t index) {
    if (index == 0) append_upper(out, cp, true);
    else append_utf8(out, lower_cp(cp));
  });
}

std::string py_title(std::string_view s) {
  bool prev_cased = false;
  return map_code_points(s, [&](std::string& out, char32_t cp, std::size_t) {
    if (prev_cased) append_utf8(out, lower_cp(cp));
    else append_upper(out, cp, true);
    prev_cased = is_cased(cp);
  });
}

std::string jinja_title(std::string_view s) {
  bool word_start = true;
  return map_code_points(s, [&](std::string& out, char32_t cp, std::size_t) {
    bool separator = cp < 0x80 && (is_py_space(static_cast<char>(cp)) || cp == '-' || cp == '(' || cp == '{' ||
                                   cp == '[' || cp == '<');
    if (separator) append_utf8(out, cp);
    else if (word_start) append_upper(out, cp, false);
    else append_utf8(out, lower_cp(cp));
    word_start = separator;
  });
}

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  if (!chars) {
    std::size_t b = 0, e = s.size();
    if (left)
      while (b < e && is_py_space(s[b])) ++b;
    if (right)
      while (e > b && is_py_space(s[e - 1])) --e;
    return std::string(s.substr(b, e - b));
  }
  std::vector<char32_t> set;
  for (std::size_t pos = 0; pos < chars->size();) set.push_back(decode_utf8(*chars, pos));
  auto offsets = code_point_offsets(s);
  auto in_set = [&](std::size_t k) {
    std::size_t pos = offsets[k];
    return std::find(set.begin(), set.end(), decode_utf8(s, pos)) != set.end();
  };
  std::size_t b = 0, e = offsets.size() - 1;  // code point indexes
  if (left)
    while (b < e && in_set(b)) ++b;
  if (right)
    while (e > b && in_set(e - 1)) --e;
  return std::string(s.substr(offsets[b], offsets[e] - offsets[b]));
}

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, std::int64_t maxsplit) {
  std::vector<std::string> parts;
  if (!sep) {
    std::size_t pos = 0;
    while (true) {
      while (pos < s.size() && is_py_space(s[pos])) ++pos;
      if (pos == s.size()) break;
      if (maxsplit >= 0 && static_cast<std::int64_t>(parts.size()) == maxsplit) {
        std::size_t e = s.size();
        while (e > pos && is_py_space(s[e - 1])) --e;
        parts.emplace_back(s.substr(pos, e - pos));
        break;
      }
      std::size_t end = pos;
      while (end < s.size() && !is_py_space(s[end])) ++end;
      parts.emplace_back(s.substr(pos, end - pos));
      pos = end;
    }
    return parts;
  }
  std::size_t pos = 0;
  while (maxsplit < 0 || static_cast<std::int64_t>(parts.size()) < maxsplit) {
    std::size_t hit = s.find(*sep, pos);
    if (hit == std::string_view::npos) break;
    parts.emplace_back(s.substr(pos, hit - pos));
    pos = hit + sep->size();
  }
  parts.emplace_back(s.substr(pos));
  return parts;
}

std::vector<std::string> py_splitlines(std::string_view s, bool keepends) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t end = s.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) {
      lines.emplace_back(s.substr(pos));
      break;
    }
    std::size_t next = end + ((s[end] == '\r' && end + 1 < s.size() && s[end + 1] == '\n') ? 2 : 1);
    lines.emplace_back(s.substr(pos, (keepends ? next : end) - pos));
    pos = next;
  }
  return lines;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, std::int64_t count) {
  std::string out;
  if (old.empty()) {
    auto offsets = code_point_offsets(s);
    std::int64_t done = 0;
    for (std::size_t k = 0; k < offsets.size(); ++k) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (k + 1 < offsets.size()) out += s.substr(offsets[k], offsets[k + 1] - offsets[k]);
    }
    return out;
  }
  std::size_t pos = 0;
  for (std::int64_t done = 0; count < 0 || done < count; ++done) {
    std::size_t hit = s.find(old, pos);
    if (hit == std::string_view::npos) break;
    out += s.substr(pos, hit - pos);
    out += repl;
    pos = hit + old.size();
  }
  out += s.substr(pos);
  return out;
}

std::int64_t py_count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<std::int64_t>(code_point_count(s)) + 1;
  std::int64_t n = 0;
  for (std::size_t pos = s.find(sub); pos != std::string_view::npos; pos = s.find(sub, pos + sub.size())) ++n;
  return n;
}

std::int64_t py_find(std::string_view s, std::string_view sub, bool reverse) {
  std::size_t hit = reverse ? s.rfind(sub) : s.find(sub);
  if (hit == std::string_view::npos) return -1;
  return static_cast<std::int64_t>(code_point_count(s.substr(0, hit)));
}

void append_py_repr(std::string& out, std::string_view s) {
  char quote = (s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos) ? '"' : '\'';
  out += quote;
  for (std::size_t pos = 0; pos < s.size();) {
    std::size_t start = pos;
    char32_t cp = decode_utf8(s, pos);
    if (cp == '\\' || cp == static_cast<char32_t>(quote)) {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || is_py_unprintable(cp)) {
      out += cp <= 0xff ? "\\x" : "\\u";
      append_hex(out, cp, cp <= 0xff ? 2 : 4);
    } else {
      out += s.substr(start, pos - start);
    }
  }
  out += quote;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace yard::backends::chat::jinja
