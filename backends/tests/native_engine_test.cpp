// native_engine: the engine interface over the shared scheduler, end to end on the tiny preset.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "backends/native/native_engine.hpp"
#include "kv/block_hash.hpp"
#include "backends/tests/engine_test_util.hpp"
#include "backends/tests/native_test_util.hpp"

namespace yard::backends {
namespace {

using native::testing::temp_dir;
using testing::prompt;
using testing::req;
using testing::run_all;

class native_engine_test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new temp_dir();
    model_ = native::testing::make_model(*dir_, "tiny");
  }
  static void TearDownTestSuite() { delete dir_; }
  std::unique_ptr<native_engine> open(native_engine_options o = {}) {
    o.threads = 2;
    auto e = native_engine::open(model_, o);
    EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.err().describe());
    return std::move(*e);
  }
  // Greedy tokens of each prompt run alone.
  std::vector<token_id> alone(const std::vector<token_id>& p, std::uint32_t n) {
    auto e = open();
    EXPECT_TRUE(e->add_request(req("a", p, n)).ok());
    return run_all(*e)["a"].tokens;
  }
  static temp_dir* dir_;
  static std::string model_;
};
temp_dir* native_engine_test::dir_ = nullptr;
std::string native_engine_test::model_;

TEST_F(native_engine_test, greedy_matches_dense_reference) {
  auto e = open();
  EXPECT_FALSE(e->kv_on_gpu());  // a CPU engine: the worker's KV staging stays pageable
  auto p = prompt(21, 1);
  ASSERT_TRUE(e->add_request(req("r", p, 8)).ok());
  auto out = run_all(*e)["r"];
  std::vector<std::uint32_t> pp(p.begin(), p.end());
  auto ref = native::testing::reference_greedy(e->weights(), pp, static_cast<int>(out.tokens.size()));
  EXPECT_EQ(out.tokens, std::vector<token_id>(ref.begin(), ref.end()));
  EXPECT_TRUE(out.finish == "length" || out.finish == "stop");
  EXPECT_EQ(out.usage.prompt_tokens, 21u);
  EXPECT_EQ(out.usage.completion_tokens, out.tokens.size());
}

TEST_F(native_engine_test, batched_chunked_and_preempted_match_alone) {
  std::vector<std::vector<token_id>> ps = {prompt(30, 2), prompt(7, 3), prompt(45, 4), prompt(18, 5), prompt(3, 6)};
  std::vector<std::vector<token_id>> want;
  for (auto& p : ps) want.push_back(alone(p, 12));
  // Batched with a small token budget (chunked prefill) and a pool too small
  // for all of them at once (preemption by recompute).
  native_engine_options o;
  o.block_size = 4;
  o.num_blocks = 18;
  o.max_num_batched_tokens = 13;
  auto e = open(o);
  for (std::size_t i = 0; i < ps.size(); ++i) ASSERT_TRUE(e->add_request(req("q" + std::to_string(i), ps[i], 12)).ok());
  auto out = run_all(*e);
  for (std::size_t i = 0; i < ps.size(); ++i) EXPECT_EQ(out["q" + std::to_string(i)].tokens, want[i]) << "request " << i;
  EXPECT_GT(e->get_scheduler().stats().preemptions, 0u);
}

TEST_F(native_engine_test, prefix_cached_matches_cold) {
  auto e = open();
  auto p = prompt(40, 7);
  ASSERT_TRUE(e->add_request(req("cold", p, 6)).ok());
  auto cold = run_all(*e)["cold"];
  ASSERT_TRUE(e->add_request(req("warm", p, 6)).ok());
  auto warm = run_all(*e)["warm"];
  EXPECT_EQ(cold.tokens, warm.tokens);
  EXPECT_EQ(cold.usage.cached_tokens, 0u);
  EXPECT_EQ(warm.usage.cached_tokens, 32u);  // two full 16-token blocks
  auto ev = e->drain_kv_events();
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.front().kind, msg::kv_event_kind::stored);
}

