// actors/tests/worker_engine_test.cpp — a worker's engine actor and heartbeat publisher, driven step by step
// by CAF's test coordinator (every engine step's model time is a timeout the test triggers) on a real
// nats-server: admission and a whole stream, a migration resume, cancel of a running request, bad input,
// a KV snapshot request, and heartbeats on the period and on a status probe.
#include "actors/tests/worker_engine_fixture.hpp"

#include "kv/block_hash.hpp"
#include "kv/block_ledger.hpp"

namespace yard::actors {
namespace {

using testing::batches_of;
using testing::inbox;
using testing::worker_engine_test;
using transport::nats_message;

TEST_F(worker_engine_test, admits_a_request_and_streams_it_to_the_end) {
  inbox box;
  listen(box, "t.r1");
  send(generate_atom::value, "t.r1", R"({"request_id":"r1","prompt":"hello","max_tokens":4})");
  settle();
  ASSERT_TRUE(box.wait_for(5));  // ack, 4 tokens (the last with its finish)
  auto chunks = box.chunks();
  ASSERT_GE(chunks.size(), 5u);
  EXPECT_EQ(chunks[0].worker_id, "w1");  // the ack names who serves it
  EXPECT_TRUE(chunks[0].token_ids.empty());
  std::string text;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i].seq, i);
    text += chunks[i].text;
  }
  EXPECT_EQ(text, expected("hello", 0, 4));
  EXPECT_EQ(chunks.back().finish_reason, msg::finish_kind::length);
  EXPECT_EQ(box.got.front().content_type, "application/json");  // JSON in, JSON out
}

TEST_F(worker_engine_test, a_migrated_request_resumes_after_the_tokens_the_client_has) {
  inbox box;
  listen(box, "t.r2");
  const auto first = expected("resume me", 0, 2);
  send(generate_atom::value, "t.r2",
       R"({"request_id":"r2","prompt":"resume me","max_tokens":5,"attempt":1,"resume_tokens":[)" +
           std::to_string(static_cast<unsigned char>(first[0])) + "," + std::to_string(static_cast<unsigned char>(first[1])) + "]}");
  settle();
  ASSERT_TRUE(box.wait_for(4));
  std::string text;
  for (const auto& c : box.chunks()) text += c.text;
  EXPECT_EQ(text, expected("resume me", 2, 5));
}

TEST_F(worker_engine_test, cancel_ends_a_running_request_with_cancelled) {
  inbox box;
  listen(box, "t.r3");
  send(generate_atom::value, "t.r3", R"({"request_id":"r3","prompt":"long","max_tokens":500})");
  sched->run();  // admitted, first step taken; its model time not yet passed
  send(cancel_atom::value, "", R"({"request_id":"r3","reason":"client left"})");
  settle();
  ASSERT_TRUE(box.wait_final());
  auto chunks = box.chunks();
  EXPECT_EQ(chunks.back().finish_reason, msg::finish_kind::cancelled);
  EXPECT_LT(chunks.size(), 10u);
}

TEST_F(worker_engine_test, bad_input_gets_an_error_chunk_and_the_actor_keeps_serving) {
  inbox box;
  listen(box, "t.bad");
  send(generate_atom::value, "t.bad", "{not json");
  send(generate_atom::value, "t.bad", R"({"request_id":"e1","max_tokens":2})");  // no prompt
  send(generate_atom::value, "t.bad", R"({"request_id":"e2","prompt":"x","max_tokens":100000})");  // over the context
  send(cancel_atom::value, "", "\xc1");  // logged and dropped
  settle();
  ASSERT_TRUE(box.wait_for(3));
  for (const auto& c : box.chunks()) {
    EXPECT_EQ(c.finish_reason, msg::finish_kind::error);
    ASSERT_TRUE(c.error);
    EXPECT_EQ(c.error->code, 400);
  }
  inbox ok;
  listen(ok, "t.ok");
  send(generate_atom::value, "t.ok", R"({"request_id":"ok","prompt":"fine","max_tokens":1})");
  settle();
  EXPECT_TRUE(ok.wait_for(2));
}

TEST_F(worker_engine_test, a_snapshot_request_answers_every_block_held) {
  inbox done, snap;
  listen(done, "t.r4");
  listen(snap, "t.snap");
  send(generate_atom::value, "t.r4", R"({"request_id":"r4","prompt":")" + std::string(64, 'a') + R"(","max_tokens":1})");
  settle();
  ASSERT_TRUE(done.wait_for(2));
  send(snapshot_atom::value, "t.snap", "{}");
  settle();
  ASSERT_TRUE(snap.wait_for(1));
  auto b = msg::decode_auto<msg::kv_event_batch>(snap.got[0].data, snap.got[0].content_type);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->worker_id, "w1");
  EXPECT_GE(b->events.size(), 1u);  // 64 prompt tokens = 4 full blocks of 16, stored
}

