// backends/native/native_executor.hpp — runs scheduler plans on the CPU model.
//
// Owns: the paged kv_cache tensors (block ids come from the scheduler's
// kv::block_pool), one batched forward per plan, and sampling of the entries
// that want a token. Sampling is deterministic per (seed, output index), so a
// sequence samples the same tokens whether it ran alone, batched, chunked or
// after preemption.
// Must not touch: scheduling and block allocation (backends/scheduler).
// Thread-safety: not thread-safe; the engine's owner calls execute().
#pragma once

#include <memory>

#include "backends/native/kv_cache.hpp"
#include "backends/native/model.hpp"
#include "backends/scheduler/batch_plan.hpp"

namespace yard::backends::native {

class native_executor final : public executor {
 public:
  native_executor(std::shared_ptr<const model_weights> w, kv_cache_shape shape, int n_threads);

  execution_result execute(const batch_plan& plan) override;
  // Block layout for transfers/tiers: for each layer, K then V, each
  // [block_size][n_kv_heads][head_dim] float32.
  std::size_t kv_block_bytes() const override;
  bool read_block(kv::block_id b, kv::block_hash hash, std::span<std::byte> out) const override;
  status write_block(kv::block_id b, kv::block_hash hash, std::span<const std::byte> in) override;

  model& get_model() { return model_; }
  kv_cache& cache() { return cache_; }

 private:
  model model_;
  kv_cache cache_;
  std::vector<float> logits_;
};

}  // namespace yard::backends::native
