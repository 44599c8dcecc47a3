// backends/native/cuda/cuda_model.cu — kernels and the device forward pass (see cuda_model.hpp).
//
// Owns: the CUDA kernels (embedding gather, RMSNorm, bias add, RoPE, paged
// K/V write, paged attention, SwiGLU), the cuBLAS projections, device weights,
// the device K/V cache and scratch. Numerics follow model.cpp: RoPE angles in
// double, softmax with max subtraction, sgemm in plain FP32 (no TF32). f16 and
// bf16 weight matrices stay 2 bytes on the device: a decode step (up to
// k_gemv_rows input rows) reads them with a warp-per-row kernel accumulating in
// f32, a prefill widens them a tile at a time into f32 scratch for sgemm (as the
// CPU does). The embedding stays in its width too (a tied head shares it);
// int8 matrices are widened to f32 at upload.
// Must not touch: sampling, scheduling, logging (errors go back as strings).
// Thread-safety: a cuda_model is used by one thread at a time.
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "backends/native/cuda/cuda_model.hpp"

namespace yard::backends::native {

namespace {

constexpr int k_threads = 256;   // threads per block for row kernels
constexpr int k_att_threads = 128;
constexpr int k_att_tile = 256;  // positions per attention tile (shared-memory scores)

std::string cuda_err(const char* what, cudaError_t rc) {
  return std::string(what) + ": " + cudaGetErrorName(rc) + " (" + cudaGetErrorString(rc) + ")";
}
std::string cublas_err(const char* what, cublasStatus_t rc) {
  return std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(rc));
}

// A failed call also leaves its error in the thread's last-error slot; it is cleared here so a later, unrelated
// cudaGetLastError() (the launch checks in forward) does not report it again as its own.
#define YARD_CUDA_TRY(what, expr)      \
  do {                                 \
    cudaError_t rc_ = (expr);          \
    if (rc_ != cudaSuccess) {          \
      cudaGetLastError();              \
      return cuda_err(what, rc_);      \
    }                                  \
  } while (0)

// Sum or max over the block; every thread gets the result. `red` holds 32 floats.
__device__ float block_reduce(float v, bool is_max, float* red) {
  for (int o = 16; o > 0; o >>= 1) {
    float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, w) : v + w;
  }
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = (blockDim.x + 31) >> 5;
  __syncthreads();  // red may still be read by a previous reduction
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float r = is_max ? -INFINITY : 0.0f;
  for (int i = 0; i < n_warps; ++i) r = is_max ? fmaxf(r, red[i]) : r + red[i];
  return r;
}

// x[t] = embed[min(tok[t], V-1)]
__global__ void embed_kernel(const float* embed, const std::uint32_t* tok, float* x, int H, int V) {
  int t = blockIdx.x;
  std::uint32_t id = min(tok[t], static_cast<std::uint32_t>(V - 1));
  const float* src = embed + static_cast<std::size_t>(id) * H;
  float* dst = x + static_cast<std::size_t>(t) * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] = src[i];
}

// out[r] = x[rows ? rows[r] : r] * rsqrt(mean(x^2) + eps) * w
__global__ void rms_norm_kernel(const float* x, const int* rows, const float* w, float* out, int n, float eps) {
  __shared__ float red[32];
  int r = blockIdx.x;
  const float* xr = x + static_cast<std::size_t>(rows ? rows[r] : r) * n;
  float ss = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_reduce(ss, false, red);
  float scale = 1.0f / sqrtf(ss / n + eps);
  float* o = out + static_cast<std::size_t>(r) * n;
  for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * scale * w[i];
}

// y[t][i] += b[i]
__global__ void bias_kernel(float* y, const float* b, int n) {
  float* row = y + static_cast<std::size_t>(blockIdx.x) * n;
  for (int i = threadIdx.x; i < n; i += blockDim.x) row[i] += b[i];
}

// Rotates pairs (i, i+half) of every q and k head of token t (HF rotate_half).
__global__ void rope_kernel(float* q, float* k, const int* pos, const float* inv_freq, int nh, int nkv, int hd) {
  int t = blockIdx.x, half = hd / 2;
  float* qt = q + static_cast<std::size_t>(t) * nh * hd;
  float* kt = k + static_cast<std::size_t>(t) * nkv * hd;
  for (int j = threadIdx.x; j < (nh + nkv) * half; j += blockDim.x) {
    int h = j / half, i = j % half;
    double ang = static_cast<double>(pos[t]) * inv_freq[i];
    float c = static_cast<float>(cos(ang)), s = static_cast<float>(sin(ang));
    float* p = h < nh ? qt + h * hd : kt + (h - nh) * hd;
    float a = p[i], b = p[i + half];
    p[i] = a * c - b * s;
    p[i + half] = b * c + a * s;
  }
}

