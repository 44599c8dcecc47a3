// kv/tests/policy_test.cpp — every routing policy's choice on hand-built scenarios; the factory.
#include "kv/routing_policy.hpp"

#include <gtest/gtest.h>

#include <set>

namespace yard::kv {
namespace {

std::unique_ptr<routing_policy> make(std::string_view name, policy_config c = {}, std::uint64_t seed = 7) {
  auto p = make_policy(name, c, seed);
  EXPECT_TRUE(p.ok()) << name;
  return std::move(*p);
}

worker_candidate cand(worker_index w, std::uint32_t overlap = 0, std::uint32_t queue = 0, std::uint64_t pending = 0,
                      std::uint64_t decode = 0) {
  worker_candidate c;
  c.worker = w;
  c.overlap_blocks = c.overlap_blocks_any = overlap;
  c.load.queue_depth = queue;
  c.load.pending_prefill_tokens = pending;
  c.load.active_decode_blocks = decode;
  return c;
}

struct prompt {
  std::vector<block_hash> hashes;
  route_request req;
  prompt(std::uint32_t blocks, std::uint64_t base, std::uint32_t bs = 16) {
    for (std::uint32_t i = 0; i < blocks; ++i) hashes.push_back(base + i);
    req.hashes = hashes;
    req.block_size = bs;
    req.prompt_tokens = blocks * bs;
  }
};

worker_index pick(routing_policy& p, const route_request& r, const std::vector<worker_candidate>& c) {
  auto d = p.choose(r, c);
  EXPECT_TRUE(d.ok());
  return d.ok() ? d->worker : 9999;
}

TEST(policy_factory, names_and_unknown) {
  for (const auto& n : policy_names()) {
    auto p = make_policy(n, {}, 1);
    ASSERT_TRUE(p.ok()) << n;
    EXPECT_EQ((*p)->name(), n);
  }
  EXPECT_EQ(policy_names().size(), 6u);
  auto bad = make_policy("fastest", {}, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::bad_request);
  EXPECT_NE(bad.err().message.find("ttft"), std::string::npos);  // lists the valid names
}

TEST(policy_factory, empty_candidates_is_unavailable) {
  prompt pr(4, 100);
  for (const auto& n : policy_names()) {
    auto p = make(n);
    auto d = p->choose(pr.req, {});
    ASSERT_FALSE(d.ok()) << n;
    EXPECT_EQ(d.err().code, errc::unavailable);
  }
}

TEST(policy_random, deterministic_by_seed_and_covers_workers) {
  prompt pr(4, 100);
  std::vector<worker_candidate> c{cand(0), cand(1), cand(2), cand(3)};
  auto a = make("random", {}, 11), b = make("random", {}, 11), other = make("random", {}, 12);
  std::vector<worker_index> sa, sb, so;
  std::set<worker_index> seen;
  for (int i = 0; i < 64; ++i) {
    sa.push_back(pick(*a, pr.req, c));
    sb.push_back(pick(*b, pr.req, c));
    so.push_back(pick(*other, pr.req, c));
    seen.insert(sa.back());
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, so);
  EXPECT_EQ(seen.size(), 4u);
}

TEST(policy_round_robin, cycles_by_worker_index) {
  prompt pr(4, 100);
  auto p = make("round_robin");
  std::vector<worker_candidate> c{cand(2), cand(0), cand(5)};
  std::vector<worker_index> got;
  for (int i = 0; i < 5; ++i) got.push_back(pick(*p, pr.req, c));
  EXPECT_EQ(got, (std::vector<worker_index>{0, 2, 5, 0, 2}));
  // Worker 5 leaves: after 2 comes 0 again.
  std::vector<worker_candidate> c2{cand(0), cand(2)};
  EXPECT_EQ(pick(*p, pr.req, c2), 0u);  // last was 2, nothing above 2 -> wrap
}

TEST(policy_least_loaded, queue_then_pending_then_decode) {
  prompt pr(4, 100);
  auto p = make("least_loaded");
  EXPECT_EQ(pick(*p, pr.req, {cand(0, 4, 3), cand(1, 0, 1), cand(2, 0, 2)}), 1u);
  EXPECT_EQ(pick(*p, pr.req, {cand(0, 0, 1, 500), cand(1, 0, 1, 100)}), 1u);
  EXPECT_EQ(pick(*p, pr.req, {cand(0, 0, 1, 100, 9), cand(1, 0, 1, 100, 3)}), 1u);
}

TEST(policy_dynamo, prefers_overlap_when_load_equal) {
  prompt pr(32, 100);
  auto p = make("dynamo");
  auto d = p->choose(pr.req, std::vector{cand(0, 0), cand(1, 20), cand(2, 8)});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->worker, 1u);
  // cost = 1.0 * (32 - 20) + (0 + 32) = 44
  EXPECT_DOUBLE_EQ(d->score, 44.0);
  EXPECT_EQ(d->overlap_blocks, 20u);
}

TEST(policy_dynamo, load_outweighs_overlap) {
  prompt pr(32, 100);
  auto p = make("dynamo");
  // Worker 1 holds 20 blocks but has 100 blocks of prefill queued: cost 12+100+32 > 32+32.
  EXPECT_EQ(pick(*p, pr.req, {cand(0, 0), cand(1, 20, 5, 100 * 16)}), 0u);
  // overlap_weight 0: only decode blocks matter.
  policy_config c;
  c.overlap_weight = 0;
  auto q = make("dynamo", c);
  EXPECT_EQ(pick(*q, pr.req, {cand(0, 30, 0, 0, 50), cand(1, 0, 0, 0, 10)}), 1u);
}

TEST(policy_dynamo, temperature_samples_deterministically) {
  prompt pr(32, 100);
  policy_config c;
  c.temperature = 1.0;
  auto a = make("dynamo", c, 3), b = make("dynamo", c, 3);
  std::vector<worker_candidate> cs{cand(0, 0), cand(1, 16), cand(2, 32)};
  int count[3] = {0, 0, 0};
  for (int i = 0; i < 300; ++i) {
    auto x = pick(*a, pr.req, cs);
    EXPECT_EQ(x, pick(*b, pr.req, cs));
    ++count[x];
  }
  // Softmax: every worker is drawn sometimes, the cheapest most often.
  EXPECT_GT(count[0], 0);
  EXPECT_GT(count[2], count[1]);
  EXPECT_GT(count[1], count[0]);
}

TEST(policy_ttft, cached_worker_wins_when_idle) {
  prompt pr(128, 100);  // 2048 tokens
  auto p = make("ttft");
  auto d = p->choose(pr.req, std::vector{cand(0, 0), cand(1, 100), cand(2, 50)});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->worker, 1u);
  policy_config c;
  // Predicted: f(2048) - f(1600) + c with f(t) = a t^2 + b t.
  double f2048 = c.prefill_a * 2048.0 * 2048 + c.prefill_b * 2048;
  double f1600 = c.prefill_a * 1600.0 * 1600 + c.prefill_b * 1600;
  EXPECT_NEAR(d->score, f2048 - f1600 + c.prefill_c, 1e-9);
}

