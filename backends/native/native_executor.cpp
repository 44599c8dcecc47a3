#include "backends/native/native_executor.hpp"

#include <cstring>

#include <chrono>
#include <random>

#include "backends/native/sampler.hpp"

namespace yard::backends::native {

native_executor::native_executor(std::shared_ptr<const model_weights> w, kv_cache_shape shape, int n_threads)
    : model_(std::move(w), n_threads), cache_(shape) {}

execution_result native_executor::execute(const batch_plan& plan) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<batch_item> items;
  items.reserve(plan.seqs.size());
  for (const auto& e : plan.seqs) {
    batch_item it;
    it.tokens = e.tokens.data();
    it.n_tokens = static_cast<int>(e.tokens.size());
    it.start_pos = static_cast<int>(e.start_pos);
    it.block_table = e.block_table;
    it.want_logits = e.sample;
    items.push_back(it);
  }
  model_.forward(items, cache_, logits_);
  execution_result r;
  r.sampled.assign(plan.seqs.size(), 0);
  r.logprobs.assign(plan.seqs.size(), 0.0f);
  const int V = model_.config().vocab_size;
  std::size_t row = 0;
  for (std::size_t i = 0; i < plan.seqs.size(); ++i) {
    const auto& e = plan.seqs[i];
    if (!e.sample || e.tokens.empty()) continue;
    msg::sampling_params greedy;
    const auto& sp = e.sampling ? *e.sampling : greedy;
    std::seed_seq seq{static_cast<std::uint32_t>(sp.seed.value_or(0)), static_cast<std::uint32_t>(sp.seed.value_or(0) >> 32),
                      e.output_index};
    std::mt19937_64 rng(seq);
    auto s = sample(logits_.data() + row * V, V, sp, rng);
    ++row;
    r.sampled[i] = static_cast<token_id>(s.token);
    r.logprobs[i] = s.logprob;
  }
  r.model_time_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::size_t native_executor::kv_block_bytes() const {
  const auto& sh = cache_.shape();
  return static_cast<std::size_t>(sh.n_layers) * 2 * sh.block_size * sh.n_kv_heads * sh.head_dim * sizeof(float);
}

void native_executor::read_block(kv::block_id b, kv::block_hash, std::span<std::byte> out) const {
  const auto& sh = cache_.shape();
  const std::size_t part = static_cast<std::size_t>(sh.block_size) * sh.n_kv_heads * sh.head_dim * sizeof(float);
  if (out.size() < kv_block_bytes() || b >= static_cast<kv::block_id>(sh.n_blocks)) return;
  std::byte* p = out.data();
  for (int l = 0; l < sh.n_layers; ++l) {
    std::memcpy(p, cache_.k(l, b, 0), part);
    std::memcpy(p + part, cache_.v(l, b, 0), part);
    p += 2 * part;
  }
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
