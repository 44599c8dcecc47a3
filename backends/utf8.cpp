// backends/utf8.cpp — see utf8.hpp.
#include "backends/utf8.hpp"

namespace yard::backends {

void utf8_append(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) out.push_back(static_cast<char>(cp));
  else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Returns the sequence length, 0 if invalid, -1 if valid so far but incomplete.
int utf8_check(std::string_view s, std::size_t i, std::uint32_t& cp) {
  auto c = static_cast<std::uint8_t>(s[i]);
  int len;
  std::uint32_t min;
  if (c < 0x80) { cp = c; return 1; }
  if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; min = 0x80; }
  else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; min = 0x800; }
  else if ((c & 0xf8) == 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; min = 0x10000; }
  else return 0;
  for (int k = 1; k < len; ++k) {
    if (i + k >= s.size()) return -1;
    auto cc = static_cast<std::uint8_t>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

int utf8_decode(std::string_view s, std::size_t i, std::uint32_t& cp) {
  int n = utf8_check(s, i, cp);
  return n < 0 ? 0 : n;
}

std::string utf8_stream::push(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  std::size_t i = 0;
  while (i < pending_.size()) {
    std::uint32_t cp;
    int n = utf8_check(pending_, i, cp);
    if (n < 0) break;  // incomplete: wait for more bytes
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    out.append(pending_, i, static_cast<std::size_t>(n));
    i += static_cast<std::size_t>(n);
  }
  pending_.erase(0, i);
  return out;
}

std::string utf8_stream::flush() {
  std::string out;
  if (!pending_.empty()) out = "\xEF\xBF\xBD";
  pending_.clear();
  return out;
}

}  // namespace yard::backends
