// backends/mock/mock_engine.cpp — see mock_engine.hpp.
#include "backends/mock/mock_engine.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "backends/sampling/logits_processor.hpp"
#include "backends/sampling/output_constraint.hpp"
#include "common/log.hpp"

namespace yard::backends {

namespace {

constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz ";

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

// The "forward pass": a token from the per-prompt state, a step time from the
// fixed delay or the profile.
class mock_engine::mock_executor final : public executor {
 public:
  explicit mock_executor(mock_engine_options o) : o_(std::move(o)) {}
  execution_result execute(const batch_plan& plan) override {
    execution_result r;
    r.sampled.resize(plan.seqs.size(), 0);
    r.logprobs.resize(plan.seqs.size(), 0.0f);
    for (std::size_t i = 0; i < plan.seqs.size(); ++i) {
      const auto& e = plan.seqs[i];
      if (!e.sample) continue;
      const msg::sampling_params none;
      const auto& sp = e.sampling ? *e.sampling : none;
      if (!sp.logprobs && !needs_logits_processing(sp) && !e.constraint) {
        r.sampled[i] = token_at(e.user_tag, e.output_index);
        continue;
      }
      // Synthetic logits: the deterministic token far ahead, the other
      // alphabet letters spread below it, every other byte unlikely. The
      // request's processors reshape them and the choice is greedy, so
      // penalties, logit_bias and min_tokens change the stream observably.
      // A constrained request sees every printable byte in play (so a value's
      // structure can be chosen, and strings and numbers end).
      mock_logits(e.user_tag, e.output_index, logits_, e.constraint != nullptr);
      const auto all = e.all_tokens;
      const auto n_prompt = std::min<std::size_t>(e.num_prompt_tokens, all.size());
      apply_logits_processors(logits_, sp, all.subspan(0, n_prompt), all.subspan(n_prompt), e.stop_token_ids);
      if (e.constraint) e.constraint->mask(logits_, e.tokens_left);
      token_id best = 0;
      for (token_id t = 1; t < logits_.size(); ++t)
        if (logits_[t] > logits_[best]) best = t;
      r.sampled[i] = best;
      if (e.constraint) e.constraint->advance(best);
      r.logprobs[i] = token_logprob(logits_, best);
      if (sp.logprobs && sp.top_logprobs > 0) {
        r.top_logprobs.resize(plan.seqs.size());
        r.top_logprobs[i] = top_logprobs(logits_, sp.top_logprobs);
      }
    }
    double ms = o_.per_token_delay_ms > 0 ? o_.per_token_delay_ms : backends::step_time_ms(o_.profile, plan);
    r.model_time_ms = ms / o_.speedup;
    return r;
  }
  std::size_t kv_block_bytes() const override { return o_.kv_block_bytes; }
  bool read_block(kv::block_id, kv::block_hash hash, std::span<std::byte> out) const override {
    synthetic_block(hash, out);
    return true;
  }
  // Checks a sample of the block's words (the first, the last and every 61st):
  // enough to catch a wrong or shifted block cheaply; transfers verify every
  // byte with checksums.
  status write_block(kv::block_id, kv::block_hash hash, std::span<const std::byte> in) override {
    const std::size_t words = in.size() / 8;
    auto same = [&](std::size_t w) {
      std::uint64_t got;
      std::memcpy(&got, in.data() + w * 8, 8);
      return got == synthetic_word(hash, w);
    };
    bool ok = words == 0 || same(words - 1);
    for (std::size_t w = 0; ok && w < words; w += 61) ok = same(w);
    if (!ok) return make_error(errc::corrupt, "mock KV block " + std::to_string(hash) + " has the wrong bytes");
    return status::success();
  }

