// kv/tests/router_core_test.cpp — kv_router_core: events -> routing, resync, removal, load, approximate mode, flood fairness.
#include "kv/kv_router_core.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

namespace yard::kv {
namespace {

msg::kv_event stored(std::vector<std::uint64_t> h) {
  msg::kv_event e;
  e.kind = msg::kv_event_kind::stored;
  e.block_hashes = std::move(h);
  return e;
}

msg::kv_event_batch batch(const std::string& w, std::uint64_t seq, std::vector<msg::kv_event> ev) {
  msg::kv_event_batch b;
  b.worker_id = w;
  b.seq = seq;
  b.events = std::move(ev);
  return b;
}

std::unique_ptr<kv_router_core> core(kv_router_options o = {}) {
  auto c = kv_router_core::create(std::move(o));
  EXPECT_TRUE(c.ok());
  return std::move(*c);
}

// Tier-1 overlap of worker `w` in a match (0 when absent).
std::uint32_t of_worker(const std::vector<overlap>& v, worker_index w) {
  for (const auto& o : v)
    if (o.worker == w) return o.blocks;
  return 0;
}

route_input req(const std::string& id, std::vector<block_hash> h, std::uint32_t bs = 16) {
  route_input r;
  r.request_id = id;
  r.prompt_tokens = static_cast<std::uint32_t>(h.size()) * bs;
  r.hashes = std::move(h);
  return r;
}

TEST(kv_router_core, bad_config_is_an_error) {
  kv_router_options o;
  o.policy = "nope";
  EXPECT_FALSE(kv_router_core::create(o).ok());
  o.policy = "ttft";
  o.block_size = 0;
  EXPECT_FALSE(kv_router_core::create(o).ok());
}

TEST(kv_router_core, no_workers_is_unavailable) {
  auto c = core();
  auto r = c->route(req("r", {1, 2}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable);
}

TEST(kv_router_core, routes_to_the_worker_holding_the_prefix_until_evicted) {
  auto c = core();
  for (auto w : {"w0", "w1", "w2", "w3"}) c->add_worker(w);
  std::vector<block_hash> p{11, 12, 13, 14, 15, 16, 17, 18};
  EXPECT_FALSE(c->on_kv_events(batch("w2", 0, {stored(p)})));
  EXPECT_TRUE(c->pump().empty());
  auto r = c->route(req("a", p));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->worker_id, "w2");
  EXPECT_EQ(r->overlap_blocks, 8u);
  c->on_complete("a");
  msg::kv_event rm = stored(p);
  rm.kind = msg::kv_event_kind::removed;
  c->on_kv_events(batch("w2", 1, {rm}));
  c->pump();
  auto r2 = c->route(req("b", p));
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->overlap_blocks, 0u);
}

// A worker's tier-2/3 events reach the policy as partial hits: a prefix held in
// host memory wins over the same prefix on disk, and a disk hit still beats
// nothing; the tier-1 overlap reported stays 0 (nothing is in device memory).
TEST(kv_router_core, lower_tier_hits_route_by_tier_weight) {
  std::vector<block_hash> p;
  for (block_hash h = 100; h < 164; ++h) p.push_back(h);  // 1024 tokens: a 10% disk hit saves > tie_ms
  for (std::uint8_t host_tier : {2, 3}) {
    auto c = core();
    for (auto w : {"w0", "w1", "w2"}) c->add_worker(w);
    auto ev = stored(p);
    ev.tier = host_tier;  // w1: tier 2 or 3
    auto disk = stored(p);
    disk.tier = 3;  // w2: always tier 3
    c->on_kv_events(batch("w1", 0, {ev}));
    c->on_kv_events(batch("w2", 0, {disk}));
    EXPECT_TRUE(c->pump().empty());
    auto r = c->route(req("a", p));
    ASSERT_TRUE(r.ok());
    EXPECT_NE(r->worker_id, "w0");  // a disk hit beats recomputing everything
    EXPECT_EQ(r->overlap_blocks, 0u);
    if (host_tier == 2) EXPECT_EQ(r->worker_id, "w1");  // host beats disk
  }
}

TEST(kv_router_core, gap_then_snapshot) {
  auto c = core();
  c->on_kv_events(batch("w0", 0, {stored({1})}));
  c->on_kv_events(batch("w0", 2, {stored({2})}));  // 1 lost
  auto rs = c->pump();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].worker_id, "w0");
  c->on_kv_events(batch("w0", 3, {stored({3})}));  // queued, newer than the snapshot below
  c->on_snapshot("w0", 2, {stored({1, 9})});
  EXPECT_TRUE(c->pump().empty());
  EXPECT_FALSE(c->index().needs_resync(*c->index_of("w0")));
  auto m = c->index().find_matches(std::vector<block_hash>{1, 9});
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].blocks, 2u);
  EXPECT_EQ(c->index().worker_blocks(*c->index_of("w0")), 3u);  // 1, 9, 3
}

