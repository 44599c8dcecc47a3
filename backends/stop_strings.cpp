// backends/stop_strings.cpp — see stop_strings.hpp.
#include "backends/stop_strings.hpp"

#include <algorithm>

namespace yard::backends {

stop_strings::stop_strings(std::vector<std::string> stops) {
  for (auto& s : stops)
    if (!s.empty()) {
      longest_ = std::max(longest_, s.size());
      stops_.push_back(std::move(s));
    }
}

stop_strings::cut stop_strings::feed(std::string_view more, bool last, bool armed) {
  cut out;
  if (stops_.empty()) {
    out.text.assign(more);
    return out;
  }
  text_.append(more);
  std::size_t end = text_.size();
  if (armed) {
    // A match may start in text already sent (its first bytes were not held back
    // only if they could not start a stop then), so search from longest_ - 1 before.
    const std::size_t from = sent_ >= longest_ ? sent_ - (longest_ - 1) : 0;
    std::size_t best = std::string::npos;
    for (const auto& s : stops_) best = std::min(best, text_.find(s, from));
    if (best != std::string::npos) {
      end = std::max(best, sent_);
      out.matched = true;
    } else if (!last) {
      // Hold back the longest tail that is a proper prefix of some stop string.
      std::size_t hold = 0;
      for (const auto& s : stops_)
        for (std::size_t k = std::min(s.size() - 1, text_.size() - sent_); k > hold; --k)
          if (text_.compare(text_.size() - k, k, s, 0, k) == 0) {
            hold = k;
            break;
          }
      end -= hold;
    }
  }
  out.text = text_.substr(sent_, end - sent_);
  sent_ = end;
  // Keep only what a later match could still start in.
  if (sent_ >= longest_) {
    const std::size_t drop = sent_ - (longest_ - 1);
    text_.erase(0, drop);
    sent_ -= drop;
  }
  return out;
}

}  // namespace yard::backends