 private:
  mock_engine_options o_;
  std::vector<float> logits_;  // [256] scratch: one synthetic logits row
};

void mock_engine::mock_logits(std::uint64_t state, std::size_t i, std::vector<float>& out, bool all_printable) {
  out.assign(256, -10.0f);
  if (all_printable)  // structure and digits in [0, 9): a closing quote beats the letters about 1 step in 9
    for (unsigned c = 0x20; c < 0x7f; ++c) out[c] = static_cast<float>(splitmix(state ^ (i * 0x100 + c) ^ 0x5eed) % 9000) / 1000.0f;
  for (std::size_t k = 0; k + 1 < sizeof(alphabet); ++k) {
    auto c = static_cast<unsigned char>(alphabet[k]);
    out[c] = static_cast<float>(splitmix(state ^ (i * 0x100 + c)) % 7000) / 1000.0f;  // [0, 7)
  }
  out[token_at(state, i)] = 8.0f;
}

mock_engine_options mock_options_from_profile(const engine_profile& p, double speedup) {
  mock_engine_options o;
  o.per_token_delay_ms = 0;
  o.speedup = speedup;
  o.block_size = p.block_size;
  o.num_blocks = p.num_blocks;
  o.profile = p;
  o.max_context = p.max_model_len;
  return o;
}

mock_engine::mock_engine(mock_engine_options opts) : opts_(std::move(opts)) {
  if (opts_.speedup <= 0) opts_.speedup = 1.0;
  if (opts_.block_size == 0) opts_.block_size = 16;
  scheduler_config sc;
  if (opts_.per_token_delay_ms > 0) {
    // Fixed-delay mode: every queued request runs every step.
    sc.max_num_seqs = 1u << 30;
    sc.max_num_batched_tokens = 1u << 30;
    sc.watermark = 0.0;
  } else {
    sc = scheduler_config_from(opts_.profile);
  }
  sc.max_model_len = opts_.max_context;
  kv::block_pool_options po;
  po.block_size = opts_.block_size;
  po.num_blocks = opts_.num_blocks;
  po.enable_prefix_caching = opts_.enable_prefix_caching;
  set_core(std::make_unique<scheduler>(sc, po), std::make_unique<mock_executor>(opts_));
  if (opts_.tiers.enabled()) {
    const engine_profile prof = opts_.profile;
    auto t = attach_tiers(opts_.tiers, [prof](std::size_t prompt, std::size_t uncached) {
      return prefill_ms(prof, double(uncached), double(prompt - uncached));
    }, /*overlapped=*/true);
    if (!t) {
      tier_status_ = t;
      component_logger("mock")->error("KV tiers disabled: {}", t.err().describe());
    }
  }
}

mock_engine::~mock_engine() = default;

result<std::unique_ptr<mock_engine>> mock_engine::create(mock_engine_options opts) {
  auto e = std::make_unique<mock_engine>(std::move(opts));
  if (!e->tier_status_) return e->tier_status_.err();
  return e;
}

std::uint64_t mock_engine::prompt_state(const std::vector<token_id>& prompt, std::uint64_t seed) {
  std::uint64_t h = splitmix(seed);
  for (auto t : prompt) h = splitmix(h ^ t);
  return h;
}

token_id mock_engine::token_at(std::uint64_t state, std::size_t i) {
  return static_cast<token_id>(alphabet[splitmix(state + i) % (sizeof(alphabet) - 1)]);
}

token_id mock_engine::expected_token(const std::vector<token_id>& prompt, std::uint64_t seed, std::size_t i) {
  return token_at(prompt_state(prompt, seed), i);
}

result<std::vector<token_id>> mock_engine::tokenize(std::string_view text) const { return byte_tokenizer{}.tokenize(text); }

std::string mock_engine::detokenize(const std::vector<token_id>& tokens) const {
  std::string s;
  s.reserve(tokens.size());
  for (auto t : tokens) s.push_back(static_cast<char>(t & 0xff));
  return s;
}

status mock_engine::prepare(const engine_request& req, sequence_spec& spec) {
  spec.user_tag = prompt_state(req.prompt, req.sampling.seed.value_or(0));
  return status::success();
}

// Onboarding copies run before this step's prefill, or under it (layer-wise) with overlap_onboarding.
double mock_engine::step_time_ms(const step_outcome& o, double) {
  const double compute = o.ran ? o.model_time_ms : 0.0;
  const double copy = take_onboard_ms() / opts_.speedup;
  return opts_.tiers.overlap_onboarding ? std::max(compute, copy) : compute + copy;
}

std::uint64_t mock_engine::synthetic_word(kv::block_hash hash, std::size_t i) { return splitmix(splitmix(hash) + i); }

void mock_engine::synthetic_block(kv::block_hash hash, std::span<std::byte> out) {
  for (std::size_t i = 0; i < out.size(); i += 8) {
    std::uint64_t x = synthetic_word(hash, i / 8);
    std::memcpy(out.data() + i, &x, std::min<std::size_t>(8, out.size() - i));
  }
}

}  // namespace yard::backends
