// backends/tests/scheduler_test.cpp — continuous batching: limits, chunked prefill,
// prefix caching, preemption by recompute, executor contract.
#include "backends/scheduler/scheduler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <utility>

namespace yard::backends {
namespace {

// Samples token = position (so recompute gives identical streams) and records plans.
struct recording_executor : executor {
  std::vector<batch_plan> plans;
  std::vector<std::uint64_t> freed;
  execution_result execute(const batch_plan& plan) override {
    plans.push_back(plan);
    execution_result r;
    for (const auto& e : plan.seqs) {
      // Contract checks a native executor relies on.
      EXPECT_EQ(e.tokens.data(), e.all_tokens.data() + e.start_pos);
      EXPECT_GE(e.block_table.size() * plan.block_size, e.start_pos + e.tokens.size());
      r.sampled.push_back(1000 + e.output_index);
    }
    r.model_time_ms = 1.0;
    return r;
  }
  void on_sequence_freed(std::uint64_t id) override { freed.push_back(id); }
};

sequence_spec spec(const std::string& id, std::uint32_t prompt_len, std::uint32_t max_out, token_id base = 1) {
  sequence_spec s;
  s.request_id = id;
  for (std::uint32_t i = 0; i < prompt_len; ++i) s.tokens.push_back(base + i);
  s.max_output_tokens = max_out;
  return s;
}

kv::block_pool_options pool(std::uint32_t blocks, std::uint32_t bs = 4) {
  kv::block_pool_options o;
  o.num_blocks = blocks;
  o.block_size = bs;
  return o;
}

std::map<std::string, std::vector<token_id>> run_all(scheduler& s, recording_executor& ex, int max_steps = 10000) {
  std::map<std::string, std::vector<token_id>> out;
  for (int i = 0; i < max_steps && s.has_work(); ++i) {
    auto o = s.step(ex);
    for (auto& u : o.updates)
      for (auto t : u.new_tokens) out[u.request_id].push_back(t);
  }
  return out;
}

TEST(scheduler, rejects_bad_requests) {
  scheduler s({}, pool(16));
  EXPECT_FALSE(s.add(spec("", 4, 1)).ok());
  EXPECT_FALSE(s.add(spec("a", 0, 1)).ok());
  EXPECT_TRUE(s.add(spec("a", 4, 1)).ok());
  EXPECT_EQ(s.add(spec("a", 4, 1)).err().code, errc::conflict);
  EXPECT_EQ(s.add(spec("big", 100, 1)).err().code, errc::bad_request);  // > 16 blocks of 4: never, so no retry
}


// min_tokens the output budget cannot reach is refused, naming the field and the room left (it would end at
// 'length' with the stop tokens banned throughout, so never as asked).
TEST(scheduler, min_tokens_over_the_room_left_is_refused) {
  scheduler_config cfg;
  cfg.max_model_len = 32;
  scheduler s(cfg, pool(64));
  auto until_context = spec("a", 10, 0);  // 0: until the context ends, 22 outputs
  until_context.sampling.min_tokens = 23;
  auto r = s.add(until_context);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::bad_request);
  EXPECT_NE(r.err().message.find("min_tokens' (23) exceeds the 22 tokens"), std::string::npos) << r.err().message;
  until_context.sampling.min_tokens = 22;
  EXPECT_TRUE(s.add(until_context).ok());
  auto explicit_max = spec("b", 4, 5);
  explicit_max.sampling.min_tokens = 6;
  r = s.add(explicit_max);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("exceeds 'max_tokens' (5)"), std::string::npos) << r.err().message;
}
TEST(scheduler, max_num_seqs_limits_running) {
  scheduler_config c;
  c.max_num_seqs = 2;
  scheduler s(c, pool(100));
  recording_executor ex;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(s.add(spec("r" + std::to_string(i), 4, 3)).ok());
  auto first = s.step(ex);
  EXPECT_EQ(s.num_running(), 2u);
  EXPECT_EQ(s.num_waiting(), 3u);
  auto out = run_all(s, ex);
  for (auto& u : first.updates) out[u.request_id].insert(out[u.request_id].begin(), u.new_tokens.begin(), u.new_tokens.end());
  EXPECT_EQ(out.size(), 5u);
  for (auto& [id, toks] : out) EXPECT_EQ(toks, (std::vector<token_id>{1000, 1001, 1002}));
  for (const auto& p : ex.plans) EXPECT_LE(p.seqs.size(), 2u);
}

