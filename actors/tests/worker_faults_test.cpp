// actors/tests/worker_faults_test.cpp — the prefill fault seam: none by default, each named fault, unknown names refused.
#include "actors/worker_faults.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace yard::actors {
namespace {

TEST(prefill_faults, no_name_means_no_fault_object_at_all) {
  auto f = make_prefill_faults("");
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, nullptr);  // production workers carry a null pointer: the request path runs no fault code
}

TEST(prefill_faults, each_named_fault_turns_on_only_its_hook) {
  auto drop = make_prefill_faults("drop-release");
  ASSERT_TRUE(drop && *drop);
  const std::vector<std::byte> clean(64, std::byte{7});
  auto block = clean;
  EXPECT_TRUE((*drop)->drop_release());
  EXPECT_FALSE((*drop)->tamper_staged(block));
  EXPECT_EQ(block, clean);
  auto corrupt = make_prefill_faults("corrupt-block");
  ASSERT_TRUE(corrupt && *corrupt);
  EXPECT_TRUE((*corrupt)->tamper_staged(block));
  EXPECT_NE(block, clean);  // one byte flipped
  EXPECT_EQ(block[0], clean[0]);
  EXPECT_FALSE((*corrupt)->drop_release());
  auto exit_after = make_prefill_faults("exit-after-reply");
  ASSERT_TRUE(exit_after && *exit_after);
  EXPECT_FALSE((*exit_after)->drop_release());
  block = clean;
  EXPECT_FALSE((*exit_after)->tamper_staged(block));
  EXPECT_EQ(block, clean);
  EXPECT_EXIT((*exit_after)->after_reply(), ::testing::ExitedWithCode(3), "");
}

TEST(prefill_faults, an_unknown_name_is_a_bad_request_naming_the_choices) {
  auto f = make_prefill_faults("drop-everything");
  ASSERT_FALSE(f);
  EXPECT_EQ(f.err().code, errc::bad_request);
  EXPECT_NE(f.err().message.find("drop-everything"), std::string::npos);
  EXPECT_NE(f.err().message.find("corrupt-block"), std::string::npos);
}

}  // namespace
}  // namespace yard::actors