// Writes token t's K and V rows into the cache cell `cell[t]` (= block * block_size + slot) of `layer`.
__global__ void kv_write_kernel(const float* k, const float* v, const long long* cell, float* kc, float* vc,
                                long long layer_cells, int layer, int row) {
  int t = blockIdx.x;
  std::size_t dst = (static_cast<std::size_t>(layer) * layer_cells + cell[t]) * row;
  std::size_t src = static_cast<std::size_t>(t) * row;
  for (int i = threadIdx.x; i < row; i += blockDim.x) {
    kc[dst + i] = k[src + i];
    vc[dst + i] = v[src + i];
  }
}

// One thread block per (token, head); for decode that is one per (sequence, head).
// Causal context 0..pos[t], read through the sequence's block table in tiles of
// k_att_tile positions with an online softmax (running max m, sum l), so any
// context length fits in fixed shared memory. GQA: head h reads kv head h / group.
__global__ void paged_attention_kernel(const float* q, const float* kc, const float* vc, float* out, const int* pos,
                                       const int* item_of, const int* table_off, const std::uint32_t* tables, int nh,
                                       int nkv, int hd, int bs, long long layer_cells, int layer, float scale) {
  extern __shared__ float sm[];
  float* sq = sm;            // [hd]
  float* acc = sq + hd;      // [hd]
  float* sc = acc + hd;      // [k_att_tile]
  __shared__ float red[32];
  __shared__ float s_m, s_l, s_rescale;
  const int t = blockIdx.x, h = blockIdx.y, kvh = h / (nh / nkv), tid = threadIdx.x;
  const int row = nkv * hd;
  const float* qp = q + (static_cast<std::size_t>(t) * nh + h) * hd;
  for (int d = tid; d < hd; d += blockDim.x) {
    sq[d] = qp[d];
    acc[d] = 0.0f;
  }
  if (tid == 0) {
    s_m = -INFINITY;
    s_l = 0.0f;
  }
  __syncthreads();
  const int n_ctx = pos[t] + 1;
  const std::uint32_t* tab = tables + table_off[item_of[t]];
  const std::size_t layer_base = static_cast<std::size_t>(layer) * layer_cells;
  for (int base = 0; base < n_ctx; base += k_att_tile) {
    const int n = min(k_att_tile, n_ctx - base);
    float local_max = -INFINITY;
    for (int i = tid; i < n; i += blockDim.x) {
      int p = base + i;
      const float* kp = kc + (layer_base + static_cast<std::size_t>(tab[p / bs]) * bs + p % bs) * row + kvh * hd;
      float s = 0.0f;
      for (int d = 0; d < hd; ++d) s += sq[d] * kp[d];
      s *= scale;
      sc[i] = s;
      local_max = fmaxf(local_max, s);
    }
    float tile_max = block_reduce(local_max, true, red);
    if (tid == 0) {
      float m_new = fmaxf(s_m, tile_max);
      s_rescale = (s_m == -INFINITY) ? 0.0f : expf(s_m - m_new);
      s_m = m_new;
    }
    __syncthreads();
    float local_sum = 0.0f;
    for (int i = tid; i < n; i += blockDim.x) {
      float e = expf(sc[i] - s_m);
      sc[i] = e;
      local_sum += e;
    }
    float tile_sum = block_reduce(local_sum, false, red);  // also orders the sc writes before the reads below
    if (tid == 0) s_l = s_l * s_rescale + tile_sum;
    for (int d = tid; d < hd; d += blockDim.x) {
      float a = acc[d] * s_rescale;
      for (int i = 0; i < n; ++i) {
        int p = base + i;
        a += sc[i] * vc[(layer_base + static_cast<std::size_t>(tab[p / bs]) * bs + p % bs) * row + kvh * hd + d];
      }
      acc[d] = a;
    }
    __syncthreads();
  }
  float inv = 1.0f / s_l;
  float* o = out + (static_cast<std::size_t>(t) * nh + h) * hd;
  for (int d = tid; d < hd; d += blockDim.x) o[d] = acc[d] * inv;
}

