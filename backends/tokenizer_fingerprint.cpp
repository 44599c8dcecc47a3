#include "backends/tokenizer_fingerprint.hpp"

#include <xxhash.h>

namespace yard::backends {

std::uint64_t tokenizer_fingerprint(const prompt_tokenizer& e) {
  static constexpr std::string_view probe =
      "Switchyard tokenizer probe: Hello, world! It's 12345 naïve café 東京 ℓ ۱۲۳ कि 🙂\n\t  x <|eot_id|> [INST] </s>";
  auto ids = e.tokenize(probe);
  if (!ids || ids->empty()) return 0;
  auto h = XXH3_64bits(ids->data(), ids->size() * sizeof((*ids)[0]));
  return h == 0 ? 1 : h;
}

}  // namespace yard::backends
