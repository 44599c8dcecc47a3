// Replays every saved fuzzer input (messages/tests/fuzz_corpus/) through all
// decoders: inputs that once crashed, and seeds of each message kind.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "messages/fuzz/decode_all.hpp"

namespace fs = std::filesystem;

TEST(fuzz_regression, every_saved_input_decodes_or_fails_cleanly) {
  const char* src = std::getenv("YARD_SOURCE_DIR");
  fs::path dir = fs::path(src ? src : ".") / "messages/tests/fuzz_corpus";
  ASSERT_TRUE(fs::exists(dir)) << dir;
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    yard::msg::fuzz::decode_all(ss.str());  // aborts (fails the test) on a broken round trip
    ++n;
  }
  EXPECT_GT(n, 0);
}