// The kv_block_manager: the engine's events go out as batches numbered without a gap, and a
// snapshot (from the manager's ledger) is exactly what those batches say, at the last seq.
TEST_F(worker_engine_test, kv_events_go_out_in_order_and_a_snapshot_matches_them) {
  inbox events, done, snap;
  listen(events, subjects::kv_events("t", "w1"));
  listen(done, "t.k1");
  listen(snap, "t.ksnap");
  send(generate_atom::value, "t.k1", R"({"request_id":"k1","prompt":")" + std::string(80, 'k') + R"(","max_tokens":20})");
  settle();
  ASSERT_TRUE(done.wait_final());
  ASSERT_TRUE(events.wait_for(1));
  send(snapshot_atom::value, "t.ksnap", "{}");
  settle();
  ASSERT_TRUE(snap.wait_for(1));
  auto got = batches_of(events);
  kv::block_ledger replay;
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, i + 1) << "batch 0 (the stream's opening cleared) went out at spawn";
    replay.apply(got[i].events);
  }
  auto s = msg::decode_auto<msg::kv_event_batch>(snap.got[0].data, snap.got[0].content_type);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->seq, got.back().seq);
  EXPECT_GE(replay.size(), 5u);  // 80 prompt + 20 output tokens: at least 6 full blocks of 16 stored
  kv::block_ledger from_snapshot;
  from_snapshot.apply(s->events);
  EXPECT_EQ(from_snapshot.size(), replay.size());
  for (const auto& e : replay.snapshot()) EXPECT_TRUE(from_snapshot.holds(e.tier, e.block_hashes[0]));
}

// An engine actor that dies takes its blocks with it: the manager says so (cleared) and ends too.
TEST_F(worker_engine_test, when_the_engine_actor_dies_the_manager_publishes_cleared_and_ends) {
  inbox events, done;
  listen(events, subjects::kv_events("t", "w1"));
  listen(done, "t.k2");
  send(generate_atom::value, "t.k2", R"({"request_id":"k2","prompt":")" + std::string(48, 'z') + R"(","max_tokens":1})");
  settle();
  ASSERT_TRUE(done.wait_final());
  ASSERT_TRUE(events.wait_for(1));
  auto before = batches_of(events).size();
  caf::anon_send_exit(engine, caf::exit_reason::unhandled_exception);
  settle();
  ASSERT_TRUE(events.wait_for(before + 1));
  auto got = batches_of(events);
  ASSERT_EQ(got.size(), before + 1);
  ASSERT_EQ(got.back().events.size(), 1u);
  EXPECT_EQ(got.back().events[0].kind, msg::kv_event_kind::cleared);
  EXPECT_EQ(got.back().seq, got[before - 1].seq + 1);
  inbox after;  // the manager ended: a snapshot request gets no answer
  listen(after, "t.after");
  send(snapshot_atom::value, "t.after", "{}");
  settle();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(after.got.empty());
}

// Tokens once: block hashes a router sent for this block size are what the scheduler commits
// (no second hashing); hashes for another block size are ignored and computed here.
TEST_F(worker_engine_test, forwarded_block_hashes_are_used_for_the_matching_block_size_only) {
  inbox a, b, snap;
  listen(a, "t.fa");
  listen(b, "t.fb");
  listen(snap, "t.snap2");
  std::string ids;
  for (int i = 0; i < 32; ++i) ids += (i ? "," : "") + std::to_string(100 + i);
  send(generate_atom::value, "t.fa",
       R"({"request_id":"fa","token_ids":[)" + ids + R"(],"max_tokens":1,"block_hashes":[111,222],"hash_block_size":16})");
  send(generate_atom::value, "t.fb",
       R"({"request_id":"fb","token_ids":[)" + ids + R"(],"cache_salt":"other","max_tokens":1,"block_hashes":[333,444],"hash_block_size":8})");
  settle();
  ASSERT_TRUE(a.wait_final());
  ASSERT_TRUE(b.wait_final());
  send(snapshot_atom::value, "t.snap2", "{}");
  settle();
  ASSERT_TRUE(snap.wait_for(1));
  auto batch = msg::decode_auto<msg::kv_event_batch>(snap.got[0].data, snap.got[0].content_type);
  ASSERT_TRUE(batch);
  std::set<std::uint64_t> held;
  for (const auto& e : batch->events) held.insert(e.block_hashes.begin(), e.block_hashes.end());
  EXPECT_TRUE(held.count(111) && held.count(222));    // the router's, as sent
  EXPECT_FALSE(held.count(333) || held.count(444));   // wrong block size: not trusted
  std::vector<backends::token_id> toks;
  for (int i = 0; i < 32; ++i) toks.push_back(100 + i);
  for (auto h : kv::hash_blocks(toks, 16, std::string_view("other"))) EXPECT_TRUE(held.count(h)) << h;
}

