// messages/fuzz/codec_fuzz.cpp — libFuzzer target for the msgpack and JSON decoders.
//
// Feeds arbitrary bytes to every wire type's decoder in both formats, and
// re-encodes whatever decodes (a decoded value must encode and decode again to
// the same bytes). Built only with -DYARD_BUILD_FUZZERS=ON and clang; run with
// tools/fuzz.sh. Inputs that ever crashed go to messages/tests/fuzz_corpus/,
// which messages/tests/fuzz_regression_test.cpp replays in the normal suite.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "messages/fuzz/decode_all.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  yard::msg::fuzz::decode_all(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