TEST_F(native_engine_test, stop_string_is_cut_and_held_back) {
  auto e = open();
  auto p = prompt(10, 8);
  ASSERT_TRUE(e->add_request(req("free", p, 24)).ok());
  auto free_run = run_all(*e)["free"];
  ASSERT_GE(free_run.text.size(), 6u);
  // Pick a stop string from the middle of the free-running text.
  std::string stop = free_run.text.substr(3, 2);
  auto r = req("stopped", p, 24);
  r.stop = {stop};
  ASSERT_TRUE(e->add_request(r).ok());
  auto st = run_all(*e)["stopped"];
  EXPECT_EQ(st.finish, "stop");
  EXPECT_EQ(st.text, free_run.text.substr(0, free_run.text.find(stop)));
  EXPECT_EQ(st.text.find(stop), std::string::npos);
}

TEST_F(native_engine_test, stop_token_ids_logprobs_and_seeded_sampling) {
  auto e = open();
  auto p = prompt(12, 9);
  auto first = alone(p, 10);
  std::size_t k = 1;  // first position whose token did not appear before
  while (k < first.size() && std::find(first.begin(), first.begin() + k, first[k]) != first.begin() + k) ++k;
  ASSERT_LT(k, first.size());
  auto r = req("s", p, 10);
  r.stop_token_ids = {first[k]};
  r.sampling.logprobs = true;
  ASSERT_TRUE(e->add_request(r).ok());
  auto out = run_all(*e)["s"];
  EXPECT_EQ(out.finish, "stop");
  EXPECT_EQ(out.tokens.size(), k + 1);
  std::vector<token_id> before(first.begin(), first.begin() + static_cast<std::ptrdiff_t>(k));
  EXPECT_EQ(out.text, e->detokenize(before));  // the stop token's own text is not emitted
  ASSERT_EQ(out.logprobs.size(), k + 1);
  for (float lp : out.logprobs) EXPECT_LE(lp, 0.0f);
  // Same seed, same tokens, even batched with other requests.
  auto s1 = req("t1", p, 8), s2 = req("t2", p, 8);
  for (auto* x : {&s1, &s2}) {
    x->sampling.temperature = 1.0;
    x->sampling.top_p = 0.9;
    x->sampling.seed = 42;
  }
  ASSERT_TRUE(e->add_request(s1).ok());
  ASSERT_TRUE(e->add_request(req("other", prompt(5, 10), 8)).ok());
  ASSERT_TRUE(e->add_request(s2).ok());
  auto o = run_all(*e);
  EXPECT_EQ(o["t1"].tokens, o["t2"].tokens);
}

TEST_F(native_engine_test, resume_tokens_continue_the_stream) {
  auto p = prompt(9, 11);
  auto full = alone(p, 8);
  auto e = open();
  auto r = req("m", p, 8);
  r.resume_tokens.assign(full.begin(), full.begin() + 3);
  ASSERT_TRUE(e->add_request(r).ok());
  auto out = run_all(*e)["m"];
  EXPECT_EQ(out.tokens, std::vector<token_id>(full.begin() + 3, full.end()));
  EXPECT_EQ(out.usage.completion_tokens, 8u);
}

TEST_F(native_engine_test, bad_requests_and_cancel) {
  auto e = open();
  EXPECT_FALSE(e->add_request(req("x", {}, 4)).ok());
  EXPECT_EQ(e->add_request(req("x", {999999}, 4)).err().code, errc::bad_request);
  ASSERT_TRUE(e->add_request(req("y", prompt(5, 1), 4)).ok());
  EXPECT_EQ(e->add_request(req("y", prompt(5, 1), 4)).err().code, errc::conflict);
  EXPECT_FALSE(e->add_request(req("z", prompt(5, 1), 100000)).ok());  // over max_position_embeddings
  e->cancel("y");
  auto out = run_all(*e);
  EXPECT_EQ(out["y"].finish, "cancelled");
  EXPECT_FALSE(e->has_work());
}