// A tenant's priority orders the waiting queue: higher first, FCFS within one.
TEST(scheduler, higher_priority_waits_ahead_fcfs_within_a_priority) {
  scheduler_config c;
  c.max_num_seqs = 1;
  scheduler s(c, pool(100));
  recording_executor ex;
  auto add = [&](const std::string& id, std::int32_t prio) {
    auto sp = spec(id, 4, 1);
    sp.priority = prio;
    ASSERT_TRUE(s.add(std::move(sp)).ok());
  };
  add("low-a", 0);
  add("low-b", 0);
  add("high-a", 5);
  add("mid", 1);
  add("high-b", 5);
  std::vector<std::string> order;
  for (int i = 0; i < 20 && order.size() < 5; ++i)
    for (const auto& u : s.step(ex).updates)
      if (u.finish_reason) order.push_back(u.request_id);
  EXPECT_EQ(order, (std::vector<std::string>{"high-a", "high-b", "mid", "low-a", "low-b"}));
}

// Agent hints: at equal priority, interactive requests are admitted before batch ones.
TEST(scheduler, batch_yields_to_interactive) {
  scheduler_config c;
  c.max_num_seqs = 1;
  scheduler s(c, pool(100));
  recording_executor ex;
  auto add = [&](const std::string& id, msg::latency_class lc, std::int32_t prio = 0) {
    auto sp = spec(id, 4, 1);
    sp.latency = lc;
    sp.priority = prio;
    ASSERT_TRUE(s.add(std::move(sp)).ok());
  };
  add("batch-a", msg::latency_class::batch);
  add("batch-b", msg::latency_class::batch);
  add("inter-a", msg::latency_class::interactive);
  add("batch-high", msg::latency_class::batch, 5);  // a priority still outranks the class
  add("inter-b", msg::latency_class::interactive);
  std::vector<std::string> order;
  for (int i = 0; i < 20 && order.size() < 5; ++i)
    for (const auto& u : s.step(ex).updates)
      if (u.finish_reason) order.push_back(u.request_id);
  EXPECT_EQ(order, (std::vector<std::string>{"batch-high", "inter-a", "inter-b", "batch-a", "batch-b"}));
}

// Under a tight token budget an interactive prefill takes the budget before an earlier-admitted batch one.
TEST(scheduler, interactive_prefill_chunks_go_before_batch_ones) {
  scheduler_config c;
  c.max_num_batched_tokens = 8;
  scheduler s(c, pool(100));
  recording_executor ex;
  auto b = spec("batch", 24, 1);
  b.latency = msg::latency_class::batch;
  ASSERT_TRUE(s.add(std::move(b)).ok());
  s.step(ex);  // the batch request is admitted and takes the first chunk
  ASSERT_TRUE(s.add(spec("inter", 16, 1, 500)).ok());
  s.step(ex);  // the interactive one is admitted (after running ones: the batch chunk went first)
  std::vector<std::string> first_of_step;
  for (int i = 0; i < 4; ++i) {
    s.step(ex);
    first_of_step.push_back(std::string(ex.plans.back().seqs.front().request_id));
  }
  EXPECT_EQ(first_of_step.front(), "inter");
}

// Aging: a low-priority request overtakes a steady stream of newer
// high-priority ones once it has waited long enough; with aging off it starves.
TEST(scheduler, aging_prevents_starvation) {
  auto finish_step_of_low = [](std::uint32_t aging_steps) {
    scheduler_config c;
    c.max_num_seqs = 1;
    c.aging_steps = aging_steps;
    scheduler s(c, pool(200));
    recording_executor ex;
    auto low = spec("low", 4, 1);
    EXPECT_TRUE(s.add(std::move(low)).ok());
    for (int step = 0; step < 40; ++step) {
      for (int k = 0; k < 2; ++k) {  // more high-priority work arrives than one seat serves
        auto hi = spec("high-" + std::to_string(step) + "-" + std::to_string(k), 4, 1);
        hi.priority = 3;
        EXPECT_TRUE(s.add(std::move(hi)).ok());
      }
      for (const auto& u : s.step(ex).updates)
        if (u.request_id == "low" && u.finish_reason) return step;
    }
    return -1;
  };
  const int aged = finish_step_of_low(2);
  // The low request's rank (k/2 after k steps) passes the oldest waiting high
  // one's (3 + its own aging, about k/4: the backlog grows a request per step) near k = 12.
  EXPECT_GE(aged, 6);
  EXPECT_LE(aged, 20);
  EXPECT_EQ(finish_step_of_low(0), -1);
}