// gate = silu(gate) * up
__global__ void swiglu_kernel(float* gate, const float* up, std::size_t n) {
  std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) {
    float g = gate[i];
    gate[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

// A device buffer that only grows.
template <class T>
struct dev_buf {
  T* p = nullptr;
  std::size_t cap = 0;
  std::string reserve(std::size_t n) {
    if (n <= cap) return {};
    if (p) cudaFree(p);
    p = nullptr;
    cap = 0;
    YARD_CUDA_TRY("cudaMalloc(scratch)", cudaMalloc(&p, std::max<std::size_t>(n, 1) * sizeof(T)));
    cap = n;
    return {};
  }
  ~dev_buf() {
    if (p) cudaFree(p);
  }
};

// A kept-precision matrix widened to f32 on the host (self-contained: this library links before yard_backends).
std::vector<float> widen_on_host(const weight_matrix& m) {
  std::vector<float> out(m.numel());
  for (std::size_t i = 0; i < out.size(); ++i) {
    switch (m.type) {
      case wdtype::f32: out[i] = static_cast<const float*>(m.data)[i]; break;
      case wdtype::f16: {
        __half_raw r;
        r.x = static_cast<const std::uint16_t*>(m.data)[i];
        out[i] = __half2float(__half(r));
        break;
      }
      case wdtype::bf16: {
        std::uint32_t bits = static_cast<std::uint32_t>(static_cast<const std::uint16_t*>(m.data)[i]) << 16;
        std::memcpy(&out[i], &bits, 4);
        break;
      }
      case wdtype::i8:
        out[i] = static_cast<float>(static_cast<const std::int8_t*>(m.data)[i]) * m.scales[i / static_cast<std::size_t>(m.cols)];
        break;
    }
  }
  return out;
}

// A weight matrix on the device in the precision it is kept in: f32, or f16/bf16 (2 bytes an element).
struct dev_matrix {
  const void* p = nullptr;
  wdtype type = wdtype::f32;
};

struct dev_layer {
  const float *attn_norm = nullptr, *bq = nullptr, *bk = nullptr, *bv = nullptr, *ffn_norm = nullptr;
  dev_matrix wq, wk, wv, wo, w_gate, w_up, w_down;
};

// Input rows up to which a half-precision product runs as a gemv (decode); more are a widened sgemm.
constexpr int k_gemv_rows = 8;
// f32 elements of the scratch a half-precision matrix is widened into for sgemm, a tile of rows at a time.
constexpr std::size_t k_widen_tile = std::size_t{1} << 24;  // 64 MiB

template <bool Bf16>
__device__ __forceinline__ float half_to_f32(std::uint16_t b) {
  if constexpr (Bf16) return __uint_as_float(static_cast<unsigned>(b) << 16);
  else return __half2float(__ushort_as_half(b));
}

// out[t][row] (+)= sum_i W[row][i] * in[t][i] for t < T <= k_gemv_rows: one warp per row, the weights read
// once in their own width (16 bytes per lane per pass when rows are 16-byte aligned), f32 accumulation.
template <bool Bf16>
__global__ void gemv_half_kernel(const std::uint16_t* __restrict__ W, const float* __restrict__ in,
                                 float* __restrict__ out, int n, int k, int T, float beta) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (row >= n) return;  // the whole warp: rows are per warp
  const std::uint16_t* w = W + static_cast<std::size_t>(row) * k;
  float acc[k_gemv_rows];
#pragma unroll
  for (int t = 0; t < k_gemv_rows; ++t) acc[t] = 0.0f;
  int tail = 0;
  if ((k & 7) == 0) {
    for (int i = lane * 8; i < k; i += 32 * 8) {
      const uint4 raw = *reinterpret_cast<const uint4*>(w + i);
      const std::uint16_t* h = reinterpret_cast<const std::uint16_t*>(&raw);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float wv = half_to_f32<Bf16>(h[j]);
#pragma unroll
        for (int t = 0; t < k_gemv_rows; ++t)
          if (t < T) acc[t] += wv * in[static_cast<std::size_t>(t) * k + i + j];
      }
    }
    tail = k;
  }
  for (int i = tail + lane; i < k; i += 32) {
    const float wv = half_to_f32<Bf16>(w[i]);
#pragma unroll
    for (int t = 0; t < k_gemv_rows; ++t)
      if (t < T) acc[t] += wv * in[static_cast<std::size_t>(t) * k + i];
  }
#pragma unroll
  for (int t = 0; t < k_gemv_rows; ++t) {
    if (t < T) {  // T is the same for the whole warp: the shuffles below are uniform
      float v = acc[t];
      for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
      if (lane == 0) {
        float& d = out[static_cast<std::size_t>(t) * n + row];
        d = beta == 0.0f ? v : v + beta * d;
      }
    }
  }
}