TEST(kv_router_core, removed_worker_vanishes) {
  auto c = core();
  c->add_worker("w0");
  c->add_worker("w1");
  c->on_kv_events(batch("w0", 0, {stored({1, 2, 3})}));
  c->pump();
  c->remove_worker("w0");
  EXPECT_FALSE(c->has_worker("w0"));
  EXPECT_TRUE(c->index().find_matches(std::vector<block_hash>{1, 2, 3}).empty());
  for (int i = 0; i < 4; ++i) {
    auto r = c->route(req("r" + std::to_string(i), {1, 2, 3}));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->worker_id, "w1");
  }
}

TEST(kv_router_core, dispatch_load_spreads_identical_cold_requests) {
  kv_router_options o;
  o.policy = "least_loaded";
  auto c = core(o);
  for (auto w : {"w0", "w1", "w2"}) c->add_worker(w);
  std::set<std::string> used;
  for (int i = 0; i < 3; ++i) used.insert(c->route(req("r" + std::to_string(i), {1, 2}))->worker_id);
  EXPECT_EQ(used.size(), 3u);
  auto l = c->loads().load(*c->index_of("w0"));
  EXPECT_EQ(l.queue_depth, 1u);
  EXPECT_EQ(l.pending_prefill_tokens, 32u);
}

TEST(kv_router_core, load_report_replaces_estimate) {
  auto c = core();
  c->add_worker("w0");
  auto r = c->route(req("a", {1, 2, 3, 4}));
  ASSERT_TRUE(r.ok());
  worker_index w = *c->index_of("w0");
  EXPECT_EQ(c->loads().load(w).pending_prefill_tokens, 64u);
  c->on_first_token("a");
  EXPECT_EQ(c->loads().load(w).pending_prefill_tokens, 0u);
  msg::load_report rep;
  rep.worker_id = "w0";
  rep.pending_prefill_tokens = 500;
  rep.active_requests = 2;
  rep.queued_requests = 3;
  rep.active_kv_blocks = 40;
  c->on_load_report(rep);
  auto l = c->loads().load(w);
  EXPECT_EQ(l.pending_prefill_tokens, 500u);
  EXPECT_EQ(l.queue_depth, 5u);
  EXPECT_EQ(l.active_decode_blocks, 40u);
  // Completing a request dispatched before the report does not double-subtract.
  c->on_complete("a");
  EXPECT_EQ(c->loads().load(w).queue_depth, 5u);
  // Work dispatched after the report adds on top.
  c->route(req("b", {7, 8}));
  EXPECT_EQ(c->loads().load(w).pending_prefill_tokens, 532u);
  c->on_complete("b");
  EXPECT_EQ(c->loads().load(w).pending_prefill_tokens, 500u);
  // Unknown worker's report is ignored.
  rep.worker_id = "ghost";
  c->on_load_report(rep);
  EXPECT_FALSE(c->has_worker("ghost"));
}

TEST(kv_router_core, approximate_mode_assumes_routed_is_cached) {
  kv_router_options o;
  o.use_kv_events = false;
  o.approx.ttl_ms = 1000;
  auto c = core(o);
  for (auto w : {"w0", "w1", "w2"}) c->add_worker(w);
  auto in = req("a", {1, 2, 3, 4, 5, 6, 7, 8});
  auto first = c->route(in);
  ASSERT_TRUE(first.ok());
  c->on_first_token("a");
  c->on_complete("a");
  in.request_id = "b";
  in.now_ms = 500;
  auto again = c->route(in);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->worker_id, first->worker_id);
  EXPECT_EQ(again->overlap_blocks, 8u);
  c->on_complete("b");
  in.request_id = "c";
  in.now_ms = 5000;  // past the TTL
  auto late = c->route(in);
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->overlap_blocks, 0u);
}