TEST(scheduler, chunked_prefill_respects_token_budget) {
  scheduler_config c;
  c.max_num_batched_tokens = 10;
  scheduler s(c, pool(100));
  recording_executor ex;
  ASSERT_TRUE(s.add(spec("long", 25, 2)).ok());
  auto o1 = s.step(ex);
  EXPECT_TRUE(o1.updates.empty());  // 10 of 25 prompt tokens, no token yet
  s.step(ex);                       // 20
  auto o3 = s.step(ex);             // 25: first token
  ASSERT_EQ(o3.updates.size(), 1u);
  ASSERT_EQ(ex.plans.size(), 3u);
  EXPECT_EQ(ex.plans[0].seqs[0].tokens.size(), 10u);
  EXPECT_EQ(ex.plans[1].seqs[0].start_pos, 10u);
  EXPECT_EQ(ex.plans[2].seqs[0].tokens.size(), 5u);
  EXPECT_TRUE(ex.plans[2].seqs[0].sample);
  EXPECT_FALSE(ex.plans[0].seqs[0].sample);
  for (const auto& p : ex.plans) EXPECT_LE(p.num_prefill_tokens, 10u);
}

TEST(scheduler, prefix_cache_hit_skips_cached_blocks) {
  scheduler s({}, pool(100));
  recording_executor ex;
  ASSERT_TRUE(s.add(spec("a", 16, 1)).ok());
  run_all(s, ex);
  ASSERT_TRUE(s.add(spec("b", 18, 1)).ok());  // same first 16 tokens
  ex.plans.clear();
  std::uint32_t cached = 0;
  while (s.has_work())
    for (auto& u : s.step(ex).updates)
      if (u.finish_reason) cached = u.cached_tokens;
  EXPECT_EQ(cached, 16u);
  ASSERT_FALSE(ex.plans.empty());
  EXPECT_EQ(ex.plans[0].seqs[0].start_pos, 16u);
  EXPECT_EQ(ex.plans[0].seqs[0].tokens.size(), 2u);
  // A fully cached prompt still computes its last token.
  ASSERT_TRUE(s.add(spec("c", 16, 1)).ok());
  ex.plans.clear();
  run_all(s, ex);
  EXPECT_EQ(ex.plans[0].seqs[0].start_pos, 12u);
  EXPECT_EQ(ex.plans[0].seqs[0].tokens.size(), 4u);
}

TEST(scheduler, cache_salt_isolates_prefixes) {
  scheduler s({}, pool(100));
  recording_executor ex;
  auto a = spec("a", 16, 1);
  a.cache_salt = "tenant-1";
  ASSERT_TRUE(s.add(a).ok());
  run_all(s, ex);
  auto b = spec("b", 16, 1);
  b.cache_salt = "tenant-2";
  ASSERT_TRUE(s.add(b).ok());
  std::uint32_t cached = 99;
  while (s.has_work())
    for (auto& u : s.step(ex).updates)
      if (u.finish_reason) cached = u.cached_tokens;
  EXPECT_EQ(cached, 0u);
}

TEST(scheduler, preemption_by_recompute_keeps_outputs_identical) {
  // 10 blocks of 4 tokens; three sequences that each grow to 12 tokens (3 blocks)
  // plus a watermark of 0 — decode growth must preempt.
  scheduler_config c;
  c.watermark = 0;
  scheduler s(c, pool(8));
  recording_executor ex;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.add(spec("r" + std::to_string(i), 4, 12, 100 * (i + 1))).ok());
  auto out = run_all(s, ex);
  EXPECT_GT(s.stats().preemptions, 0u);
  ASSERT_EQ(out.size(), 3u);
  std::vector<token_id> want;
  for (int i = 0; i < 12; ++i) want.push_back(1000 + i);
  for (auto& [id, toks] : out) EXPECT_EQ(toks, want) << id;
  EXPECT_FALSE(ex.freed.empty());
  EXPECT_EQ(s.pool().num_referenced(), 0u);
}