// x[t] = embed[min(tok[t], V-1)], widened from a 2-byte table.
template <bool Bf16>
__global__ void embed_half_kernel(const std::uint16_t* embed, const std::uint32_t* tok, float* x, int H, int V) {
  const int t = blockIdx.x;
  const std::uint32_t id = min(tok[t], static_cast<std::uint32_t>(V - 1));
  const std::uint16_t* src = embed + static_cast<std::size_t>(id) * H;
  float* dst = x + static_cast<std::size_t>(t) * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] = half_to_f32<Bf16>(src[i]);
}

template <bool Bf16>
__global__ void widen_kernel(const std::uint16_t* __restrict__ w, float* __restrict__ out, std::size_t n) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = half_to_f32<Bf16>(w[i]);
}

}  // namespace

struct cuda_model::impl {
  model_config cfg;
  kv_cache_shape shape;
  cublasHandle_t blas = nullptr;
  cudaStream_t stream = nullptr;
  std::vector<void*> allocs;                 // weights + KV, freed in the destructor
  // (host data, device width) -> device copy: a tied head uploads once per width.
  std::map<std::pair<const void*, wdtype>, const void*> uploaded;
  std::size_t weight_bytes = 0, kv_bytes = 0;
  const float *final_norm = nullptr, *inv_freq = nullptr;
  dev_matrix embed, lm_head;
  std::vector<dev_layer> layers;
  float *kc = nullptr, *vc = nullptr;
  // scratch
  dev_buf<float> x, xn, q, k, v, att, gate, up, logits, wide;
  dev_buf<std::uint32_t> tok, tables;
  dev_buf<int> pos, item_of, table_off, rows;
  dev_buf<long long> cell;
  // host staging (kept alive across the async copies of one forward)
  std::vector<std::uint32_t> h_tok, h_tables;
  std::vector<int> h_pos, h_item_of, h_table_off, h_rows;
  std::vector<long long> h_cell;

  ~impl() {
    if (stream) cudaStreamSynchronize(stream);
    for (void* p : allocs) cudaFree(p);
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }

  // Copies `bytes` of `host` to the device once per (key, width); `key` names the host data (a widened
  // copy is keyed by what it was widened from).
  std::string upload(const void* host, std::size_t bytes, const void* key, wdtype width, const void** dev) {
    if (!host) {
      *dev = nullptr;
      return {};
    }
    if (auto it = uploaded.find({key, width}); it != uploaded.end()) {
      *dev = it->second;
      return {};
    }
    void* p = nullptr;
    YARD_CUDA_TRY("cudaMalloc(weights)", cudaMalloc(&p, bytes));
    allocs.push_back(p);
    YARD_CUDA_TRY("cudaMemcpy(weights)", cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice));
    weight_bytes += bytes;
    *dev = p;
    uploaded[{key, width}] = p;
    return {};
  }

  template <class T>
  std::string to_device(dev_buf<T>& d, const std::vector<T>& h) {
    if (auto e = d.reserve(h.size()); !e.empty()) return e;
    if (!h.empty())
      YARD_CUDA_TRY("cudaMemcpyAsync(batch)", cudaMemcpyAsync(d.p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
    return {};
  }

  // out[T][n] (+)= in[T][k] x W[n][k]^T, row-major, as column-major C(n x T) = op_T(W) * in.
  std::string sgemm_wt(const float* in, int T, int kdim, const float* W, int n, float* out, int ldc, float beta) {
    const float alpha = 1.0f;
    cublasStatus_t rc = cublasSgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, n, T, kdim, &alpha, W, kdim, in, kdim, &beta, out, ldc);
    if (rc != CUBLAS_STATUS_SUCCESS) return cublas_err("cublasSgemm", rc);
    return {};
  }

  // The same with W in its own width: f32 by sgemm; f16/bf16 by the gemv kernel for a decode's few rows,
  // else widened a tile of rows at a time into f32 scratch and sgemm'd into those rows of out.
  std::string gemm_wt(const float* in, int T, int kdim, const dev_matrix& W, int n, float* out, float beta) {
    if (W.type == wdtype::f32) return sgemm_wt(in, T, kdim, static_cast<const float*>(W.p), n, out, n, beta);
    if (W.type != wdtype::f16 && W.type != wdtype::bf16) return "cuda_model: a weight matrix of an unsupported width";
    const bool bf16 = W.type == wdtype::bf16;
    const auto* w = static_cast<const std::uint16_t*>(W.p);
    if (T <= k_gemv_rows) {
      const int rows_per_block = k_threads / 32;
      const unsigned grid = static_cast<unsigned>((n + rows_per_block - 1) / rows_per_block);
      if (bf16) gemv_half_kernel<true><<<grid, k_threads, 0, stream>>>(w, in, out, n, kdim, T, beta);
      else gemv_half_kernel<false><<<grid, k_threads, 0, stream>>>(w, in, out, n, kdim, T, beta);
      return {};
    }
    const int tile = static_cast<int>(std::clamp<std::size_t>(k_widen_tile / static_cast<std::size_t>(kdim), 1, n));
    if (auto e = wide.reserve(static_cast<std::size_t>(tile) * kdim); !e.empty()) return e;
    for (int r0 = 0; r0 < n; r0 += tile) {
      const int m = std::min(tile, n - r0);
      const std::size_t count = static_cast<std::size_t>(m) * kdim;
      const unsigned grid = static_cast<unsigned>((count + k_threads - 1) / k_threads);
      const std::uint16_t* src = w + static_cast<std::size_t>(r0) * kdim;
      if (bf16) widen_kernel<true><<<grid, k_threads, 0, stream>>>(src, wide.p, count);
      else widen_kernel<false><<<grid, k_threads, 0, stream>>>(src, wide.p, count);
      if (auto e = sgemm_wt(in, T, kdim, wide.p, m, out + r0, n, beta); !e.empty()) return e;
    }
    return {};
  }
};

