// backends/native/kv_cache.hpp — paged KV tensor storage indexed by block id.
//
// Owns: the K and V tensors of every block. Which block belongs to which
// sequence (block tables, refcounts, prefix cache) is kv::block_pool's and the
// engine's business; this class only maps (layer, block, slot) to memory.
// Must not touch: allocation policy.
// Thread-safety: distinct (layer, block, slot) cells may be written from
// different threads; no internal locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace yard::backends::native {

struct kv_cache_shape {
  int n_layers = 0;
  int n_blocks = 0;
  int block_size = 16;  // tokens per block (default 16)
  int n_kv_heads = 0;
  int head_dim = 0;
};

class kv_cache {
 public:
  explicit kv_cache(kv_cache_shape s)
      : s_(s),
        row_(static_cast<std::size_t>(s.n_kv_heads) * s.head_dim),
        n_(static_cast<std::size_t>(s.n_layers) * s.n_blocks * s.block_size * row_),
        k_(static_cast<float*>(std::calloc(n_, sizeof(float)))),
        v_(static_cast<float*>(std::calloc(n_, sizeof(float)))) {
    if (n_ && (!k_ || !v_)) throw std::bad_alloc();
  }

  const kv_cache_shape& shape() const { return s_; }
  std::size_t bytes() const { return 2 * n_ * sizeof(float); }

  // Layout: [n_layers][n_blocks][block_size][n_kv_heads][head_dim].
  float* k(int layer, std::uint32_t block, int slot) { return k_.get() + offset(layer, block, slot); }
  float* v(int layer, std::uint32_t block, int slot) { return v_.get() + offset(layer, block, slot); }
  const float* k(int layer, std::uint32_t block, int slot) const { return k_.get() + offset(layer, block, slot); }
  const float* v(int layer, std::uint32_t block, int slot) const { return v_.get() + offset(layer, block, slot); }

 private:
  std::size_t offset(int layer, std::uint32_t block, int slot) const {
    return ((static_cast<std::size_t>(layer) * s_.n_blocks + block) * s_.block_size + slot) * row_;
  }
  kv_cache_shape s_;
  std::size_t row_;
  struct free_deleter {
    void operator()(float* p) const { std::free(p); }
  };
  std::size_t n_;
  // calloc: untouched blocks stay unbacked zero pages, so a large pool costs nothing until used.
  std::unique_ptr<float, free_deleter> k_, v_;
};

}  // namespace yard::backends::native