TEST(kv_router_core, event_flood_cannot_starve_routing_or_other_workers) {
  auto c = core();
  c->add_worker("flood");
  c->add_worker("quiet");
  // The flooder queues 100 batches of 1000 block events ...
  std::uint64_t seq = 0;
  for (int b = 0; b < 100; ++b) {
    std::vector<std::uint64_t> hs;
    for (int i = 0; i < 1000; ++i) hs.push_back(1000000 + b * 1000 + i);
    EXPECT_FALSE(c->on_kv_events(batch("flood", seq++, {stored(hs)})));
  }
  // ... and the quiet worker's batch arrives last, behind the whole flood.
  std::vector<block_hash> p;
  for (std::uint64_t i = 1; i <= 64; ++i) p.push_back(i);
  c->on_kv_events(batch("quiet", 0, {stored(std::vector<std::uint64_t>(p.begin(), p.end()))}));
  // Two small pump slices (budget 1000 = one flood batch each) apply the
  // quiet worker's batch: round-robin across workers, not FIFO behind the flood.
  c->pump(1000);
  c->pump(1000);
  auto m = c->index().find_matches(p);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].blocks, 64u);
  EXPECT_GE(c->queued_events(), 98000u);  // the flood is still queued ...
  auto r = c->route(req("x", p));         // ... and routing answers anyway, with the quiet worker's blocks
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->worker_id, "quiet");
  EXPECT_EQ(r->overlap_blocks, 64u);
  int slices = 0;
  while (c->queued_events() > 0) {
    EXPECT_TRUE(c->pump(4096).empty());  // in-order batches: no resync
    ++slices;
  }
  EXPECT_GE(slices, 20);  // never more than one slice of work between two routes
  EXPECT_EQ(c->index().worker_blocks(*c->index_of("flood")), 100000u);
}

TEST(kv_router_core, flood_over_the_queue_bound_is_dropped_and_resynced) {
  kv_router_options o;
  o.max_queued_events_per_worker = 10000;
  auto c = core(o);
  int resyncs = 0;
  std::uint64_t seq = 0;
  for (int b = 0; b < 30; ++b) {
    std::vector<std::uint64_t> hs(1000);
    for (int i = 0; i < 1000; ++i) hs[i] = 5000000 + b * 1000 + i;
    if (auto r = c->on_kv_events(batch("flood", seq++, {stored(hs)}))) {
      EXPECT_EQ(r->worker_id, "flood");
      ++resyncs;
    }
    EXPECT_LE(c->queued_events(), 10000u);  // memory stays bounded
  }
  EXPECT_EQ(resyncs, 2);  // batches 10 and 21 overflowed
  // The surviving batches have a seq gap: applying them asks for a snapshot too.
  auto rs = c->pump(1u << 20);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].worker_id, "flood");
  c->on_snapshot("flood", seq - 1, {stored({1, 2})});
  EXPECT_FALSE(c->index().needs_resync(*c->index_of("flood")));
  EXPECT_EQ(c->index().worker_blocks(*c->index_of("flood")), 2u);
}

TEST(kv_router_core, a_snapshot_from_a_dead_stream_never_brings_its_blocks_back) {
  auto c = core();
  c->add_worker("w");
  auto with_stream = [](msg::kv_event_batch b, std::uint64_t s) {
    b.stream = s;
    return b;
  };
  msg::kv_event clear;
  clear.kind = msg::kv_event_kind::cleared;
  c->on_kv_events(with_stream(batch("w", 0, {clear, stored({1, 2})}), 100));
  c->pump();
  // Stream 200 (a restarted engine) opens while stream 100's snapshot is in flight.
  c->on_kv_events(with_stream(batch("w", 0, {clear, stored({7})}), 200));
  // Arriving before 200's batch 0 is applied: still the newest stream seen, so it
  // applies, and the queued batch 0 of 200 (not covered by it) survives to clear it.
  EXPECT_TRUE(c->on_snapshot("w", 0, {stored({1, 2})}, 100));
  EXPECT_EQ(c->queued_events(), 2u);
  c->pump();
  auto w = *c->index_of("w");
  EXPECT_EQ(of_worker(c->index().find_matches(std::vector<block_hash>{1}), w), 0u);
  EXPECT_EQ(of_worker(c->index().find_matches(std::vector<block_hash>{7}), w), 1u);
  // Arriving after: ignored, and stream 200's queued batches stay queued.
  c->on_kv_events(with_stream(batch("w", 1, {stored({8})}), 200));
  EXPECT_FALSE(c->on_snapshot("w", 5, {stored({1, 2})}, 100));
  EXPECT_EQ(c->queued_events(), 1u);
  c->pump();
  EXPECT_EQ(of_worker(c->index().find_matches(std::vector<block_hash>{1}), w), 0u);
  EXPECT_EQ(of_worker(c->index().find_matches(std::vector<block_hash>{7, 8}), w), 2u);
}

