// backends/structured/json_constraint.cpp — the per-request driver (see json_constraint.hpp).
#include "backends/structured/json_constraint.hpp"

#include <algorithm>
#include <cassert>
#include <limits>

namespace yard::backends::structured {

json_constraint::json_constraint(std::shared_ptr<const json_grammar> grammar, std::shared_ptr<const token_vocabulary> vocab)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)), m_(*grammar_) {
  assert(grammar_ && vocab_);
}

const std::vector<std::uint8_t>& json_constraint::compute_allowed(std::uint32_t tokens_left) {
  const auto& v = *vocab_;
  if (finished()) {
    allowed_.assign(v.size(), 0);
    for (auto e : v.eos_ids())
      if (e < allowed_.size()) allowed_[e] = 1;
    return allowed_;
  }
  const std::size_t n = std::max<std::uint32_t>(tokens_left, 1);
  std::size_t limit = token_masker::no_limit;
  bool have_first = false;
  token_id first = 0;
  if (forced_.empty() && !m_.complete()) {
    std::string path = m_.shortest_completion();
    const std::size_t cost = v.greedy_count(path);
    if (cost != SIZE_MAX && n <= cost) {
      forced_ = std::move(path);
    } else if (cost != SIZE_MAX) {
      limit = n - 1;
      std::size_t len = 0;
      have_first = v.longest_prefix(path, first, len);
    }
  } else if (forced_.empty()) {
    limit = n - 1;  // complete: the completion costs nothing
  }
  if (!forced_.empty()) {
    allowed_.assign(v.size(), 0);
    token_id t = 0;
    std::size_t len = 0;
    if (v.longest_prefix(forced_, t, len)) {
      allowed_[t] = 1;
      return allowed_;
    }
    forced_.clear();  // cannot be spelled: grammar only
    limit = token_masker::no_limit;
  }
  thread_local token_masker masker;  // about (longest token + 1) matcher copies: per engine thread, not per request
  masker.allowed(m_, v, allowed_, limit);
  if (have_first) allowed_[first] = 1;
  return allowed_;
}

void json_constraint::mask(std::span<float> logits, std::uint32_t tokens_left) {
  if (finished() && vocab_->eos_ids().empty()) return;
  const auto& ok = compute_allowed(tokens_left);
  constexpr float ninf = -std::numeric_limits<float>::infinity();
  const std::size_t n = std::min(logits.size(), ok.size());
  for (std::size_t i = 0; i < n; ++i)
    if (!ok[i]) logits[i] = ninf;
  for (std::size_t i = n; i < logits.size(); ++i) logits[i] = ninf;
}

status json_constraint::try_advance(msg::token_id t) {
  if (fault_) return *fault_;
  if (vocab_->is_eos(t)) {
    if (!m_.complete()) return make_error(errc::internal, "end of sequence before the JSON value is complete");
    eos_ = true;
    return status::success();
  }
  if (finished()) return make_error(errc::internal, "token " + std::to_string(t) + " after the JSON value ended");
  if (!vocab_->is_text(t)) return make_error(errc::internal, "special token " + std::to_string(t) + " inside a JSON value");
  const std::string_view bytes = vocab_->bytes(t);
  if (!m_.accept(bytes))
    return make_error(errc::internal, "token " + std::to_string(t) + " may not come next in the JSON value");
  text_.append(bytes);
  if (!forced_.empty()) {
    if (std::string_view(forced_).starts_with(bytes)) forced_.erase(0, bytes.size());
    else forced_.clear();  // the engine left the path (it ignored the mask): plan again
  }
  done_ = m_.complete() && !m_.can_continue();
  return status::success();
}

void json_constraint::advance(msg::token_id t) {
  if (auto s = try_advance(t); !s && !fault_) fault_ = s.err();
}

bool json_constraint::finished() const { return done_ || eos_ || fault_.has_value(); }

}  // namespace yard::backends::structured
