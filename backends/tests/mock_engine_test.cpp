// backends/tests/mock_engine_test.cpp — mock engine: determinism, migration, timing modes, KV events.
#include "backends/mock/mock_engine.hpp"
#include "kv/block_hash.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>

namespace yard::backends {
namespace {

engine_request req(const std::string& id, const std::string& prompt, std::uint32_t max_tokens, std::uint64_t seed = 7) {
  engine_request r;
  r.request_id = id;
  for (char c : prompt) r.prompt.push_back(static_cast<unsigned char>(c));
  r.max_tokens = max_tokens;
  r.sampling.seed = seed;
  return r;
}

std::map<std::string, std::vector<token_id>> drain(mock_engine& e, std::map<std::string, std::string>* reasons = nullptr,
                                                   double* total_ms = nullptr) {
  std::map<std::string, std::vector<token_id>> out;
  for (int i = 0; i < 100000 && e.has_work(); ++i) {
    auto r = e.step();
    if (total_ms) *total_ms += r.model_time_ms;
    for (auto& o : r.outputs) {
      for (auto t : o.new_tokens) out[o.request_id].push_back(t);
      if (o.finish_reason && reasons) (*reasons)[o.request_id] = std::string(msg::wire_name(*o.finish_reason));
    }
  }
  return out;
}

TEST(mock_engine, fixed_delay_mode_one_token_per_step) {
  mock_engine_options o;
  o.per_token_delay_ms = 10;
  o.speedup = 2;
  mock_engine e(o);
  ASSERT_TRUE(e.add_request(req("a", "hello", 3)).ok());
  auto r1 = e.step();
  EXPECT_DOUBLE_EQ(r1.model_time_ms, 5.0);
  ASSERT_EQ(r1.outputs.size(), 1u);
  EXPECT_EQ(r1.outputs[0].new_tokens.size(), 1u);
  auto p = e.tokenize("hello").value();
  EXPECT_EQ(r1.outputs[0].new_tokens[0], mock_engine::expected_token(p, 7, 0));
  e.step();
  auto r3 = e.step();
  ASSERT_TRUE(r3.outputs[0].finish_reason.has_value());
  EXPECT_EQ(*r3.outputs[0].finish_reason, msg::finish_kind::length);
  EXPECT_EQ(r3.outputs[0].usage_info.completion_tokens, 3u);
  EXPECT_FALSE(e.has_work());
}

TEST(mock_engine, migration_with_resume_tokens_continues_identically) {
  mock_engine a;
  ASSERT_TRUE(a.add_request(req("x", "the prompt", 8)).ok());
  auto full = drain(a)["x"];
  ASSERT_EQ(full.size(), 8u);
  mock_engine b;
  auto r = req("x", "the prompt", 8);
  r.resume_tokens.assign(full.begin(), full.begin() + 3);
  ASSERT_TRUE(b.add_request(r).ok());
  auto rest = drain(b)["x"];
  EXPECT_EQ(rest, std::vector<token_id>(full.begin() + 3, full.end()));
}

TEST(mock_engine, resume_tokens_at_budget_finish_without_tokens) {
  mock_engine e;
  auto r = req("x", "p", 2);
  r.resume_tokens = {'a', 'b'};
  ASSERT_TRUE(e.add_request(r).ok());
  std::map<std::string, std::string> reasons;
  auto out = drain(e, &reasons);
  EXPECT_TRUE(out["x"].empty());
  EXPECT_EQ(reasons["x"], "length");
}

TEST(mock_engine, stop_strings_and_stop_tokens_and_cancel) {
  mock_engine e;
  auto p = e.tokenize("abc").value();
  auto t2 = mock_engine::expected_token(p, 7, 2);
  auto r = req("s", "abc", 50);
  r.stop_token_ids = {t2};
  ASSERT_TRUE(e.add_request(r).ok());
  auto r2 = req("str", "abc", 50);
  r2.stop = {std::string(1, static_cast<char>(mock_engine::expected_token(p, 7, 1)))};
  ASSERT_TRUE(e.add_request(r2).ok());
  ASSERT_TRUE(e.add_request(req("c", "zzz", 50)).ok());
  e.step();
  e.cancel("c");
  std::map<std::string, std::string> reasons;
  auto out = drain(e, &reasons);
  EXPECT_EQ(reasons["s"], "stop");
  EXPECT_EQ(reasons["str"], "stop");
  EXPECT_EQ(reasons["c"], "cancelled");
  EXPECT_LE(out["s"].size(), 2u);  // the first token came from the step before drain
  EXPECT_FALSE(e.add_request(req("", "x", 1)).ok());
  EXPECT_FALSE(e.add_request(req("e", "", 1)).ok());
}

// The mock goes through the same engine shell as the native engine: the text
// ends before the stop string, and a partial match is held back, not streamed.
TEST(mock_engine, stop_string_truncates_the_text_and_holds_back_a_partial_match) {
  mock_engine e;
  auto p = e.tokenize("abc").value();
  std::string expect;
  for (std::size_t i = 0; i < 8; ++i) expect.push_back(static_cast<char>(mock_engine::expected_token(p, 7, i)));
  auto r = req("s", "abc", 50);
  r.stop = {expect.substr(3, 3)};
  ASSERT_TRUE(e.add_request(r).ok());
  std::string text, reason;
  std::vector<std::string> deltas;
  for (int i = 0; i < 100 && e.has_work(); ++i)
    for (auto& o : e.step().outputs) {
      text += o.text_delta;
      deltas.push_back(o.text_delta);
      if (o.finish_reason) reason = std::string(msg::wire_name(*o.finish_reason));
    }
  EXPECT_EQ(reason, "stop");
  const auto first = expect.find(r.stop[0]);  // the stop may occur earlier in the stream than position 3
  EXPECT_EQ(text, expect.substr(0, first));
  // No delta ever carried a byte of the stop string.
  for (const auto& d : deltas) EXPECT_EQ(d.find(r.stop[0]), std::string::npos);
}

TEST(mock_engine, profile_mode_timing_and_prefix_cache) {
  auto o = mock_options_from_profile(default_profile());
  mock_engine e(o);
  std::string prompt(4096, 'q');
  ASSERT_TRUE(e.add_request(req("a", prompt, 2)).ok());
  auto r1 = e.step();
  // Prefill of 4096 new tokens (no cached context) plus nothing else.
  EXPECT_NEAR(r1.model_time_ms, prefill_ms(default_profile(), 4096, 0), 1e-9);
  drain(e);
  auto ev = e.drain_kv_events();
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev[0].kind, msg::kv_event_kind::stored);
  EXPECT_EQ(ev[0].block_hashes.size(), 64u);  // 4096 / 64
  // Same prompt again: only the last block is recomputed.
  ASSERT_TRUE(e.add_request(req("b", prompt, 2)).ok());
  auto r2 = e.step();
  EXPECT_NEAR(r2.model_time_ms, prefill_ms(default_profile(), 64, 4032), 1e-9);
  std::uint32_t cached = 0;
  for (int i = 0; i < 10 && e.has_work(); ++i)
    for (auto& out : e.step().outputs)
      if (out.finish_reason) cached = out.usage_info.cached_tokens;
  EXPECT_EQ(cached, 4032u);
}

TEST(mock_engine, profile_mode_decode_step_uses_kv_utilisation) {
  auto p = default_profile();
  auto o = mock_options_from_profile(p, 4.0);
  mock_engine e(o);
  ASSERT_TRUE(e.add_request(req("a", "xy", 3)).ok());
  e.step();               // prefill
  auto r = e.step();      // decode of one sequence with 3 tokens of context
  double u = 3.0 / (double(p.num_blocks) * p.block_size);
  EXPECT_NEAR(r.model_time_ms, decode_ms(p, u) / 4.0, 1e-9);
}

TEST(mock_engine, preemption_under_tiny_pool_keeps_streams_deterministic) {
  auto p = default_profile();
  p.block_size = 4;
  p.num_blocks = 12;
  p.watermark = 0;
  auto o = mock_options_from_profile(p);
  mock_engine e(o);
  std::map<std::string, std::vector<token_id>> prompts;
  for (int i = 0; i < 4; ++i) {
    std::string s = "p" + std::to_string(i) + "xy";
    prompts["r" + std::to_string(i)] = e.tokenize(s).value();
    ASSERT_TRUE(e.add_request(req("r" + std::to_string(i), s, 10)).ok());
  }
  auto out = drain(e);
  EXPECT_GT(e.sched().stats().preemptions, 0u);
  for (auto& [id, toks] : out) {
    ASSERT_EQ(toks.size(), 10u);
    for (std::size_t i = 0; i < toks.size(); ++i) EXPECT_EQ(toks[i], mock_engine::expected_token(prompts[id], 7, i));
  }
}

TEST(timing_model, default_coefficients_and_profile_file) {
  auto p = default_profile();
  EXPECT_NEAR(prefill_ms(p, 1000, 0), 4.209989e-7 * 1e6 + 1.518344e-2 * 1000 + 16.50142, 1e-9);
  EXPECT_NEAR(decode_ms(p, 0.0), 5.74, 1e-12);
  EXPECT_NEAR(decode_ms(p, 0.5), -25.74 * 0.25 + 54.01 * 0.5 + 5.74, 1e-12);
  auto q = p;
  q.decode_c = -100;
  EXPECT_DOUBLE_EQ(decode_ms(q, 0.0), 1.0);  // floor
  const char* src = std::getenv("YARD_SOURCE_DIR");
  std::string path = std::string(src ? src : ".") + "/profiles/default.json";
  if (!std::ifstream(path)) GTEST_SKIP() << "no " << path;
  auto f = load_profile(path);
  ASSERT_TRUE(f.ok()) << f.err().describe();
  EXPECT_DOUBLE_EQ(f->prefill_a, p.prefill_a);
  EXPECT_DOUBLE_EQ(f->decode_b, p.decode_b);
  EXPECT_EQ(f->block_size, 64u);
  EXPECT_EQ(f->num_blocks, 16384u);
  EXPECT_EQ(f->max_num_seqs, 256u);
  EXPECT_EQ(f->max_num_batched_tokens, 8192u);
  EXPECT_DOUBLE_EQ(f->watermark, 0.01);
}

TEST(timing_model, bad_profiles_name_the_field) {
  EXPECT_FALSE(parse_profile("not json").ok());
  auto r = parse_profile(R"({"prefill": {"a": "x"}})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("prefill.a"), std::string::npos);
  auto r2 = parse_profile(R"({"block_size": -1})");
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.err().message.find("block_size"), std::string::npos);
  EXPECT_FALSE(load_profile("/nonexistent/profile.json").ok());
  // Times, not coefficients, must be non-negative (the default decode_a is negative).
  for (const char* bad : {R"({"prefill": {"a": -1, "b": -1, "c": -1}})", R"({"decode": {"c": -100, "b": 0, "a": 0, "min_ms": -1}})",
                          R"({"max_num_seqs": 0})", R"({"max_num_batched_tokens": 0})"}) {
    auto b = parse_profile(bad);
    EXPECT_FALSE(b.ok()) << bad;
  }
  auto ok = parse_profile(R"({"decode": {"c": 3}})");
  ASSERT_TRUE(ok.ok());
  EXPECT_DOUBLE_EQ(ok->decode_c, 3.0);
  EXPECT_DOUBLE_EQ(ok->prefill_b, default_profile().prefill_b);
}

TEST(mock_engine, kv_export_import_moves_verified_synthetic_blocks) {
  mock_engine a, b;
  auto r = req("p", std::string(70, 'x') + "tail", 1);
  auto hashes = kv::hash_blocks(r.prompt, a.block_size(), std::nullopt);
  ASSERT_EQ(hashes.size(), 4u);
  ASSERT_TRUE(a.add_request(r).ok());
  drain(a);
  ASSERT_EQ(a.cached_blocks(hashes), 4u);
  std::vector<std::byte> buf(hashes.size() * a.kv_block_bytes());
  ASSERT_EQ(a.export_kv(hashes, buf), 4u);
  (void)b.drain_kv_events();
  auto n = b.import_kv(hashes, std::nullopt, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 4u);
  EXPECT_EQ(b.cached_blocks(hashes), 4u);
  auto ev = b.drain_kv_events();  // imported blocks are announced like computed ones
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.front().kind, msg::kv_event_kind::stored);
  // A flipped byte is caught by the importing side (mock blocks are a function of their hash).
  mock_engine c;
  buf[2 * c.kv_block_bytes() + 5] ^= std::byte{1};
  auto bad = c.import_kv(hashes, std::nullopt, buf);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::corrupt);
  EXPECT_EQ(c.cached_blocks(hashes), 2u);  // the blocks before the bad one are kept
  EXPECT_EQ(c.load().active_kv_blocks, 0u);  // and nothing stays referenced
}

}  // namespace
}  // namespace yard::backends
