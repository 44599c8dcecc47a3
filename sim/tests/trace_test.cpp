// sim/tests/trace_test.cpp — Mooncake trace loading: good lines, each kind of bad line, token expansion.
#include "sim/trace.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kv/block_hash.hpp"
#include "sim/synthetic.hpp"

namespace yard::sim {
namespace {

TEST(trace, parses_good_lines) {
  auto t = parse_trace(
      "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 5, \"hash_ids\": [0, 1]}\n"
      "\n"
      "{\"timestamp\": 10, \"input_length\": 100, \"output_length\": 2, \"hash_ids\": [0]}\n");
  ASSERT_TRUE(t.ok()) << t.err().describe();
  ASSERT_EQ(t->requests.size(), 2u);
  EXPECT_EQ(t->requests[0].input_length, 600u);
  EXPECT_EQ(t->requests[1].line, 3u);
  EXPECT_TRUE(t->issues.empty());
}

TEST(trace, reads_agent_hint_fields) {
  auto t = parse_trace(
      "{\"timestamp\": 0, \"input_length\": 6, \"output_length\": 5, \"hash_ids\": [0], \"latency_class\": \"batch\", "
      "\"priority\": -2, \"session_id\": \"c1\"}\n"
      "{\"timestamp\": 1, \"input_length\": 6, \"output_length\": 5, \"hash_ids\": [0], \"latency_class\": \"urgent\"}\n"
      "{\"timestamp\": 2, \"input_length\": 6, \"output_length\": 5, \"hash_ids\": [0], \"priority\": 99999}\n"
      "{\"timestamp\": 3, \"input_length\": 6, \"output_length\": 5, \"hash_ids\": [0]}\n");
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->requests.size(), 2u);
  EXPECT_EQ(t->requests[0].latency, msg::latency_class::batch);
  EXPECT_EQ(t->requests[0].priority, -2);
  EXPECT_EQ(t->requests[0].session_id, "c1");
  EXPECT_EQ(t->requests[1].latency, msg::latency_class::interactive);  // the default
  ASSERT_EQ(t->issues.size(), 2u);
  EXPECT_NE(t->issues[0].reason.find("latency_class"), std::string::npos);
  EXPECT_NE(t->issues[1].reason.find("priority"), std::string::npos);
}

TEST(trace, reports_each_bad_line_with_its_number_and_skips_it) {
  std::string text =
      "{\"timestamp\": 5, \"input_length\": 10, \"output_length\": 5, \"hash_ids\": [1]}\n"   // 1 ok
      "{\"timestamp\": 6, \"output_length\": 5, \"hash_ids\": [1]}\n"                         // 2 missing field
      "{\"timestamp\": 7, \"input_length\": -3, \"output_length\": 5, \"hash_ids\": [1]}\n"   // 3 negative
      "{\"timestamp\": 1, \"input_length\": 10, \"output_length\": 5, \"hash_ids\": [1]}\n"   // 4 backwards
      "{\"timestamp\": 8, \"input_length\": 10, \"output_length\": 5, \"hash_ids\": \"x\"}\n" // 5 bad type
      "{not json\n"                                                                             // 6
      "[1, 2]\n"                                                                                // 7 not object
      "{\"timestamp\": 9, \"input_length\": 10, \"output_length\": 0, \"hash_ids\": [1]}\n"   // 8 zero output
      "{\"timestamp\": 9, \"input_length\": 10, \"output_length\": 1, \"hash_ids\": [1]}";    // 9 ok, no newline
  auto t = parse_trace(text);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->requests.size(), 2u);
  ASSERT_EQ(t->issues.size(), 7u);
  std::vector<std::uint64_t> lines;
  for (auto& i : t->issues) lines.push_back(i.line);
  EXPECT_EQ(lines, (std::vector<std::uint64_t>{2, 3, 4, 5, 6, 7, 8}));
  EXPECT_NE(t->issues[0].reason.find("input_length"), std::string::npos);
  EXPECT_NE(t->issues[2].reason.find("backwards"), std::string::npos);

  trace_load_options strict;
  strict.reject_bad_lines = true;
  auto r = parse_trace(text, strict);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("line 2"), std::string::npos);
}