TEST_F(worker_engine_test, the_publisher_beats_on_its_period_and_answers_a_status_probe) {
  inbox beats, probe;
  listen(beats, subjects::heartbeat("t", "w1"));
  listen(probe, "t.probe");
  caf::anon_send(publisher, tick_atom::value);
  sched->run();
  ASSERT_TRUE(beats.wait_for(1));
  caf::anon_send(publisher, status_atom::value, nats_message{"t.status", "t.probe", "{}", "application/json", false});
  sched->run();
  ASSERT_TRUE(probe.wait_for(1));
  auto hb = msg::decode_auto<msg::heartbeat>(probe.got[0].data, probe.got[0].content_type);
  ASSERT_TRUE(hb);
  EXPECT_EQ(hb->instance_id, "w1");
  EXPECT_TRUE(hb->load);
  EXPECT_NE(hb->tokenizer_fingerprint, 0u);
  // The next period is a timeout of the publisher: another beat.
  EXPECT_TRUE(sched->trigger_timeout());
  sched->run();
  EXPECT_TRUE(beats.wait_for(2));
}

// A decode worker: a long prompt waits in remote_prefill while a stand-in prefill_client (which
// records and never answers) has it; a cancel then ends it at once, tells the client, and a late
// "prefill here" for it is ignored.
struct decode_engine_test : worker_engine_test {
  std::shared_ptr<std::vector<std::string>> told = std::make_shared<std::vector<std::string>>();

  backends::mock_engine_options options() override {
    auto mo = worker_engine_test::options();
    mo.kv_block_bytes = 256;
    return mo;
  }
  void configure(worker_config& wc) override {
    wc.role = msg::worker_role::decode;
    wc.remote_prefill_min_tokens = 32;
  }
  prefill_client_actor make_prefill_client() override {
    return sys->spawn([t = told](prefill_client_actor::pointer) -> prefill_client_actor::behavior_type {
      return {[](open_atom, caf::actor) {},
              [t](prefill_atom, std::string& key, msg::remote_prefill_request&) { t->push_back("prefill " + key); },
              [t](cancel_atom, std::string& key) { t->push_back("cancel " + key); },
              [](remote_timeout_atom, std::string&) {}, [](prefilled_atom, transport::nats_message&) {},
              [](heartbeat_atom, transport::nats_message&) {}};
    });
  }
  std::unique_ptr<kv_transfer_agent> make_transfer(std::size_t block_bytes) override {
    auto a = kv_transfer_agent::create(kv_transfer_options{.staging_mb = 1}, block_bytes);
    EXPECT_TRUE(a) << a.err().describe();
    return a ? std::move(*a) : nullptr;
  }
};

TEST_F(decode_engine_test, cancel_while_waiting_for_a_remote_prefill_ends_it_and_tells_the_client) {
  inbox box;
  listen(box, "t.d1");
  send(generate_atom::value, "t.d1", R"({"request_id":"d1","prompt":")" + std::string(64, 'p') + R"(","max_tokens":4})");
  settle();
  ASSERT_TRUE(box.wait_for(1));  // the ack: admitted, waiting for a prefill worker
  ASSERT_EQ(*told, std::vector<std::string>{"prefill " + attempt_key("d1", 0)});
  send(cancel_atom::value, "", R"({"request_id":"d1"})");
  settle();
  ASSERT_TRUE(box.wait_final());
  auto chunks = box.chunks();
  ASSERT_EQ(chunks.size(), 2u);  // nothing ran here
  EXPECT_EQ(chunks.back().finish_reason, msg::finish_kind::cancelled);
  ASSERT_EQ(told->size(), 2u);
  EXPECT_EQ(told->back(), "cancel " + attempt_key("d1", 0));
  caf::anon_send(engine, local_atom::value, attempt_key("d1", 0), true);  // a late "prefill here"
  settle();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(box.chunks().size(), 2u);
}

}  // namespace
}  // namespace yard::actors
