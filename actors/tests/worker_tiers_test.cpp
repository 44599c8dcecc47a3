// actors/tests/worker_tiers_test.cpp — the KV tiers live in the kv_block_manager actor: blocks the
// engine's G1 evicts reach it by message and go down to G2 (tier-2 events on the worker's stream), a
// request whose prefix is only in G2 waits in phase `onboarding` while the manager reads it, the engine
// imports the bytes and the request runs with that prefix cached and the right tokens, a cancel while
// onboarding ends the request at once, the heartbeat carries the manager's tier counts, and a hot prefix is
// written through to G3 with bytes the manager asks of the engine actor. Driven by
// CAF's test coordinator on a real nats-server (worker_engine_fixture.hpp).
#include "actors/tests/worker_engine_fixture.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>

#include "kv/block_hash.hpp"
#include "kv/block_ledger.hpp"

namespace yard::actors {
namespace {

using testing::batches_of;
using testing::inbox;

// A 12-block G1 (16 tokens a block) over a 64-block G2.
struct worker_tiers_test : testing::worker_engine_test {
  backends::mock_engine_options options() override {
    backends::mock_engine_options mo;
    mo.per_token_delay_ms = 5;
    mo.block_size = 16;
    mo.num_blocks = 12;
    mo.tiers.host_blocks = 64;
    return mo;
  }

  static std::string prompt(int s) { return std::string(65, static_cast<char>('a' + s)); }  // 4 full blocks + 1

  // Runs one request to its end; its chunks.
  std::vector<msg::token_chunk> run(const std::string& id, const std::string& p, int max_tokens) {
    inbox box;
    listen(box, "t." + id);
    send(generate_atom::value, "t." + id,
         R"({"request_id":")" + id + R"(","prompt":")" + p + R"(","max_tokens":)" + std::to_string(max_tokens) + "}");
    settle();
    EXPECT_TRUE(box.wait_final()) << id;
    return box.chunks();
  }

  // Six prompts through G1: the first ones' blocks are evicted down to G2.
  void fill_g2() {
    for (int s = 0; s < 6; ++s) run("fill" + std::to_string(s), prompt(s), 2);
  }

  std::size_t stored_in(inbox& events, std::uint8_t tier, const std::string& p) {
    kv::block_ledger replay;
    for (const auto& b : batches_of(events)) replay.apply(b.events);
    std::vector<backends::token_id> toks(p.begin(), p.end());
    std::size_t n = 0;
    for (auto h : kv::hash_blocks(toks, 16)) n += replay.holds(tier, h);
    return n;
  }

