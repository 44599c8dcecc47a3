// backends/chat/tool_calls/tool_call_id.cpp — see tool_call_id.hpp.
#include "backends/chat/tool_calls/tool_call_id.hpp"

#include <algorithm>

namespace yard::backends::chat {

namespace {

constexpr std::string_view k_alnum =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::size_t k_mistral_id_len = 9;
constexpr std::size_t k_openai_id_len = 24;  // after "call_"

bool is_alnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

std::uint64_t random_seed() {
  std::random_device rd;
  return (std::uint64_t{rd()} << 32) ^ rd();
}

}  // namespace

id_source::id_source() : rng_(random_seed()) {}

id_source::id_source(std::uint64_t seed) : rng_(seed) {}

std::string id_source::alnum(std::size_t n) {
  std::uniform_int_distribution<std::size_t> pick(0, k_alnum.size() - 1);
  std::string s(n, '\0');
  for (auto& c : s) c = k_alnum[pick(rng_)];
  return s;
}

std::string id_source::next(tool_call_format format) {
  if (format == tool_call_format::mistral) return alnum(k_mistral_id_len);
  return "call_" + alnum(k_openai_id_len);
}

bool is_mistral_tool_call_id(std::string_view id) {
  return id.size() == k_mistral_id_len && std::all_of(id.begin(), id.end(), is_alnum);
}

}  // namespace yard::backends::chat
