// actors/tests/kv_transfer_agent_test.cpp — staging and pulling KV blocks between two agents over real UCX,
// and the corrupt-block fault reaching the bytes through the prefill_faults seam (no flag on any run).
#include "actors/kv_transfer_agent.hpp"

#include <gtest/gtest.h>

#include <future>

#include "backends/mock/mock_engine.hpp"
#include "backends/native/cuda/cuda_device.hpp"
#include "kv/block_hash.hpp"

namespace yard::actors {
namespace {

struct kv_transfer_agent_test : ::testing::Test {
  backends::mock_engine_options mo;
  std::vector<msg::token_id> prompt;
  std::vector<kv::block_hash> hashes;

  void SetUp() override {
    mo.per_token_delay_ms = 0.001;
    for (int i = 0; i < 40; ++i) prompt.push_back(300 + i);  // two full blocks of 16 and a tail
    hashes = kv::hash_blocks(prompt, mo.block_size, std::nullopt);
    ASSERT_EQ(hashes.size(), 2u);
  }

  // An engine that has computed the prompt: its two blocks are cached.
  std::unique_ptr<backends::mock_engine> prefilled_engine() {
    auto eng = std::make_unique<backends::mock_engine>(mo);
    backends::engine_request r;
    r.request_id = "r";
    r.prompt = prompt;
    r.max_tokens = 1;
    EXPECT_TRUE(eng->add_request(r));
    for (int i = 0; i < 100 && eng->has_work(); ++i) eng->step();
    EXPECT_EQ(eng->cached_blocks(hashes), 2u);
    return eng;
  }

  std::unique_ptr<kv_transfer_agent> agent(std::shared_ptr<const prefill_faults> faults = nullptr, bool page_lock = false) {
    auto a = kv_transfer_agent::create(kv_transfer_options{.staging_mb = 1, .page_lock = page_lock}, mo.kv_block_bytes,
                                       std::move(faults));
    EXPECT_TRUE(a) << a.err().describe();
    return a ? std::move(*a) : nullptr;
  }

  // Stages the prompt on `from`, pulls it into a fresh engine through `to`: the pull's status and the blocks imported.
  std::pair<status, std::size_t> transfer(kv_transfer_agent& from, kv_transfer_agent& to) {
    auto src = prefilled_engine();
    auto staged = from.stage(*src, hashes);
    EXPECT_TRUE(staged) << staged.err().describe();
    if (!staged) return {staged.err(), 0};
    EXPECT_EQ(staged->blocks.size(), 2u);
    msg::remote_prefill_reply reply;
    reply.request_id = "r";
    reply.lease_id = staged->lease_id;
    reply.region = staged->region;
    reply.blocks = staged->blocks;
    backends::mock_engine dst(mo);
    auto job = to.prepare_pull(dst, reply, hashes);
    EXPECT_TRUE(job && *job);
    if (!job || !*job) return {make_error(errc::internal, "no pull"), 0};
    std::promise<status> done;
    to.start_pull(**job, [&done](status s) { done.set_value(std::move(s)); });
    status pulled = done.get_future().get();
    auto imported = to.finish_pull(dst, **job, pulled);
    from.release(staged->lease_id);
    return {pulled, imported ? *imported : 0};
  }
};

TEST_F(kv_transfer_agent_test, a_staged_prompt_is_pulled_verified_and_imported) {
  auto from = agent(), to = agent();
  ASSERT_TRUE(from && to);
  auto [pulled, imported] = transfer(*from, *to);
  EXPECT_TRUE(pulled) << pulled.err().describe();
  EXPECT_EQ(imported, 2u);
  EXPECT_EQ(from->leased_blocks(), 0u);
}

// Staging is page-locked only for an engine whose KV is on a GPU (spawn_worker asks the engine), never just because
// the host has one; asked for without a usable GPU it stays pageable and transfers work the same.
TEST_F(kv_transfer_agent_test, staging_is_page_locked_only_when_asked_and_a_gpu_takes_it) {
  EXPECT_FALSE(backends::mock_engine(mo).kv_on_gpu());
  auto plain = agent();
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->page_locked());
  auto locked = agent(nullptr, /*page_lock=*/true);
  ASSERT_TRUE(locked);
  EXPECT_EQ(locked->page_locked(), backends::native::cuda_available());
  auto [pulled, imported] = transfer(*locked, *plain);
  EXPECT_TRUE(pulled) << pulled.err().describe();
  EXPECT_EQ(imported, 2u);
}

TEST_F(kv_transfer_agent_test, the_corrupt_block_fault_flips_the_first_staged_block_and_the_checksum_catches_it) {
  auto faults = make_prefill_faults("corrupt-block");
  ASSERT_TRUE(faults && *faults);
  auto from = agent(*faults), to = agent();
  ASSERT_TRUE(from && to);
  for (int round = 0; round < 2; ++round) {  // every lease, not only the first
    auto [pulled, imported] = transfer(*from, *to);
    ASSERT_FALSE(pulled);
    EXPECT_EQ(pulled.err().code, errc::corrupt) << pulled.err().describe();
    EXPECT_EQ(imported, 0u);
  }
  EXPECT_EQ(to->counters().failed_pulls, 2u);
}

}  // namespace
}  // namespace yard::actors