  // The worker's heartbeat, through a status probe (as a router or `yard status` asks).
  msg::heartbeat beat() {
    inbox probe;
    listen(probe, "t.probe");
    caf::anon_send(publisher, status_atom::value,
                   transport::nats_message{"t.status", "t.probe", "{}", "application/json", false});
    settle();
    EXPECT_TRUE(probe.wait_for(1));
    std::lock_guard<std::mutex> lock(probe.mu);
    if (probe.got.empty()) return {};
    auto hb = msg::decode_auto<msg::heartbeat>(probe.got[0].data, probe.got[0].content_type);
    return hb ? *hb : msg::heartbeat{};
  }
};

TEST_F(worker_tiers_test, evicted_blocks_go_down_and_a_prefix_in_g2_comes_back_through_the_manager) {
  inbox events;
  listen(events, subjects::kv_events("t", "w1"));
  fill_g2();
  ASSERT_TRUE(events.wait_for(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the last batches' delivery
  EXPECT_EQ(stored_in(events, 2, prompt(0)), 4u) << "the first prompt's blocks were evicted to G2, said on the stream";
  EXPECT_EQ(stored_in(events, 1, prompt(0)), 0u);

  auto chunks = run("again", prompt(0), 4);
  ASSERT_GE(chunks.size(), 2u);
  std::string text;
  for (const auto& c : chunks) text += c.text;
  EXPECT_EQ(text, expected(prompt(0), 0, 4));  // the onboarded KV serves the same tokens
  ASSERT_TRUE(chunks.back().usage_info);
  EXPECT_EQ(chunks.back().usage_info->cached_tokens, 64u);  // all four blocks came back from G2
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(stored_in(events, 1, prompt(0)), 4u);  // back in G1, and the router is told

  auto hb = beat();
  ASSERT_TRUE(hb.load);
  EXPECT_GE(hb.load->tiers.kv_offloaded_blocks, 4u);  // the manager's counts reach the heartbeat
  EXPECT_EQ(hb.load->tiers.kv_onboarded_blocks, 4u);
  EXPECT_GT(hb.load->tiers.g2_kv_blocks, 0u);
}

TEST_F(worker_tiers_test, a_cancel_while_onboarding_ends_the_request_at_once) {
  fill_g2();
  inbox box;
  listen(box, "t.c1");
  send(generate_atom::value, "t.c1", R"({"request_id":"c1","prompt":")" + prompt(0) + R"(","max_tokens":4})");
  sched->run_once();  // the engine actor admits it and asks the manager; the manager has not answered
  send(cancel_atom::value, "", R"({"request_id":"c1"})");
  settle();
  ASSERT_TRUE(box.wait_final());
  auto chunks = box.chunks();
  ASSERT_EQ(chunks.size(), 2u);  // the ack and the cancelled end: no token ran
  EXPECT_EQ(chunks.back().finish_reason, msg::finish_kind::cancelled);
  // The worker serves on; the blocks read for c1 were imported, so this one finds them in G1.
  auto next = run("c2", prompt(0), 2);
  ASSERT_TRUE(next.back().usage_info);
  EXPECT_EQ(next.back().usage_info->cached_tokens, 64u);
}

// Write-through by message: a prefix hit often enough in G1 goes to G3 before it is ever evicted, with the
// bytes the manager asks of the engine actor.
struct worker_write_through_test : worker_tiers_test {
  std::filesystem::path g3 = std::filesystem::temp_directory_path() /
                             ("yard_wt_" + std::to_string(::getpid()) + "_" + std::to_string(std::rand()));
  ~worker_write_through_test() override {
    std::error_code ec;
    std::filesystem::remove_all(g3, ec);
  }
  backends::mock_engine_options options() override {
    auto mo = worker_tiers_test::options();
    mo.tiers.disk_dir = g3.string();
    mo.tiers.disk_sync_writes = true;
    mo.tiers.write_through_hits = 2;
    return mo;
  }
};

TEST_F(worker_write_through_test, a_hot_prefix_is_written_through_to_g3_with_bytes_from_the_engine_actor) {
  inbox events;
  listen(events, subjects::kv_events("t", "w1"));
  run("w0", prompt(0), 2);  // computed: in G1
  run("w1", prompt(0), 2);  // hit once
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(stored_in(events, 3, prompt(0)), 0u);
  run("w2", prompt(0), 2);  // hit twice: hot
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(stored_in(events, 3, prompt(0)), 4u) << "written through to G3 while still in G1";
  EXPECT_EQ(stored_in(events, 1, prompt(0)), 4u);
  EXPECT_EQ(stored_in(events, 2, prompt(0)), 0u);  // nothing was evicted
}

// A kv_block_manager stand-in that only counts the G1-hit reports it gets.
kv_block_manager_actor::behavior_type counting_manager(kv_block_manager_actor::pointer,
                                                       std::shared_ptr<std::atomic<int>> hits) {
  return {
      [](open_atom, caf::actor) {},
      [](kv_events_atom, std::vector<msg::kv_event>) {},
      [](g1_atom, kv::pool_call) { return kv::pool_answer{}; },
      [](kv_events_atom, kv::pool_call) {},
      [](offload_atom, std::vector<kv_block_copy>) {},
      [](onboard_atom, backends::onboard_ask) { return backends::onboard_fetch{}; },
      [hits](hits_atom, std::vector<kv::block_hash>) { ++*hits; },
      [](snapshot_atom, transport::nats_message) {},
      [](caf::get_atom) { return msg::kv_event_batch{}; },
  };
}

// A prompt whose prefix is all in G1 is reported to the manager (hits_atom, the prompt's hashes) only when
// the manager uses the report (write-through to G3 on): otherwise every such request would send a message
// the manager drops.
TEST(worker_tier_question, g1_hits_reach_the_manager_only_when_write_through_uses_them) {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto hits = std::make_shared<std::atomic<int>>(0);
  worker_detail::worker_state st;
  st.kv_manager = sys.spawn(counting_manager, hits);
  backends::mock_engine_options mo;
  mo.block_size = 16;
  mo.num_blocks = 12;
  st.engine = std::make_unique<backends::mock_engine>(mo);
  st.tiers.evicted = std::make_shared<std::vector<kv_block_copy>>();
  st.tiers.load.g2_kv_blocks = 8;  // the tiers hold something: a prefix below G1 would be asked about

  backends::engine_request er;
  er.request_id = "warm";
  for (int i = 0; i < 65; ++i) er.prompt.push_back(static_cast<backends::token_id>(100 + i));
  er.max_tokens = 1;
  ASSERT_TRUE(st.engine->add_request(er).ok());
  for (int guard = 0; st.engine->has_work() && guard < 1000; ++guard) st.engine->step();
  const auto hashes = kv::hash_blocks(er.prompt, 16);
  ASSERT_EQ(st.engine->cached_blocks(hashes), 4u) << "the prompt's four full blocks are in G1";

  auto flushed = [&] {  // the manager has handled everything sent before this
    caf::scoped_actor self{sys};
    self->request(st.kv_manager, std::chrono::seconds(5), caf::get_atom::value)
        .receive([](msg::kv_event_batch&) {}, [](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
    return hits->load();
  };
  st.tiers.counts_hits = false;
  EXPECT_FALSE(worker_detail::tier_question(st, er, hashes)) << "all in G1: nothing to ask the tiers";
  EXPECT_EQ(flushed(), 0) << "write-through off: no report";
  st.tiers.counts_hits = true;
  EXPECT_FALSE(worker_detail::tier_question(st, er, hashes));
  EXPECT_EQ(flushed(), 1) << "write-through on: the G1 hits are reported";
  caf::anon_send_exit(st.kv_manager, caf::exit_reason::user_shutdown);
}

}  // namespace
}  // namespace yard::actors
