// Paged, batched forward vs the dense reference (backends/tests/native_test_util.hpp).
#include <gtest/gtest.h>

#include <numeric>

#include "backends/native/model.hpp"
#include "backends/tests/native_test_util.hpp"

namespace yard::backends::native {
namespace {

using testing::temp_dir;

struct fixture {
  temp_dir dir;
  std::shared_ptr<const model_weights> w;
  explicit fixture(mkmodel_options o = {}) {
    auto path = testing::make_model(dir, "m", o);
    auto r = load_model_weights(path);
    if (!r) throw std::runtime_error(r.err().describe());
    w = std::shared_ptr<const model_weights>(std::move(*r));
  }
};

std::vector<std::uint32_t> prompt(int n, std::uint32_t salt, int vocab) {
  std::vector<std::uint32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = (salt * 131 + static_cast<std::uint32_t>(i) * 37 + 11) % static_cast<std::uint32_t>(vocab);
  return p;
}

// Runs `tokens` through the paged model in chunks of `chunk`, with a scrambled
// block table, then `n_decode` greedy decode steps; checks every logits row
// against the reference. Returns the greedy tokens.
std::vector<std::uint32_t> check_paged(const fixture& f, std::vector<std::uint32_t> tokens, int chunk, int n_decode,
                                       int block_size = 4) {
  const auto& c = f.w->config;
  kv_cache_shape sh{c.num_hidden_layers, 64, block_size, c.num_key_value_heads, c.head_dim};
  kv_cache cache(sh);
  model m(f.w, 2);
  std::vector<std::uint32_t> table(64);
  for (int i = 0; i < 64; ++i) table[i] = static_cast<std::uint32_t>((i * 29 + 7) % 64);  // non-contiguous blocks
  std::vector<float> logits;
  int pos = 0;
  int n_prompt = static_cast<int>(tokens.size());
  while (pos < n_prompt) {
    int n = std::min(chunk, n_prompt - pos);
    batch_item it{tokens.data() + pos, n, pos, table, true};
    m.forward({it}, cache, logits);
    pos += n;
    std::vector<std::uint32_t> prefix(tokens.begin(), tokens.begin() + pos);
    auto ref = testing::reference_logits(*f.w, prefix);
    EXPECT_LT(testing::rel_error(logits.data(), ref.back()), 1e-4) << "prefill up to " << pos;
  }
  std::vector<std::uint32_t> out;
  for (int s = 0; s < n_decode; ++s) {
    std::vector<float> last(logits.begin(), logits.begin() + c.vocab_size);
    auto t = testing::argmax(last);
    out.push_back(t);
    tokens.push_back(t);
    batch_item it{tokens.data() + pos, 1, pos, table, true};
    m.forward({it}, cache, logits);
    ++pos;
    auto ref = testing::reference_logits(*f.w, tokens);
    EXPECT_LT(testing::rel_error(logits.data(), ref.back()), 1e-4) << "decode step " << s;
  }
  return out;
}

TEST(native_forward, paged_matches_dense_reference) {
  fixture f;
  auto p = prompt(13, 1, f.w->config.vocab_size);
  auto paged = check_paged(f, p, 1000, 6);
  EXPECT_EQ(paged, testing::reference_greedy(*f.w, p, 6));
}

TEST(native_forward, chunked_prefill_matches_whole) {
  fixture f;
  auto p = prompt(17, 2, f.w->config.vocab_size);
  auto whole = check_paged(f, p, 1000, 4);
  auto chunked = check_paged(f, p, 3, 4);
  EXPECT_EQ(whole, chunked);
}

TEST(native_forward, batched_matches_alone) {
  fixture f;
  const auto& c = f.w->config;
  kv_cache cache({c.num_hidden_layers, 64, 4, c.num_key_value_heads, c.head_dim});
  model m(f.w, 2);
  // Three sequences of different lengths in one batch, disjoint block tables.
  std::vector<std::vector<std::uint32_t>> seqs = {prompt(5, 3, c.vocab_size), prompt(11, 4, c.vocab_size), prompt(2, 5, c.vocab_size)};
  std::vector<std::vector<std::uint32_t>> tables(3);
  for (int s = 0; s < 3; ++s)
    for (int b = 0; b < 16; ++b) tables[s].push_back(static_cast<std::uint32_t>(b * 3 + s));
  std::vector<batch_item> batch;
  for (int s = 0; s < 3; ++s) batch.push_back({seqs[s].data(), static_cast<int>(seqs[s].size()), 0, tables[s], true});
  std::vector<float> logits;
  m.forward(batch, cache, logits);
  for (int s = 0; s < 3; ++s) {
    auto ref = testing::reference_logits(*f.w, seqs[s]);
    EXPECT_LT(testing::rel_error(logits.data() + s * c.vocab_size, ref.back()), 1e-4) << "sequence " << s;
  }
  // A mixed step: one decode token for seq 0, a chunk for seq 1, none wanted for seq 2.
  std::uint32_t next0 = 7, extra1[2] = {9, 10};
  seqs[0].push_back(next0);
  seqs[1].push_back(extra1[0]);
  seqs[1].push_back(extra1[1]);
  std::vector<batch_item> step = {{&seqs[0].back(), 1, 5, tables[0], true}, {&seqs[1][11], 2, 11, tables[1], true}};
  m.forward(step, cache, logits);
  EXPECT_LT(testing::rel_error(logits.data(), testing::reference_logits(*f.w, seqs[0]).back()), 1e-4);
  EXPECT_LT(testing::rel_error(logits.data() + c.vocab_size, testing::reference_logits(*f.w, seqs[1]).back()), 1e-4);
}

TEST(native_forward, qwen2_biases_and_untied_head) {
  mkmodel_options o;
  o.family = "qwen2";
  o.tied = 0;
  fixture f(o);
  ASSERT_NE(f.w->layers[0].bq, nullptr);
  ASSERT_NE(f.w->lm_head.data, f.w->embed.data);
  check_paged(f, prompt(9, 6, f.w->config.vocab_size), 4, 3);
}

TEST(native_forward, llama3_rope_scaling) {
  mkmodel_options o;
  o.rope_scaling = "llama3";
  fixture f(o);
  ASSERT_EQ(f.w->config.rope_scaling_type, "llama3");
  check_paged(f, prompt(10, 7, f.w->config.vocab_size), 10, 3, 8);
}

TEST(native_forward, bf16_weights_match_reference_of_same_weights) {
  mkmodel_options o;
  o.type = dtype::bf16;
  fixture f(o);
  check_paged(f, prompt(8, 8, f.w->config.vocab_size), 8, 2);
}

}  // namespace
}  // namespace yard::backends::native