cuda_model::cuda_model() : p_(std::make_unique<impl>()) {}
cuda_model::~cuda_model() = default;

std::size_t cuda_model::weight_bytes() const { return p_->weight_bytes; }
std::size_t cuda_model::kv_bytes() const { return p_->kv_bytes; }

std::unique_ptr<cuda_model> cuda_model::create(const model_weights& w, const kv_cache_shape& shape,
                                               const std::vector<float>& inv_freq, std::string& err) {
  const auto& c = w.config;
  if (c.num_key_value_heads <= 0 || c.num_attention_heads % c.num_key_value_heads != 0 || c.head_dim <= 0 ||
      c.head_dim % 2 != 0 || shape.block_size <= 0 || shape.n_blocks <= 0 || shape.n_kv_heads != c.num_key_value_heads ||
      shape.head_dim != c.head_dim || shape.n_layers != c.num_hidden_layers ||
      static_cast<int>(inv_freq.size()) != c.head_dim / 2) {
    err = "cuda_model: model config and KV cache shape do not match";
    return nullptr;
  }
  std::unique_ptr<cuda_model> m(new cuda_model());
  auto& p = *m->p_;
  p.cfg = c;
  p.shape = shape;
  auto fail = [&](std::string e) {
    cudaGetLastError();  // a retry (a smaller cache) on this thread must not see this error as its own
    err = std::move(e);
    return nullptr;
  };
  if (cudaError_t rc = cudaSetDevice(0); rc != cudaSuccess) return fail(cuda_err("cudaSetDevice(0)", rc));
  if (cudaError_t rc = cudaStreamCreateWithFlags(&p.stream, cudaStreamNonBlocking); rc != cudaSuccess)
    return fail(cuda_err("cudaStreamCreate", rc));
  if (cublasStatus_t rc = cublasCreate(&p.blas); rc != CUBLAS_STATUS_SUCCESS) {
    p.blas = nullptr;
    return fail(cublas_err("cublasCreate", rc));
  }
  cublasSetStream(p.blas, p.stream);
  cublasSetMathMode(p.blas, CUBLAS_PEDANTIC_MATH);  // plain FP32: no TF32, matches the CPU within 1e-3

  const std::size_t H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), I = c.intermediate_size, V = c.vocab_size;
  std::string e;
  auto up = [&](const float* h, std::size_t n, const float** d) {
    const void* dv = nullptr;
    if (e.empty()) e = p.upload(h, n * sizeof(float), h, wdtype::f32, &dv);
    *d = static_cast<const float*>(dv);
  };
  auto shape_ok = [&](const weight_matrix& m, std::size_t n) {
    if (e.empty() && m.numel() != n) e = "cuda_model: weight matrix shape does not match the config";
    return e.empty();
  };
  // As f32: in place when f32, else widened on the host (keyed by the matrix's own data).
  auto up_f32 = [&](const weight_matrix& m, std::size_t n, const float** d) {
    if (!shape_ok(m, n)) return;
    if (m.type == wdtype::f32) return up(m.f32(), n, d);
    const void* dv = nullptr;
    if (auto it = p.uploaded.find({m.data, wdtype::f32}); it != p.uploaded.end()) {
      dv = it->second;
    } else {
      auto wide = widen_on_host(m);
      e = p.upload(wide.data(), n * sizeof(float), m.data, wdtype::f32, &dv);
    }
    *d = static_cast<const float*>(dv);
  };
  // A product's matrix: f16/bf16 kept 2 bytes; f32 as is; int8 widened.
  auto upm = [&](const weight_matrix& m, std::size_t n, dev_matrix* d) {
    if (!shape_ok(m, n)) return;
    if (m.type == wdtype::f16 || m.type == wdtype::bf16) {
      d->type = m.type;
      e = p.upload(m.data, n * sizeof(std::uint16_t), m.data, m.type, &d->p);
      return;
    }
    const float* f = nullptr;
    up_f32(m, n, &f);
    d->p = f;
    d->type = wdtype::f32;
  };
  upm(w.embed, V * H, &p.embed);  // as stored: a tied head below finds the same upload
  up(w.final_norm, H, &p.final_norm);
  upm(w.lm_head, V * H, &p.lm_head);
  up(inv_freq.data(), inv_freq.size(), &p.inv_freq);
  p.uploaded.erase({inv_freq.data(), wdtype::f32});  // not a weight; do not dedupe against it
  p.layers.resize(w.layers.size());
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    const auto& L = w.layers[l];
    auto& D = p.layers[l];
    up(L.attn_norm, H, &D.attn_norm);
    upm(L.wq, Q * H, &D.wq);
    upm(L.wk, KV * H, &D.wk);
    upm(L.wv, KV * H, &D.wv);
    up(L.bq, Q, &D.bq);
    up(L.bk, KV, &D.bk);
    up(L.bv, KV, &D.bv);
    upm(L.wo, H * Q, &D.wo);
    up(L.ffn_norm, H, &D.ffn_norm);
    upm(L.w_gate, I * H, &D.w_gate);
    upm(L.w_up, I * H, &D.w_up);
    upm(L.w_down, H * I, &D.w_down);
  }
  if (!e.empty()) return fail(e);
  const std::size_t n = static_cast<std::size_t>(shape.n_layers) * shape.n_blocks * shape.block_size * shape.n_kv_heads * shape.head_dim;
  for (float** dst : {&p.kc, &p.vc}) {
    void* ptr = nullptr;
    if (cudaError_t rc = cudaMalloc(&ptr, n * sizeof(float)); rc != cudaSuccess) return fail(cuda_err("cudaMalloc(kv cache)", rc));
    p.allocs.push_back(ptr);
    if (cudaError_t rc = cudaMemset(ptr, 0, n * sizeof(float)); rc != cudaSuccess) return fail(cuda_err("cudaMemset(kv cache)", rc));
    *dst = static_cast<float*>(ptr);
  }
  p.kv_bytes = 2 * n * sizeof(float);
  // The uploads and the cache clear ran on the legacy default stream, which the model's non-blocking stream
  // does not wait for: finish them before the first forward.
  if (cudaError_t rc = cudaDeviceSynchronize(); rc != cudaSuccess) return fail(cuda_err("cudaDeviceSynchronize(create)", rc));
  return m;
}

