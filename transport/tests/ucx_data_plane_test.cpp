// transport/tests/ucx_data_plane_test.cpp — the UCX data plane over loopback.
//
// Owns: tests for ucx_data_plane (pull, checksums, malformed descriptors, dead peer,
// descriptor wire round trip). Two planes live in one process; the serving plane's
// progress thread answers the reads. Transport: tcp (always present here).
// Thread-safety: n/a (test).
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "messages/codec.hpp"
#include "messages/kv_transfer.hpp"
#include "transport/ucx/ucx_data_plane.hpp"

using namespace yard;
using namespace yard::transport;

namespace {

constexpr std::size_t kBlock = 64 * 1024;
constexpr std::size_t kBlocks = 16;

std::vector<char> pattern(std::size_t n, unsigned seed) {
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 9)) & 0xff);
  return v;
}

struct pair_fixture {
  std::unique_ptr<ucx_data_plane> server, client;
  std::vector<char> src = pattern(kBlock * kBlocks, 3);
  std::vector<char> dst = std::vector<char>(kBlock * kBlocks, 0);
  region_handle src_region{}, dst_region{};
  msg::kv_region_descriptor desc;

  void setup() {
    auto s = ucx_data_plane::create({"tcp", true});
    ASSERT_TRUE(s.ok()) << s.err().describe();
    auto c = ucx_data_plane::create({"tcp", false});
    ASSERT_TRUE(c.ok()) << c.err().describe();
    server = std::move(*s);
    client = std::move(*c);
    auto sr = server->register_region(src.data(), src.size());
    ASSERT_TRUE(sr.ok()) << sr.err().describe();
    src_region = *sr;
    auto dr = client->register_region(dst.data(), dst.size());
    ASSERT_TRUE(dr.ok()) << dr.err().describe();
    dst_region = *dr;
    auto d = server->local_descriptor(src_region);
    ASSERT_TRUE(d.ok());
    desc = *d;
  }
};

std::vector<block_copy> reversed_blocks() {
  std::vector<block_copy> b;
  for (std::size_t i = 0; i < kBlocks; ++i) b.push_back({i * kBlock, (kBlocks - 1 - i) * kBlock, kBlock});
  return b;
}

}  // namespace

TEST(ucx_data_plane, descriptor_round_trips_through_msgpack) {
  pair_fixture f;
  f.setup();
  EXPECT_EQ(f.desc.memory_type, "host");
  EXPECT_EQ(f.desc.device_id, -1);
  EXPECT_EQ(f.desc.length, f.src.size());
  auto back = msg::decode<msg::kv_region_descriptor>(msg::encode(f.desc), msg::wire_format::msgpack);
  ASSERT_TRUE(back.ok()) << back.err().describe();
  EXPECT_EQ(back->worker_address, f.desc.worker_address);
  EXPECT_EQ(back->rkey, f.desc.rkey);
  EXPECT_EQ(back->base_address, f.desc.base_address);
  msg::kv_block_ref ref{42, kBlock, kBlock, 7};
  auto rb = msg::decode<msg::kv_block_ref>(msg::encode(ref), msg::wire_format::msgpack);
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(rb->checksum, std::optional<std::uint64_t>(7));
}

TEST(ucx_data_plane, pulls_many_blocks_byte_exact_and_caches_the_endpoint) {
  pair_fixture f;
  f.setup();
  auto blocks = reversed_blocks();
  std::vector<std::uint64_t> sums;
  for (auto& b : blocks) sums.push_back(ucx_data_plane::checksum(f.src.data() + b.remote_offset, b.length));
  auto r = f.client->pull(f.desc, blocks, f.dst_region, 5000, sums);
  ASSERT_TRUE(r.ok()) << r.err().describe();
  EXPECT_EQ(r->bytes, kBlock * kBlocks);
  for (std::size_t i = 0; i < kBlocks; ++i) {
    ASSERT_EQ(0, std::memcmp(f.dst.data() + (kBlocks - 1 - i) * kBlock, f.src.data() + i * kBlock, kBlock)) << i;
  }
  EXPECT_EQ(f.client->cached_peers(), 1u);
  auto again = f.client->pull(f.desc, std::span(blocks).first(2), f.dst_region, 5000);
  ASSERT_TRUE(again.ok()) << again.err().describe();
  EXPECT_EQ(f.client->cached_peers(), 1u);
  f.client->forget_peer(f.desc.worker_address);
  EXPECT_EQ(f.client->cached_peers(), 0u);
}

TEST(ucx_data_plane, checksum_mismatch_is_corrupt_and_names_the_block) {
  pair_fixture f;
  f.setup();
  auto blocks = reversed_blocks();
  std::vector<std::uint64_t> sums;
  for (auto& b : blocks) sums.push_back(ucx_data_plane::checksum(f.src.data() + b.remote_offset, b.length));
  sums[5] ^= 1;
  auto r = f.client->pull(f.desc, blocks, f.dst_region, 5000, sums);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::corrupt);
  EXPECT_NE(r.err().message.find("block 5"), std::string::npos) << r.err().message;
}