TEST_F(native_engine_test, text_and_chat_round_trip) {
  auto e = open();
  auto ids = e->tokenize("Hello world, café 🙂");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(e->detokenize(*ids), "Hello world, café 🙂");  // BOS is special and skipped
  auto chat = e->apply_chat_template({{"user", "hi"}});
  ASSERT_TRUE(chat.ok());
  EXPECT_EQ(e->family(), native::chat_family::llama3);
  EXPECT_EQ(e->get_tokenizer().decode(std::vector<native::tok_id>(chat->begin(), chat->end())),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  // Streaming deltas are valid UTF-8 and add up to the whole text.
  auto r = req("u", *chat, 16);
  ASSERT_TRUE(e->add_request(r).ok());
  std::string all;
  while (e->has_work())
    for (auto& o : e->step().outputs) {
      std::size_t i = 0;
      while (i < o.text_delta.size()) {
        std::uint32_t cp;
        int n = native::utf8_decode(o.text_delta, i, cp);
        ASSERT_GT(n, 0) << "broken UTF-8 in a delta";
        i += static_cast<std::size_t>(n);
      }
      all += o.text_delta;
    }
  EXPECT_FALSE(e->name().empty());
}


// Disaggregation seam: the prefill engine's KV, exported and imported into a
// second engine, continues exactly like an aggregated run (first token from
// the prefill side, the rest decoded on the importing side).
TEST_F(native_engine_test, exported_kv_continues_identically_elsewhere) {
  auto p = prompt(50, 9);  // 3 full 16-token blocks and a 2-token tail
  auto want = alone(p, 8);
  auto pre = open();
  ASSERT_TRUE(pre->add_request(req("pf", p, 1)).ok());
  auto first = run_all(*pre)["pf"].tokens;
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0], want[0]);
  auto hashes = kv::hash_blocks(p, 16, std::nullopt);
  ASSERT_EQ(hashes.size(), 3u);
  ASSERT_EQ(pre->cached_blocks(hashes), 3u);
  std::vector<std::byte> buf(hashes.size() * pre->kv_block_bytes());
  ASSERT_EQ(pre->export_kv(hashes, buf), 3u);

  auto dec = open();
  auto n = dec->import_kv(hashes, std::nullopt, buf);
  ASSERT_TRUE(n.ok()) << n.err().describe();
  EXPECT_EQ(*n, 3u);
  EXPECT_EQ(dec->cached_blocks(hashes), 3u);
  auto r = req("dec", p, 8);
  r.resume_tokens = first;
  ASSERT_TRUE(dec->add_request(r).ok());
  auto out = run_all(*dec)["dec"];
  std::vector<token_id> got = first;
  got.insert(got.end(), out.tokens.begin(), out.tokens.end());
  EXPECT_EQ(got, want);
  EXPECT_EQ(out.usage.cached_tokens, 48u);  // only the tail and the first token were computed here
  // Wrong sizes are errors, not crashes.
  EXPECT_FALSE(dec->import_kv(hashes, std::nullopt, std::span<const std::byte>(buf).first(10)).ok());
}

TEST_F(native_engine_test, logits_processors_bias_ban_min_tokens_and_top_logprobs) {
  auto p = prompt(12, 11);
  auto greedy = alone(p, 6);
  auto e = open();
  auto forced = req("forced", p, 4);
  forced.sampling.logit_bias = {{123, 100.0f}};
  auto banned = req("banned", p, 6);
  banned.sampling.logit_bias = {{greedy[0], -100.0f}};
  auto late = req("late", p, 6);
  late.stop_token_ids = {greedy[0]};
  late.sampling.min_tokens = 3;
  auto lp = req("lp", p, 3);
  lp.sampling.logprobs = true;
  lp.sampling.top_logprobs = 4;
  auto pen = req("pen", p, 6);
  pen.sampling.frequency_penalty = 2.0;
  pen.sampling.repetition_penalty = 2.0;
  for (auto* r : {&forced, &banned, &late, &lp, &pen}) ASSERT_TRUE(e->add_request(*r).ok());
  auto out = run_all(*e);
  EXPECT_EQ(out["forced"].tokens, std::vector<token_id>(4, 123));
  ASSERT_FALSE(out["banned"].tokens.empty());
  EXPECT_NE(out["banned"].tokens[0], greedy[0]);
  ASSERT_GE(out["late"].tokens.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_NE(out["late"].tokens[i], greedy[0]) << i;
  const auto& t = out["lp"].token_logprobs;
  ASSERT_EQ(t.size(), out["lp"].tokens.size());
  for (std::size_t i = 0; i < t.size(); ++i) {
    EXPECT_EQ(t[i].token, out["lp"].tokens[i]);
    ASSERT_EQ(t[i].top.size(), 4u);
    EXPECT_EQ(t[i].top[0].token, t[i].token);  // greedy picks the most likely
    EXPECT_NEAR(t[i].top[0].logprob, t[i].logprob, 1e-5);
  }
  EXPECT_EQ(out["pen"].tokens.size(), 6u);  // runs; the effect is unit-tested in sampling_test
}

}  // namespace
}  // namespace yard::backends
