// backends/mock/mock_engine.hpp — an engine without a model, for tests and scale.
//
// Owns: mock sequences and their deterministic output. Tokenization is
// byte-level (token = byte). Output token i of a request depends only on the
// prompt tokens, the sampling seed and i, so a migrated request (prompt plus
// resume_tokens) continues with exactly the tokens an undisturbed run gives.
// Every step advances every running sequence by one token and reports
// `per_token_delay_ms / speedup` of model time.
// Must not touch: clocks or sleeping (the caller paces steps).
// Thread-safety: not thread-safe (see engine).
#pragma once

#include <map>
#include <string>

#include "backends/engine.hpp"

namespace yard::backends {

struct mock_engine_options {
  double per_token_delay_ms = 10.0;  // model time per decode step (default 10 ms)
  double speedup = 1.0;              // divides every model time (default 1)
  std::uint32_t max_context = 1u << 20;  // longest prompt+output accepted (default 1M tokens)
  std::uint32_t block_size = 16;     // KV block size in tokens (default 16)
};

class mock_engine final : public engine {
 public:
  explicit mock_engine(mock_engine_options opts = {});

  std::string name() const override { return "mock"; }
  result<std::vector<token_id>> tokenize(std::string_view text) const override;
  std::string detokenize(const std::vector<token_id>& tokens) const override;
  status add_request(engine_request req) override;
  void cancel(const std::string& request_id) override;
  bool has_work() const override { return !seqs_.empty(); }
  step_result step() override;
  msg::load_report load() const override;
  std::uint32_t block_size() const override { return opts_.block_size; }

  // The deterministic token at output position `i` for a prompt (exposed so
  // tests can compute the expected stream).
  static token_id expected_token(const std::vector<token_id>& prompt, std::uint64_t seed, std::size_t i);

 private:
  struct sequence {
    engine_request req;
    std::size_t produced = 0;  // output tokens so far, including resume_tokens
    bool prefilled = false;
    bool cancelled = false;
  };
  mock_engine_options opts_;
  std::map<std::string, sequence> seqs_;  // ordered: deterministic step output order
};

}  // namespace yard::backends