std::size_t cuda_model::block_bytes() const {
  const auto& sh = p_->shape;
  return static_cast<std::size_t>(sh.n_layers) * 2 * sh.block_size * sh.n_kv_heads * sh.head_dim * sizeof(float);
}

namespace {
// Copies one block between the device cache and a host buffer, layer by layer: every part queued on the
// stream, one synchronisation at the end. From or to page-locked host memory (G2's slab, the KV transfer
// staging region) the parts run as DMA back to back; from pageable memory the runtime bounces them.
std::string copy_block(const kv_cache_shape& sh, float* kc, float* vc, std::uint32_t block, char* host, bool to_host,
                       cudaStream_t stream) {
  if (block >= static_cast<std::uint32_t>(sh.n_blocks)) return "KV block id out of range";
  const std::size_t row = static_cast<std::size_t>(sh.n_kv_heads) * sh.head_dim;
  const std::size_t part = static_cast<std::size_t>(sh.block_size) * row;  // floats per K (or V) block of a layer
  if (cudaError_t rc = cudaStreamSynchronize(stream); rc != cudaSuccess) return cuda_err("cudaStreamSynchronize", rc);
  for (int l = 0; l < sh.n_layers; ++l) {
    const std::size_t off = (static_cast<std::size_t>(l) * sh.n_blocks + block) * part;
    char* h = host + static_cast<std::size_t>(l) * 2 * part * sizeof(float);
    for (int kv = 0; kv < 2; ++kv) {
      float* dev = (kv == 0 ? kc : vc) + off;
      char* hp = h + kv * part * sizeof(float);
      cudaError_t rc = to_host ? cudaMemcpyAsync(hp, dev, part * sizeof(float), cudaMemcpyDeviceToHost, stream)
                               : cudaMemcpyAsync(dev, hp, part * sizeof(float), cudaMemcpyHostToDevice, stream);
      if (rc != cudaSuccess) {
        cudaStreamSynchronize(stream);  // copies queued before this one still use the host buffer: let them end
        cudaGetLastError();
        return cuda_err("cudaMemcpyAsync(kv block)", rc);
      }
    }
  }
  if (cudaError_t rc = cudaStreamSynchronize(stream); rc != cudaSuccess) return cuda_err("cudaStreamSynchronize(kv block)", rc);
  return "";
}
}  // namespace