TEST(policy_ttft, queue_wait_beats_cache_hit) {
  prompt pr(128, 100);
  auto p = make("ttft");
  // Worker 1 has the whole prompt cached but 40k tokens of prefill queued
  // (~ 20 chunks of 2048 ≈ 600+ ms); worker 0 computes 2048 tokens (~ 50 ms).
  EXPECT_EQ(pick(*p, pr.req, {cand(0, 0, 1, 0), cand(1, 128, 10, 40000)}), 0u);
  // With only a small queue the cached worker still wins.
  EXPECT_EQ(pick(*p, pr.req, {cand(0, 0, 1, 0), cand(1, 128, 1, 256)}), 1u);
}

TEST(policy_ttft, miss_penalty_keeps_a_moderately_busy_prefix_owner) {
  prompt pr(128, 100);  // 2048 tokens
  // Worker 1 holds the prompt but has 2000 tokens queued (~48 ms); worker 0 is idle and would recompute all
  // 2048 tokens (~49 ms + ~16.5 ms fixed). Own TTFT alone prefers worker 0; counting what the miss costs the
  // fleet (penalty 1: the recompute's prefill time again) keeps the request with its prefix.
  policy_config own;
  own.ttft_miss_penalty = 0;
  auto p0 = make("ttft", own);
  EXPECT_EQ(pick(*p0, pr.req, {cand(0, 0, 1, 0), cand(1, 128, 1, 2000)}), 0u);
  auto p1 = make("ttft");  // default penalty 1
  EXPECT_EQ(pick(*p1, pr.req, {cand(0, 0, 1, 0), cand(1, 128, 1, 2000)}), 1u);
  // A long queue still loses: the penalty is bounded by the miss's own prefill time.
  EXPECT_EQ(pick(*p1, pr.req, {cand(0, 0, 1, 0), cand(1, 128, 1, 8000)}), 0u);
  // The decision's score stays the predicted TTFT, not the penalised objective.
  auto d = p1->choose(pr.req, std::vector{cand(0, 0, 1, 0)});
  ASSERT_TRUE(d.ok());
  double f2048 = own.prefill_a * 2048.0 * 2048 + own.prefill_b * 2048;
  EXPECT_NEAR(d->score, f2048 + own.prefill_c, 1e-6);
}

