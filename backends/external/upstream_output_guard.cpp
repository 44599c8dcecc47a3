// backends/external/upstream_output_guard.cpp — see upstream_output_guard.hpp.
#include "backends/external/upstream_output_guard.hpp"

#include <algorithm>

namespace yard::backends::external {

upstream_output_guard::upstream_output_guard(const engine_request& r, std::uint32_t context_tokens)
    : produced_(static_cast<std::uint32_t>(r.resume_tokens.size())),
      min_tokens_(r.sampling.min_tokens),
      armed_by_schema_(!r.output_schema),
      stops_(r.stop) {
  const std::uint64_t prompt = r.prompt.size();
  const std::uint64_t room = context_tokens > prompt ? context_tokens - prompt : 1;
  budget_ = r.max_tokens > 0 ? r.max_tokens : static_cast<std::uint32_t>(std::min<std::uint64_t>(room, 0xffffffffu));
}

upstream_output_guard::verdict upstream_output_guard::apply(
    std::vector<token_id> tokens, std::string text, bool last, bool exact,
    const std::function<std::string(const std::vector<token_id>&)>& detokenize) {
  verdict v;
  const std::uint32_t room = budget_ > produced_ ? budget_ - produced_ : 0;
  std::size_t units = exact ? tokens.size() : (tokens.empty() && text.empty() ? 0 : 1);
  if (units >= room && !(units == room && last)) {
    // The budget ends inside (or exactly at the end of) this delta, and the server does not end it here.
    if (units > room) {
      if (exact) {
        tokens.resize(room);
        text = detokenize(tokens);  // the server's text covered the tokens cut off too
      } else {
        tokens.clear();
        text.clear();
      }
      units = room;
    }
    v.end = msg::finish_kind::length;
    last = true;
  }
  produced_ += static_cast<std::uint32_t>(units);
  const bool armed = armed_by_schema_ && produced_ >= min_tokens_;
  auto cut = stops_.feed(text, last, armed);
  v.text = std::move(cut.text);
  if (cut.matched) v.end = msg::finish_kind::stop;
  v.tokens = std::move(tokens);
  return v;
}

}  // namespace yard::backends::external