// A timestamp past any real trace (2^64 - 1, 1e308) was taken, and the run reported every request done at 0 ms.
TEST(trace, an_implausible_timestamp_is_a_bad_line) {
  auto t = parse_trace(
      "{\"timestamp\": 1, \"input_length\": 10, \"output_length\": 5, \"hash_ids\": [1]}\n"
      "{\"timestamp\": 18446744073709551615, \"input_length\": 10, \"output_length\": 5, \"hash_ids\": [1]}\n"
      "{\"timestamp\": 1e308, \"input_length\": 10, \"output_length\": 5, \"hash_ids\": [1]}\n");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->requests.size(), 1u);
  ASSERT_EQ(t->issues.size(), 2u);
  EXPECT_NE(t->issues[0].reason.find("implausibly large"), std::string::npos) << t->issues[0].reason;
}

TEST(trace, limit_and_missing_file) {
  trace_load_options o;
  o.limit = 1;
  auto t = parse_trace(
      "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": []}\n"
      "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": []}\n",
      o);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->requests.size(), 1u);
  auto m = load_trace("/nonexistent/trace.jsonl");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.err().code, errc::io_error);
  // Truncated file: the last line is cut mid-object.
  auto dir = std::filesystem::temp_directory_path() / "yard_trace_test";
  std::filesystem::create_directories(dir);
  auto p = (dir / "trunc.jsonl").string();
  std::ofstream(p) << "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": []}\n{\"timestamp\": 1, \"inp";
  auto tr = load_trace(p);
  ASSERT_TRUE(tr.ok());
  EXPECT_EQ(tr->requests.size(), 1u);
  EXPECT_EQ(tr->issues.size(), 1u);
  std::filesystem::remove_all(dir);
}

TEST(trace, equal_hash_ids_give_equal_blocks_at_any_block_size) {
  trace_request a, b;
  a.input_length = 1024 + 100;
  a.hash_ids = {7, 8, 9};
  a.line = 1;
  b.input_length = 1024 + 300;
  b.hash_ids = {7, 8, 10};
  b.line = 2;
  auto ta = expand_tokens(a), tb = expand_tokens(b);
  ASSERT_EQ(ta.size(), 1124u);
  EXPECT_TRUE(std::equal(ta.begin(), ta.begin() + 1024, tb.begin()));
  EXPECT_NE(ta[1024], tb[1024]);
  for (std::uint32_t bs : {16u, 64u, 512u}) {
    auto ha = kv::hash_blocks(ta, bs), hb = kv::hash_blocks(tb, bs);
    std::size_t common = 0;
    while (common < std::min(ha.size(), hb.size()) && ha[common] == hb[common]) ++common;
    EXPECT_EQ(common, 1024u / bs) << "block size " << bs;
  }
  // Tokens past the listed hash ids never match another request.
  trace_request c = a, d = a;
  c.hash_ids = {};
  d.hash_ids = {};
  d.line = 99;
  EXPECT_NE(expand_tokens(c), expand_tokens(d));
}

TEST(synthetic, deterministic_and_shares_prefixes) {
  synthetic_options o;
  o.sessions = 20;
  o.turns_per_session = 3;
  auto a = generate_synthetic(o), b = generate_synthetic(o);
  ASSERT_EQ(a.requests.size(), 60u);
  for (std::size_t i = 0; i < a.requests.size(); ++i) {
    EXPECT_EQ(a.requests[i].arrival_ms, b.requests[i].arrival_ms);
    EXPECT_EQ(a.requests[i].hash_ids, b.requests[i].hash_ids);
    if (i) EXPECT_GE(a.requests[i].arrival_ms, a.requests[i - 1].arrival_ms);
    EXPECT_GT(a.requests[i].input_length, (a.requests[i].hash_ids.size() - 1) * trace_block_tokens);
    EXPECT_LE(a.requests[i].input_length, a.requests[i].hash_ids.size() * trace_block_tokens);
  }
  o.seed = 2;
  auto c = generate_synthetic(o);
  EXPECT_NE(a.requests[0].arrival_ms, c.requests[0].arrival_ms);
}

}  // namespace
}  // namespace yard::sim
