#include "backends/native/native_executor.hpp"

#include <cstring>

#include <chrono>

#include "backends/native/plan_glue.hpp"

namespace yard::backends::native {

native_executor::native_executor(std::shared_ptr<const model_weights> w, kv_cache_shape shape, int n_threads)
    : model_(std::move(w), n_threads), cache_(shape) {}

execution_result native_executor::execute(const batch_plan& plan) {
  auto t0 = std::chrono::steady_clock::now();
  model_.forward(batch_items(plan), cache_, logits_);
  execution_result r;
  sample_plan(plan, logits_.data(), model_.config().vocab_size, r);
  r.model_time_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::size_t native_executor::kv_block_bytes() const {
  const auto& sh = cache_.shape();
  return static_cast<std::size_t>(sh.n_layers) * 2 * sh.block_size * sh.n_kv_heads * sh.head_dim * sizeof(float);
}

bool native_executor::read_block(kv::block_id b, kv::block_hash, std::span<std::byte> out) const {
  const auto& sh = cache_.shape();
  const std::size_t part = static_cast<std::size_t>(sh.block_size) * sh.n_kv_heads * sh.head_dim * sizeof(float);
  if (out.size() < kv_block_bytes() || b >= static_cast<kv::block_id>(sh.n_blocks)) return false;
  std::byte* p = out.data();
  for (int l = 0; l < sh.n_layers; ++l) {
    std::memcpy(p, cache_.k(l, b, 0), part);
    std::memcpy(p + part, cache_.v(l, b, 0), part);
    p += 2 * part;
  }
  return true;
}

status native_executor::write_block(kv::block_id b, kv::block_hash, std::span<const std::byte> in) {
  const auto& sh = cache_.shape();
  const std::size_t part = static_cast<std::size_t>(sh.block_size) * sh.n_kv_heads * sh.head_dim * sizeof(float);
  if (in.size() != kv_block_bytes()) return make_error(errc::bad_request, "KV block of the wrong size");
  if (b >= static_cast<kv::block_id>(sh.n_blocks)) return make_error(errc::bad_request, "KV block id out of range");
  const std::byte* p = in.data();
  for (int l = 0; l < sh.n_layers; ++l) {
    std::memcpy(cache_.k(l, b, 0), p, part);
    std::memcpy(cache_.v(l, b, 0), p + part, part);
    p += 2 * part;
  }
  return status::success();
}

}  // namespace yard::backends::native