TEST(policy_ttft, near_ties_go_to_least_loaded) {
  prompt pr(8, 100);
  auto p = make("ttft");
  // Same overlap, tiny pending difference (well under tie_ms) but worker 0 has a deeper queue.
  EXPECT_EQ(pick(*p, pr.req, {cand(0, 4, 5, 0), cand(1, 4, 1, 10)}), 1u);
}

TEST(policy_ttft, lower_tier_hits_count_partially) {
  prompt pr(128, 100);
  auto p = make("ttft");
  worker_candidate t2 = cand(0, 0);
  t2.overlap_blocks_any = t2.overlap_blocks_g2 = 128;  // whole prompt in host memory
  worker_candidate t1 = cand(1, 64);  // half in device memory
  worker_candidate none = cand(2, 0);
  auto d0 = p->choose(pr.req, std::vector{t2, none});
  ASSERT_TRUE(d0.ok());
  EXPECT_EQ(d0->worker, 0u);  // a tier-2 hit beats recomputing
  auto d1 = p->choose(pr.req, std::vector{t2, t1});
  ASSERT_TRUE(d1.ok());
  // 70 % of 2048 effectively cached (tier-2 hits weighted 0.7) beats 50 % in tier 1.
  EXPECT_EQ(d1->worker, 0u);
}

TEST(policy_weights, lower_tier_hits_weighted_per_tier) {
  policy_config cfg;
  worker_candidate c = cand(0, 2);
  c.overlap_blocks_any = 10;
  c.overlap_blocks_g2 = 4;
  c.overlap_blocks_g3 = 3;  // the other 1 block past the gap is in tier 1
  EXPECT_DOUBLE_EQ(weighted_overlap_blocks(c, cfg), 3 + 4 * cfg.tier2_hit_weight + 3 * cfg.tier3_hit_weight);
  cfg.tier2_hit_weight = 1;
  cfg.tier3_hit_weight = 0;
  EXPECT_DOUBLE_EQ(weighted_overlap_blocks(c, cfg), 7.0);
}

// dynamo counts a disk hit as worth less than a host hit of the same length.
TEST(policy_dynamo, prefers_host_tier_hit_over_disk_tier_hit) {
  prompt pr(64, 100);
  auto p = make("dynamo");
  worker_candidate g2 = cand(0, 0), g3 = cand(1, 0);
  g2.overlap_blocks_any = g2.overlap_blocks_g2 = 64;
  g3.overlap_blocks_any = g3.overlap_blocks_g3 = 64;
  EXPECT_EQ(pick(*p, pr.req, {g3, g2}), 0u);
  // With equal weights they tie on cost and the least loaded wins.
  policy_config eq;
  eq.tier3_hit_weight = eq.tier2_hit_weight;
  auto q = make("dynamo", eq);
  g2.load.queue_depth = 3;
  EXPECT_EQ(pick(*q, pr.req, {g3, g2}), 1u);
}

TEST(policy_approx, sticks_to_the_worker_it_routed_to) {
  prompt pr(16, 100);
  auto p = make("approx");
  std::vector<worker_candidate> c{cand(0), cand(1), cand(2)};
  auto first = pick(*p, pr.req, c);
  p->on_routed(pr.req, first);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(pick(*p, pr.req, c), first);
  // A different prompt goes to a worker with less router-side cache.
  prompt other(16, 5000);
  auto second = pick(*p, other.req, c);
  EXPECT_NE(second, first);
}

TEST(policy_approx, imbalance_routes_to_least_loaded) {
  prompt pr(16, 100);
  auto p = make("approx");
  p->on_routed(pr.req, 0);
  // Worker 0 has the prefix but 100 queued vs 2: imbalance (abs 98 > 32, rel 100 > 3).
  EXPECT_EQ(pick(*p, pr.req, {cand(0, 0, 100), cand(1, 0, 2), cand(2, 0, 3)}), 1u);
  // Mild imbalance (abs 20 < 32): cache wins.
  EXPECT_EQ(pick(*p, pr.req, {cand(0, 0, 22), cand(1, 0, 2), cand(2, 0, 3)}), 0u);
}

TEST(policy_approx, low_match_goes_to_emptiest_worker) {
  prompt a(16, 100);
  auto p = make("approx");
  p->on_routed(a.req, 0);
  prompt big(32, 9000);
  p->on_routed(big.req, 1);
  // 2 of 16 blocks match worker 0 (12.5 % < 30 %): the worker with the least router-side cache (2) wins.
  prompt q(16, 100);
  for (int i = 2; i < 16; ++i) q.hashes[i] = 777000 + i;
  EXPECT_EQ(pick(*p, q.req, {cand(0), cand(1), cand(2)}), 2u);
  // After removal, worker 0's entries are forgotten.
  p->on_worker_removed(0);
  EXPECT_NE(pick(*p, a.req, {cand(0), cand(1, 0, 1), cand(2, 0, 1)}), 1u);
}

}  // namespace
}  // namespace yard::kv