std::string cuda_model::read_block(std::uint32_t block, void* out) const {
  return copy_block(p_->shape, p_->kc, p_->vc, block, static_cast<char*>(out), true, p_->stream);
}

std::string cuda_model::write_block(std::uint32_t block, const void* in) {
  return copy_block(p_->shape, p_->kc, p_->vc, block, const_cast<char*>(static_cast<const char*>(in)), false, p_->stream);
}

std::string cuda_model::forward(const std::vector<batch_item>& batch, std::vector<float>& logits) {
  auto& p = *p_;
  const auto& c = p.cfg;
  const int H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), I = c.intermediate_size, hd = c.head_dim,
            V = c.vocab_size, nh = c.num_attention_heads, nkv = c.num_key_value_heads, bs = p.shape.block_size;
  const long long layer_cells = static_cast<long long>(p.shape.n_blocks) * bs;
  cudaGetLastError();  // a stale error from other CUDA work on this thread is not this forward's launch failure

  // Host-side staging and validation: bad tables are an error, never a device fault.
  p.h_tok.clear();
  p.h_pos.clear();
  p.h_item_of.clear();
  p.h_cell.clear();
  p.h_tables.clear();
  p.h_table_off.clear();
  p.h_rows.clear();
  for (int b = 0; b < static_cast<int>(batch.size()); ++b) {
    const auto& it = batch[b];
    if (it.n_tokens < 0 || it.start_pos < 0 || (it.n_tokens > 0 && !it.tokens)) return "batch item " + std::to_string(b) + " is malformed";
    const std::size_t need = (static_cast<std::size_t>(it.start_pos) + it.n_tokens + bs - 1) / bs;
    if (it.n_tokens > 0 && it.block_table.size() < need)
      return "batch item " + std::to_string(b) + ": block table has " + std::to_string(it.block_table.size()) + " blocks, needs " + std::to_string(need);
    p.h_table_off.push_back(static_cast<int>(p.h_tables.size()));
    for (std::size_t i = 0; i < need && i < it.block_table.size(); ++i) {
      if (it.block_table[i] >= static_cast<std::uint32_t>(p.shape.n_blocks))
        return "batch item " + std::to_string(b) + ": block id " + std::to_string(it.block_table[i]) + " outside the cache of " +
               std::to_string(p.shape.n_blocks) + " blocks";
      p.h_tables.push_back(it.block_table[i]);
    }
    for (int i = 0; i < it.n_tokens; ++i) {
      int pos = it.start_pos + i;
      p.h_tok.push_back(it.tokens[i]);
      p.h_pos.push_back(pos);
      p.h_item_of.push_back(b);
      p.h_cell.push_back(static_cast<long long>(it.block_table[pos / bs]) * bs + pos % bs);
    }
    if (it.want_logits && it.n_tokens > 0) p.h_rows.push_back(static_cast<int>(p.h_tok.size()) - 1);
  }
  const int T = static_cast<int>(p.h_tok.size());
  const int R = static_cast<int>(p.h_rows.size());
  logits.resize(static_cast<std::size_t>(R) * V);
  if (T == 0) return {};

  std::string e;
  auto chk = [&](std::string s) {
    if (e.empty() && !s.empty()) e = std::move(s);
  };
  const std::size_t t = static_cast<std::size_t>(T);
  chk(p.x.reserve(t * H));
  chk(p.xn.reserve(t * H));
  chk(p.q.reserve(t * Q));
  chk(p.att.reserve(t * Q));
  chk(p.k.reserve(t * KV));
  chk(p.v.reserve(t * KV));
  chk(p.gate.reserve(t * I));
  chk(p.up.reserve(t * I));
  chk(p.logits.reserve(static_cast<std::size_t>(R) * V));
  chk(p.to_device(p.tok, p.h_tok));
  chk(p.to_device(p.pos, p.h_pos));
  chk(p.to_device(p.item_of, p.h_item_of));
  chk(p.to_device(p.cell, p.h_cell));
  chk(p.to_device(p.tables, p.h_tables));
  chk(p.to_device(p.table_off, p.h_table_off));
  chk(p.to_device(p.rows, p.h_rows));
  if (!e.empty()) return e;

  cudaStream_t s = p.stream;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const std::size_t att_smem = (2 * static_cast<std::size_t>(hd) + k_att_tile) * sizeof(float);
  if (p.embed.type == wdtype::bf16)
    embed_half_kernel<true><<<T, k_threads, 0, s>>>(static_cast<const std::uint16_t*>(p.embed.p), p.tok.p, p.x.p, H, V);
  else if (p.embed.type == wdtype::f16)
    embed_half_kernel<false><<<T, k_threads, 0, s>>>(static_cast<const std::uint16_t*>(p.embed.p), p.tok.p, p.x.p, H, V);
  else
    embed_kernel<<<T, k_threads, 0, s>>>(static_cast<const float*>(p.embed.p), p.tok.p, p.x.p, H, V);
  for (int l = 0; l < c.num_hidden_layers && e.empty(); ++l) {
    const auto& L = p.layers[l];
    rms_norm_kernel<<<T, k_threads, 0, s>>>(p.x.p, nullptr, L.attn_norm, p.xn.p, H, c.rms_norm_eps);
    chk(p.gemm_wt(p.xn.p, T, H, L.wq, Q, p.q.p, 0.0f));
    chk(p.gemm_wt(p.xn.p, T, H, L.wk, KV, p.k.p, 0.0f));
    chk(p.gemm_wt(p.xn.p, T, H, L.wv, KV, p.v.p, 0.0f));
    if (L.bq) bias_kernel<<<T, k_threads, 0, s>>>(p.q.p, L.bq, Q);
    if (L.bk) bias_kernel<<<T, k_threads, 0, s>>>(p.k.p, L.bk, KV);
    if (L.bv) bias_kernel<<<T, k_threads, 0, s>>>(p.v.p, L.bv, KV);
    rope_kernel<<<T, k_threads, 0, s>>>(p.q.p, p.k.p, p.pos.p, p.inv_freq, nh, nkv, hd);
    kv_write_kernel<<<T, k_threads, 0, s>>>(p.k.p, p.v.p, p.cell.p, p.kc, p.vc, layer_cells, l, KV);
    paged_attention_kernel<<<dim3(T, nh), k_att_threads, att_smem, s>>>(p.q.p, p.kc, p.vc, p.att.p, p.pos.p, p.item_of.p,
                                                                      p.table_off.p, p.tables.p, nh, nkv, hd, bs,
                                                                      layer_cells, l, scale);
    chk(p.gemm_wt(p.att.p, T, Q, L.wo, H, p.x.p, 1.0f));  // x += att Wo^T (residual fused)
    rms_norm_kernel<<<T, k_threads, 0, s>>>(p.x.p, nullptr, L.ffn_norm, p.xn.p, H, c.rms_norm_eps);
    chk(p.gemm_wt(p.xn.p, T, H, L.w_gate, I, p.gate.p, 0.0f));
    chk(p.gemm_wt(p.xn.p, T, H, L.w_up, I, p.up.p, 0.0f));
    const std::size_t n_ffn = t * I;
    swiglu_kernel<<<static_cast<unsigned>((n_ffn + k_threads - 1) / k_threads), k_threads, 0, s>>>(p.gate.p, p.up.p, n_ffn);
    chk(p.gemm_wt(p.gate.p, T, I, L.w_down, H, p.x.p, 1.0f));  // x += ffn (residual fused)
    if (cudaError_t rc = cudaGetLastError(); rc != cudaSuccess) chk(cuda_err("kernel launch", rc));
  }
  if (!e.empty()) return e;
  if (R > 0) {
    rms_norm_kernel<<<R, k_threads, 0, s>>>(p.x.p, p.rows.p, p.final_norm, p.xn.p, H, c.rms_norm_eps);
    chk(p.gemm_wt(p.xn.p, R, H, p.lm_head, V, p.logits.p, 0.0f));
    if (!e.empty()) return e;
    YARD_CUDA_TRY("cudaMemcpyAsync(logits)",
                  cudaMemcpyAsync(logits.data(), p.logits.p, logits.size() * sizeof(float), cudaMemcpyDeviceToHost, s));
  }
  YARD_CUDA_TRY("kernel launch", cudaGetLastError());
  YARD_CUDA_TRY("cudaStreamSynchronize(forward)", cudaStreamSynchronize(s));
  return {};
}

}  // namespace yard::backends::native
