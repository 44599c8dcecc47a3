// backends/structured/json_constraint.hpp — one request's JSON output constraint, step by step.
//
// Owns: the per-request driver the engines call through output_constraint:
// the request's json_matcher, its token mask, the output budget rule and the
// text accepted so far. The mask's scratch (a token_masker) is one per
// calling thread, not per request.
// Must not touch: the grammar and vocabulary (shared, immutable), sampling,
// stop handling (the engine ends the request once finished()).
// Thread-safety: one request's constraint is used by one thread at a time.
//
// Budget rule (tokens_left = the output budget left, this token included;
// 0 counts as 1): the cost of a state is the number of tokens greedy
// longest-prefix tokenization of its shortest completion takes. While
// tokens_left > cost, a token is allowed only if the cost after it is at
// most tokens_left - 1 (bounded first by the completion's byte length when
// every byte is a token, so the check is cheap), and the first token of the
// greedy path always is. Once tokens_left <= cost the constraint follows that
// path only, token by token, until the value is complete — also when the
// budget is already too small, in which case the output is cut by the
// engine's length limit. If the vocabulary cannot spell the completion
// greedily, the budget rule is off and only the grammar applies.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backends/sampling/output_constraint.hpp"
#include "backends/structured/json_grammar.hpp"
#include "backends/structured/json_matcher.hpp"
#include "backends/structured/token_mask.hpp"
#include "backends/structured/token_trie.hpp"
#include "common/status.hpp"

namespace yard::backends::structured {

class json_constraint final : public output_constraint {
 public:
  json_constraint(std::shared_ptr<const json_grammar> grammar, std::shared_ptr<const token_vocabulary> vocab);

  // Sets every disallowed logit (and any past the vocabulary) to -inf. Once
  // finished() only the EOS ids stay; with no EOS ids the row is left as it
  // is (the engine ends the request on finished()).
  void mask(std::span<float> logits, std::uint32_t tokens_left) override;
  // output_constraint's form of try_advance(): a token mask() did not allow
  // is recorded in fault(), after which finished() is true (the engine stops
  // rather than emit more unchecked text).
  void advance(msg::token_id t) override;
  // The value is complete and nothing may follow it, or EOS was taken, or a
  // fault was recorded.
  bool finished() const override;

  // Feeds the sampled token's bytes. Errors (state unchanged): internal when
  // the token may not come next (an EOS before the value is complete, a
  // special token, bytes the grammar rejects, anything after the end).
  status try_advance(msg::token_id t);

  // What mask() applies, without logits: [vocab size] 1 = allowed.
  const std::vector<std::uint8_t>& compute_allowed(std::uint32_t tokens_left);

  const json_matcher& matcher() const { return m_; }
  const std::string& text() const { return text_; }  // bytes accepted so far
  const std::optional<error>& fault() const { return fault_; }
  bool forcing() const { return !forced_.empty(); }  // following the budget's completion path

 private:
  std::shared_ptr<const json_grammar> grammar_;
  std::shared_ptr<const token_vocabulary> vocab_;
  json_matcher m_;
  std::vector<std::uint8_t> allowed_;  // [vocab size]
  std::string text_;
  std::string forced_;  // the rest of the completion path being forced; empty: not forcing
  std::optional<error> fault_;
  bool done_ = false;  // complete and nothing may follow
  bool eos_ = false;
};

}  // namespace yard::backends::structured
