// common/tests/prometheus_test.cpp — the text exposition: families merged, escaping, histograms, labelled counters.
#include "common/prometheus.hpp"

#include <gtest/gtest.h>

namespace yard::prom {
namespace {

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

TEST(prometheus, samples_of_one_family_are_grouped_under_one_help_and_type) {
  exposition out;
  // Two workers rendering in turn, interleaving families (as a process with several workers does).
  out.gauge("yard_a", "A.", {{"worker", "w0"}}, 1);
  out.counter("yard_b_total", "B.", {{"worker", "w0"}}, 2);
  out.gauge("yard_a", "A.", {{"worker", "w1"}}, 3);
  out.counter("yard_b_total", "B.", {{"worker", "w1"}}, 4);
  auto text = out.text();
  EXPECT_EQ(count_of(text, "# TYPE yard_a gauge\n"), 1u);
  EXPECT_EQ(count_of(text, "# TYPE yard_b_total counter\n"), 1u);
  EXPECT_NE(text.find("# TYPE yard_a gauge\nyard_a{worker=\"w0\"} 1\nyard_a{worker=\"w1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("yard_b_total{worker=\"w0\"} 2\nyard_b_total{worker=\"w1\"} 4\n"), std::string::npos) << text;
}

TEST(prometheus, label_values_and_help_are_escaped) {
  EXPECT_EQ(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  exposition out;
  out.gauge("yard_x", "line one\nline two \\ end", {{"model", "m\"1"}}, 0.5);
  auto text = out.text();
  EXPECT_NE(text.find("# HELP yard_x line one\\nline two \\\\ end\n"), std::string::npos) << text;
  EXPECT_NE(text.find("yard_x{model=\"m\\\"1\"} 0.5\n"), std::string::npos) << text;
}

TEST(prometheus, histogram_buckets_are_cumulative_with_sum_and_count) {
  histogram h{{0.1, 1}};
  h.observe(0.05);
  h.observe(0.1);  // on the bound: counted in le="0.1"
  h.observe(0.5);
  h.observe(7);
  exposition out;
  h.render(out, "yard_t_seconds", "T.", {{"w", "a"}});
  auto text = out.text();
  EXPECT_NE(text.find("# TYPE yard_t_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("yard_t_seconds_bucket{w=\"a\",le=\"0.1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("yard_t_seconds_bucket{w=\"a\",le=\"1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("yard_t_seconds_bucket{w=\"a\",le=\"+Inf\"} 4\n"), std::string::npos) << text;
  auto sum_at = text.find("yard_t_seconds_sum{w=\"a\"} ");
  ASSERT_NE(sum_at, std::string::npos) << text;
  EXPECT_NEAR(std::stod(text.substr(sum_at + 26)), 7.65, 1e-9);
  EXPECT_NE(text.find("yard_t_seconds_count{w=\"a\"} 4\n"), std::string::npos) << text;
  EXPECT_EQ(h.count(), 4u);
}

TEST(prometheus, labelled_counter_writes_each_key_and_the_always_present_ones) {
  labelled_counter c{{"pool", "worker"}};
  c.add({"decode", "w1"});
  c.add({"decode", "w1"}, 2);
  c.add({"prefill", "p0"});
  EXPECT_EQ(c.get({"decode", "w1"}), 3);
  EXPECT_EQ(c.get({"decode", "nobody"}), 0);
  labelled_counter causes{{"cause"}};
  causes.add({"timeout"});
  exposition out;
  c.render(out, "yard_d_total", "D.", {{"router", "r0"}});
  causes.render(out, "yard_f_total", "F.", {}, {{"timeout"}, {"pull_failed"}});
  auto text = out.text();
  EXPECT_NE(text.find("yard_d_total{router=\"r0\",pool=\"decode\",worker=\"w1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("yard_d_total{router=\"r0\",pool=\"prefill\",worker=\"p0\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("yard_f_total{cause=\"timeout\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("yard_f_total{cause=\"pull_failed\"} 0\n"), std::string::npos) << text;
}

TEST(prometheus, special_values_use_the_format_spelling) {
  exposition out;
  out.gauge("yard_inf", "I.", {}, 1.0 / 0.0);
  out.gauge("yard_big", "B.", {}, 123456789012.0);
  auto text = out.text();
  EXPECT_NE(text.find("yard_inf +Inf\n"), std::string::npos) << text;
  EXPECT_NE(text.find("yard_big 123456789012\n"), std::string::npos) << text;
}

TEST(prometheus, count_buckets_start_at_zero_and_double) {
  auto b = count_buckets(8);
  EXPECT_EQ(b, (std::vector<double>{0, 1, 2, 4, 8}));
}

}  // namespace
}  // namespace yard::prom
