// backends/tests/engine_fault_test.cpp — an executor that fails (a device fault, an unreadable KV block):
// the shell ends the failed step's requests `unavailable` with the reason (their frontends resume them on
// another worker), says it cannot serve until a step runs clean (its worker drains), never lets a token of
// the failed step out, and exports no block it could not read.
#include "backends/engine_shell.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "kv/block_hash.hpp"

namespace yard::backends {
namespace {

struct switchable_executor : executor {
  bool fail = false;
  std::set<kv::block_id> unreadable;
  execution_result execute(const batch_plan& plan) override {
    execution_result r;
    for (const auto& e : plan.seqs) r.sampled.push_back(static_cast<token_id>('a' + e.output_index % 26));
    if (fail) {
      r.sampled.assign(plan.seqs.size(), '!');  // what a failed device step would leave: must reach no one
      r.fault = "CUDA forward failed: an illegal memory access was encountered";
    }
    return r;
  }
  std::size_t kv_block_bytes() const override { return sizeof(kv::block_hash); }
  bool read_block(kv::block_id b, kv::block_hash h, std::span<std::byte> out) const override {
    if (unreadable.count(b)) return false;
    std::memcpy(out.data(), &h, sizeof h);
    return true;
  }
};

// The shell around that executor: bytes as tokens, blocks of 4.
class test_engine final : public engine_shell {
 public:
  test_engine() {
    auto ex = std::make_unique<switchable_executor>();
    ex_ = ex.get();
    kv::block_pool_options po;
    po.num_blocks = 64;
    po.block_size = 4;
    set_core(std::make_unique<scheduler>(scheduler_config{}, po), std::move(ex));
  }
  switchable_executor& ex() { return *ex_; }
  std::string name() const override { return "test"; }
  result<std::vector<token_id>> tokenize(std::string_view t) const override {
    return std::vector<token_id>(t.begin(), t.end());
  }
  std::string detokenize(const std::vector<token_id>& t) const override { return std::string(t.begin(), t.end()); }

 protected:
  status prepare(const engine_request&, sequence_spec&) override { return status::success(); }
  std::string token_bytes(token_id t) const override { return std::string(1, static_cast<char>(t)); }
  double step_time_ms(const step_outcome&, double) override { return 0; }

 private:
  switchable_executor* ex_ = nullptr;
};

engine_request request(const std::string& id, std::string_view prompt, std::uint32_t max_tokens) {
  engine_request r;
  r.request_id = id;
  r.prompt.assign(prompt.begin(), prompt.end());
  r.max_tokens = max_tokens;
  return r;
}

TEST(engine_fault, a_failed_step_ends_its_requests_unavailable_and_the_engine_serves_again_after_a_clean_one) {
  test_engine e;
  ASSERT_TRUE(e.add_request(request("r1", "abcdefgh", 6)));
  auto r = e.step();  // prefill + first token, clean
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].text_delta, "a");
  EXPECT_FALSE(e.unavailable_reason());

  e.ex().fail = true;
  r = e.step();
  ASSERT_EQ(r.outputs.size(), 1u);
  const auto& out = r.outputs[0];
  EXPECT_EQ(out.request_id, "r1");
  EXPECT_EQ(out.finish_reason, msg::finish_kind::error);
  EXPECT_EQ(out.error_code, errc::unavailable);  // the frontend resumes it elsewhere
  ASSERT_TRUE(out.error_message);
  EXPECT_NE(out.error_message->find("illegal memory access"), std::string::npos) << *out.error_message;
  EXPECT_TRUE(out.new_tokens.empty());
  EXPECT_TRUE(out.text_delta.empty());
  EXPECT_EQ(out.usage_info.completion_tokens, 1u);  // what it had delivered
  ASSERT_TRUE(e.unavailable_reason());
  EXPECT_NE(e.unavailable_reason()->find("illegal memory access"), std::string::npos);

  // The scheduler's own report of that end comes a step later and is not a second output.
  r = e.step();
  EXPECT_TRUE(r.outputs.empty());
  EXPECT_FALSE(e.has_work());
  EXPECT_TRUE(e.unavailable_reason());  // nothing ran, and within the hold: still not known to be good

  e.ex().fail = false;
  ASSERT_TRUE(e.add_request(request("r2", "ijklmnop", 3)));
  std::string text;
  bool finished = false;
  for (int i = 0; i < 20 && e.has_work(); ++i)
    for (auto& o : e.step().outputs) {
      EXPECT_EQ(o.request_id, "r2");
      text += o.text_delta;
      finished = finished || o.finish_reason == msg::finish_kind::length;
    }
  EXPECT_EQ(text, "abc");
  EXPECT_TRUE(finished);
  EXPECT_FALSE(e.unavailable_reason());  // a clean step: serving again
}

TEST(engine_fault, a_block_the_executor_cannot_read_ends_the_export_before_it) {
  test_engine e;
  const std::string prompt = "abcdefghijklm";  // three full blocks of 4 and a tail
  ASSERT_TRUE(e.add_request(request("r", prompt, 1)));
  for (int i = 0; i < 20 && e.has_work(); ++i) e.step();
  std::vector<token_id> toks(prompt.begin(), prompt.end());
  auto hashes = kv::hash_blocks(toks, 4, std::nullopt);
  ASSERT_EQ(hashes.size(), 3u);
  ASSERT_EQ(e.cached_blocks(hashes), 3u);
  std::vector<std::byte> out(3 * sizeof(kv::block_hash));
  EXPECT_EQ(e.export_kv(hashes, out), 3u);

  auto second = e.get_scheduler().pool().block_of(hashes[1]);
  ASSERT_TRUE(second);
  e.ex().unreadable.insert(*second);
  EXPECT_EQ(e.export_kv(hashes, out), 1u);  // the first block only: nothing unread is passed on as a block
  kv::block_hash first = 0;
  std::memcpy(&first, out.data(), sizeof first);
  EXPECT_EQ(first, hashes[0]);
}

}  // namespace
}  // namespace yard::backends
