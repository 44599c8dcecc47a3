// backends/native/model.hpp — the Llama-family forward pass on CPU.
//
// Owns: one batched forward over several sequences' new tokens: embedding,
// RMSNorm, q/k/v projections (weight_kernels: OpenBLAS for f32 weights, own
// kernels for f16/bf16/int8; all batch tokens at once),
// RoPE, K/V writes into the paged kv_cache through each sequence's block
// table, attention read back through the block table (threaded over
// token x head), o projection, SwiGLU MLP, final norm and LM head for the
// positions that want logits.
// Must not touch: block allocation (the caller hands complete block tables),
// sampling, tokenization.
// Thread-safety: forward() is not reentrant (scratch buffers); one caller.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backends/native/kv_cache.hpp"
#include "backends/native/model_weights.hpp"
#include "backends/native/thread_pool.hpp"

namespace yard::backends::native {

// One sequence's slice of a batch: `n_tokens` new tokens at positions
// start_pos .. start_pos+n_tokens-1. Positions < start_pos must already be in
// the cache. block_table must cover every position < start_pos + n_tokens.
struct batch_item {
  const std::uint32_t* tokens = nullptr;
  int n_tokens = 0;
  int start_pos = 0;
  std::span<const std::uint32_t> block_table;  // block ids; block i holds positions [i*bs, (i+1)*bs)
  bool want_logits = true;  // logits for the last new token
};

class model {
 public:
  model(std::shared_ptr<const model_weights> w, int n_threads);

  const model_config& config() const { return w_->config; }
  const model_weights& weights() const { return *w_; }

  // Runs the batch; writes vocab_size logits per item with want_logits into
  // `logits` (in item order, items without logits skipped).
  void forward(const std::vector<batch_item>& batch, kv_cache& cache, std::vector<float>& logits);

 private:
  void attention(int layer, const std::vector<batch_item>& batch, const kv_cache& cache);

  std::shared_ptr<const model_weights> w_;
  thread_pool pool_;
  std::vector<float> inv_freq_;
  // scratch, resized per call: T = tokens in the batch
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_;  // [T][...]
  std::vector<int> pos_, item_of_;                            // [T]
  std::vector<float> cos_, sin_;                              // [T][head_dim/2]
};

// Shared math, also used by the dense reference in the tests.
void rms_norm(const float* x, const float* w, float* out, int n, float eps);
// Rotates pairs (i, i+half) of each head (HF rotate_half convention).
void apply_rope(float* v, int n_heads, int head_dim, const float* cos, const float* sin);

}  // namespace yard::backends::native
