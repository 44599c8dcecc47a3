// JSON log lines stay valid JSON whatever the message holds.
#include "common/log.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

TEST(log, json_lines_escape_the_message_and_name_the_component) {
  char path[] = "/tmp/yard-log-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  int saved = dup(2);
  dup2(fd, 2);
  yard::configure_logging({"info", true});
  auto l = yard::component_logger("log-test");
  l->info("quote \" backslash \\ newline \n tab \t done");
  l->flush();
  dup2(saved, 2);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  std::remove(path);
  auto j = nlohmann::json::parse(line, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << line;
  EXPECT_EQ(j["component"], "log-test");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["msg"], "quote \" backslash \\ newline \n tab \t done");
}