TEST(ucx_data_plane, malformed_descriptors_are_clean_errors) {
  pair_fixture f;
  f.setup();
  auto blocks = reversed_blocks();
  auto bad = f.desc;
  bad.worker_address = "xyz";
  auto r1 = f.client->pull(bad, blocks, f.dst_region, 1000);
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.err().code, errc::bad_request);

  bad = f.desc;
  bad.rkey.clear();
  auto r2 = f.client->pull(bad, blocks, f.dst_region, 1000);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.err().code, errc::bad_request);

  bad = f.desc;
  bad.length = kBlock;  // blocks now fall outside the remote region
  auto r3 = f.client->pull(bad, blocks, f.dst_region, 1000);
  ASSERT_FALSE(r3.ok());
  EXPECT_EQ(r3.err().code, errc::bad_request);

  bad = f.desc;
  bad.memory_type = "cuda";
  auto r4 = f.client->pull(bad, blocks, f.dst_region, 1000);
  ASSERT_FALSE(r4.ok());
  EXPECT_EQ(r4.err().code, errc::unsupported);

  bad = f.desc;
  bad.rkey = std::string(bad.rkey.size(), '\x5a');  // garbage rkey bytes
  // tcp emulates RMA in software and does not check rkeys, so UCX may accept this
  // one: what must hold is no crash, and either a clean error or exact bytes.
  auto r6 = f.client->pull(bad, blocks, f.dst_region, 1000);
  if (r6.ok()) EXPECT_EQ(0, std::memcmp(f.dst.data() + (kBlocks - 1) * kBlock, f.src.data(), kBlock));

  bad = f.desc;
  bad.worker_address = std::string(64, '\x01');  // garbage worker address bytes
  auto r7 = f.client->pull(bad, blocks, f.dst_region, 1000);
  ASSERT_FALSE(r7.ok());

  auto r5 = f.client->pull(f.desc, blocks, region_handle{999}, 1000);
  ASSERT_FALSE(r5.ok());
  EXPECT_EQ(r5.err().code, errc::not_found);

  // The plane still works afterwards.
  auto ok = f.client->pull(f.desc, blocks, f.dst_region, 5000);
  EXPECT_TRUE(ok.ok()) << ok.err().describe();
}

TEST(ucx_data_plane, destroyed_peer_fails_within_the_timeout) {
  pair_fixture f;
  f.setup();
  auto blocks = reversed_blocks();
  ASSERT_TRUE(f.client->pull(f.desc, blocks, f.dst_region, 5000).ok());
  f.server.reset();  // the peer goes away; its endpoint in our cache is now stale
  auto t0 = std::chrono::steady_clock::now();
  auto r = f.client->pull(f.desc, blocks, f.dst_region, 1500);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.err().code == errc::unavailable || r.err().code == errc::timeout) << r.err().describe();
  EXPECT_LT(secs, 10.0);  // bounded by the timeout plus the forced close, never a hang
  // A fresh peer to the dead address also fails cleanly.
  auto r2 = f.client->pull(f.desc, blocks, f.dst_region, 1000);
  ASSERT_FALSE(r2.ok());
}

TEST(ucx_data_plane, silent_peer_times_out_without_hanging) {
  // A live peer that never progresses its worker: tcp reads cannot complete.
  auto s = ucx_data_plane::create({"tcp", false});
  auto c = ucx_data_plane::create({"tcp", false});
  ASSERT_TRUE(s.ok() && c.ok());
  auto src = pattern(kBlock * 4, 1);
  std::vector<char> dst(kBlock * 4);
  auto sr = (*s)->register_region(src.data(), src.size());
  auto dr = (*c)->register_region(dst.data(), dst.size());
  ASSERT_TRUE(sr.ok() && dr.ok());
  auto desc = (*s)->local_descriptor(*sr);
  ASSERT_TRUE(desc.ok());
  std::vector<block_copy> blocks{{0, 0, kBlock}, {kBlock, kBlock, kBlock}};
  auto r = (*c)->pull(*desc, blocks, *dr, 300);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::timeout) << r.err().describe();
  EXPECT_EQ((*c)->cached_peers(), 0u);  // the stale endpoint was dropped
}

TEST(ucx_data_plane, plane_allocated_regions_work_over_shared_memory) {
  auto s = ucx_data_plane::create({"posix,cma,self", true, 5000});
  auto c = ucx_data_plane::create({"posix,cma,self", false});
  ASSERT_TRUE(s.ok()) << s.err().describe();
  ASSERT_TRUE(c.ok()) << c.err().describe();
  auto sr = (*s)->allocate_region(kBlock * 4);
  auto dr = (*c)->allocate_region(kBlock * 4);
  ASSERT_TRUE(sr.ok() && dr.ok());
  auto src = pattern(kBlock * 4, 9);
  std::memcpy(sr->second, src.data(), src.size());
  auto desc = (*s)->local_descriptor(sr->first);
  ASSERT_TRUE(desc.ok());
  std::vector<block_copy> blocks{{0, 3 * kBlock, kBlock}, {3 * kBlock, 0, kBlock}};
  auto r = (*c)->pull(*desc, blocks, dr->first, 5000);
  ASSERT_TRUE(r.ok()) << r.err().describe();
  auto* dst = static_cast<const char*>(dr->second);
  EXPECT_EQ(0, std::memcmp(dst + 3 * kBlock, src.data(), kBlock));
  EXPECT_EQ(0, std::memcmp(dst, src.data() + 3 * kBlock, kBlock));
  EXPECT_TRUE((*c)->deregister_region(dr->first).ok());
  EXPECT_EQ((*c)->deregister_region(dr->first).err().code, errc::not_found);
}