TEST(kv_router_core, worker_slots_are_reused) {
  auto c = core();
  auto a = c->add_worker("a");
  c->add_worker("b");
  c->remove_worker("a");
  EXPECT_EQ(c->add_worker("c"), a);
  EXPECT_EQ(c->num_workers(), 2u);
}

// The core keeps its candidate list between requests (loads refreshed as they
// change, overlaps reset after each route). Every decision must equal what the
// same policy picks from candidates built from scratch: every live worker in
// index order, its overlaps from find_matches, its load from the tracker.
TEST(kv_router_core, kept_candidates_decide_like_candidates_built_per_request) {
  for (std::string name : {"ttft", "dynamo", "least_loaded"}) {
    kv_router_options o;
    o.policy = name;
    o.seed = 9;
    auto c = core(o);
    auto ref = make_policy(name, o.policy_cfg, o.seed);
    ASSERT_TRUE(ref.ok());
    std::mt19937_64 rng(17);
    auto pick = [&](std::uint64_t n) { return rng() % n; };
    std::vector<std::string> names;
    std::map<std::string, std::uint64_t> seq;
    std::vector<std::string> open;  // dispatched, not complete
    for (int i = 0; i < 12; ++i) names.push_back("w" + std::to_string(i));
    for (int i = 0; i < 8; ++i) c->add_worker(names[i]);
    auto chain = [](std::uint64_t family, std::uint32_t n) {
      std::vector<block_hash> h;
      for (std::uint32_t i = 0; i < n; ++i) h.push_back(family * 100 + i + 1);
      return h;
    };
    for (int step = 0; step < 1500; ++step) {
      std::uint64_t r = pick(100);
      const std::string& w = names[pick(names.size())];
      if (r < 25) {
        c->on_kv_events(batch(w, seq[w]++, {stored(chain(pick(6), 1 + pick(12)))}));
        c->pump(1u << 20);
      } else if (r < 30 && !open.empty()) {
        c->on_first_token(open[pick(open.size())]);
      } else if (r < 38 && !open.empty()) {
        auto k = pick(open.size());
        c->on_complete(open[k]);
        open.erase(open.begin() + static_cast<std::ptrdiff_t>(k));
      } else if (r < 41) {
        msg::load_report rep;
        rep.worker_id = w;
        rep.pending_prefill_tokens = pick(4096);
        rep.active_kv_blocks = pick(512);
        rep.active_requests = static_cast<std::uint32_t>(pick(8));
        c->on_load_report(rep);
      } else if (r < 43) {
        c->remove_worker(w);
        seq.erase(w);
      } else if (r < 46) {
        c->add_worker(w);
      } else {
        if (c->num_workers() == 0) continue;
        auto in = req("r" + std::to_string(step), chain(pick(6), 1 + pick(16)));
        in.max_tokens = 64;
        in.now_ms = step;
        // The reference candidates, built the slow way before the core routes.
        std::vector<worker_candidate> cands;
        for (const auto& n : names) {
          if (!c->has_worker(n)) continue;
          worker_candidate wc;
          wc.worker = *c->index_of(n);
          wc.load = c->loads().load(wc.worker);
          cands.push_back(wc);
        }
        std::sort(cands.begin(), cands.end(), [](auto& a, auto& b) { return a.worker < b.worker; });
        for (const auto& m : c->index().find_matches(in.hashes)) {
          for (auto& wc : cands) {
            if (wc.worker != m.worker) continue;
            wc.overlap_blocks = m.blocks;
            wc.overlap_blocks_any = m.blocks_any;
            wc.overlap_blocks_g2 = m.blocks_g2;
            wc.overlap_blocks_g3 = m.blocks_g3;
          }
        }
        route_request rq;
        rq.hashes = in.hashes;
        rq.prompt_tokens = in.prompt_tokens;
        rq.block_size = o.block_size;
        rq.max_tokens = in.max_tokens;
        rq.now_ms = in.now_ms;
        auto want = (*ref)->choose(rq, cands);
        auto got = c->route(in);
        ASSERT_TRUE(want.ok() && got.ok()) << name << " step " << step;
        ASSERT_EQ(got->worker, want->worker) << name << " step " << step;
        EXPECT_DOUBLE_EQ(got->score, want->score) << name << " step " << step;
        (*ref)->on_routed(rq, want->worker);
        open.push_back(in.request_id);
      }
    }
  }
}

}  // namespace
}  // namespace yard::kv