TEST(scheduler, stop_token_cancel_and_finish) {
  scheduler s({}, pool(100));
  recording_executor ex;
  auto a = spec("a", 4, 10);
  a.stop_token_ids = {1002};
  ASSERT_TRUE(s.add(a).ok());
  ASSERT_TRUE(s.add(spec("b", 4, 10)).ok());
  ASSERT_TRUE(s.add(spec("c", 4, 10)).ok());
  std::map<std::string, std::string> reasons;
  std::map<std::string, std::size_t> counts;
  for (int i = 0; i < 50 && s.has_work(); ++i) {
    if (i == 1) s.cancel("b");
    if (i == 2) s.finish("c", msg::finish_kind::stop);
    for (auto& u : s.step(ex).updates) {
      counts[u.request_id] += u.new_tokens.size();
      if (u.finish_reason) reasons[u.request_id] = std::string(msg::wire_name(*u.finish_reason));
    }
  }
  EXPECT_EQ(reasons["a"], "stop");
  EXPECT_EQ(counts["a"], 3u);
  EXPECT_EQ(reasons["b"], "cancelled");
  EXPECT_EQ(reasons["c"], "stop");
  EXPECT_EQ(s.pool().num_referenced(), 0u);
}

TEST(scheduler, emits_kv_events_for_committed_blocks) {
  scheduler s({}, pool(100));
  recording_executor ex;
  ASSERT_TRUE(s.add(spec("a", 9, 4)).ok());  // 9 prompt + 4 outputs = 13 tokens: 3 full blocks
  run_all(s, ex);
  auto ev = s.pool().drain_events();
  std::size_t stored = 0;
  for (auto& e : ev)
    if (e.kind == msg::kv_event_kind::stored) stored += e.block_hashes.size();
  EXPECT_EQ(stored, 3u);
  // The prompt's hashes are the kv/block_hash chain.
  auto a = spec("a", 9, 4);
  auto hs = kv::hash_blocks(a.tokens, 4);
  ASSERT_EQ(hs.size(), 2u);
  EXPECT_EQ(ev[0].block_hashes[0], hs[0]);
  EXPECT_EQ(ev[0].block_hashes[1], hs[1]);
}

TEST(scheduler, load_report_counts_queue_and_blocks) {
  scheduler_config c;
  c.max_num_seqs = 1;
  scheduler s(c, pool(100));
  recording_executor ex;
  ASSERT_TRUE(s.add(spec("a", 8, 5)).ok());
  ASSERT_TRUE(s.add(spec("b", 8, 5)).ok());
  s.step(ex);
  auto l = s.load();
  EXPECT_EQ(l.active_requests, 1u);
  EXPECT_EQ(l.queued_requests, 1u);
  EXPECT_EQ(l.pending_prefill_tokens, 8u);
  EXPECT_EQ(l.total_kv_blocks, 100u);
  EXPECT_GE(l.active_kv_blocks, 2u);
}

// An executor that fails a step (a device fault): nothing of it is applied, the outcome names the plan's
// requests, and the next clean step computes the same positions, so the tokens are those of a run without it.
TEST(scheduler, a_failed_step_applies_nothing_and_names_its_requests) {
  struct failing_once : recording_executor {
    bool fail_next = false;
    execution_result execute(const batch_plan& plan) override {
      auto r = recording_executor::execute(plan);
      if (std::exchange(fail_next, false)) {
        r = execution_result{};
        r.sampled.assign(plan.seqs.size(), 7);  // garbage that must not reach anyone
        r.fault = "device fault";
      }
      return r;
    }
  };
  recording_executor clean;
  scheduler ref({}, pool(32));
  ASSERT_TRUE(ref.add(spec("a", 6, 4)).ok());
  ASSERT_TRUE(ref.add(spec("b", 5, 4, 50)).ok());
  auto want = run_all(ref, clean);

  failing_once ex;
  scheduler s({}, pool(32));
  ASSERT_TRUE(s.add(spec("a", 6, 4)).ok());
  ASSERT_TRUE(s.add(spec("b", 5, 4, 50)).ok());
  std::map<std::string, std::vector<token_id>> got;
  auto collect = [&](step_outcome& o) {
    for (auto& u : o.updates)
      for (auto t : u.new_tokens) got[u.request_id].push_back(t);
  };
  auto o = s.step(ex);  // prefill of both, clean
  collect(o);
  ex.fail_next = true;
  o = s.step(ex);  // a decode step that fails
  EXPECT_EQ(o.fault, "device fault");
  EXPECT_TRUE(o.ran);
  EXPECT_TRUE(o.updates.empty());
  std::sort(o.faulted.begin(), o.faulted.end());
  EXPECT_EQ(o.faulted, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.num_running(), 2u);  // still scheduled: the engine decides what to do with them
  for (int i = 0; i < 100 && s.has_work(); ++i) {
    o = s.step(ex);
    EXPECT_TRUE(o.fault.empty());
    collect(o);
  }
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace yard::backends
