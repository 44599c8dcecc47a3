// backends/native/cuda/cuda_device.cu — the CUDA device probe (see cuda_device.hpp).
//
// Owns: probe_cuda_device(), pin_host_memory() / unpin_host_memory(), the device read-bandwidth probe.
// Must not touch: the model's kernels, logging (the plain C++
// side logs). Thread-safety: the CUDA runtime calls used are thread-safe.
#include <cuda_runtime.h>

#include <algorithm>

#include <unistd.h>

#include "backends/native/cuda/cuda_device.hpp"

namespace yard::backends::native {

cuda_probe probe_cuda_device() {
  cuda_probe p;
  int n = 0;
  cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc != cudaSuccess) {
    // cudaErrorNoDevice, cudaErrorInsufficientDriver, cudaErrorInitializationError, ...
    p.reason = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(rc) + " (" + cudaGetErrorString(rc) + ")";
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return p;
  }
  p.device_count = n;
  if (n <= 0) {
    p.reason = "no CUDA device";
    return p;
  }
  cudaDeviceProp prop{};
  rc = cudaGetDeviceProperties(&prop, 0);
  if (rc != cudaSuccess) {
    p.reason = std::string("cudaGetDeviceProperties(0) failed: ") + cudaGetErrorName(rc);
    cudaGetLastError();
    return p;
  }
  p.name = prop.name;
  p.compute_major = prop.major;
  p.compute_minor = prop.minor;
  p.total_memory = prop.totalGlobalMem;
  p.available = true;
  return p;
}

bool pin_host_memory(void* p, std::size_t n) {
  if (p == nullptr || n == 0) return false;
  const double phys = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGE_SIZE));
  if (phys > 0 && double(n) > phys / 2) return false;  // see the header: too much to lock
  if (cudaHostRegister(p, n, cudaHostRegisterPortable) != cudaSuccess) {
    cudaGetLastError();  // no device, no driver, or already registered: the memory stays pageable
    return false;
  }
  return true;
}

void unpin_host_memory(void* p) {
  if (p != nullptr && cudaHostUnregister(p) != cudaSuccess) cudaGetLastError();
}

namespace {

// Sums n 16-byte words, grid-stride; one result per block (so the loads cannot be dropped).
__global__ void read_words_kernel(const uint4* __restrict__ p, std::size_t n, unsigned* __restrict__ out) {
  unsigned s = 0;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const uint4 v = p[i];
    s += v.x ^ v.y ^ v.z ^ v.w;
  }
  if (s == 0x9e3779b9u) out[blockIdx.x] = s;  // practically never taken; keeps the reads live
}

}  // namespace

double device_read_bandwidth(std::size_t bytes) {
  const std::size_t n = bytes / sizeof(uint4);
  if (n == 0 || !probe_cuda_device().available) return 0.0;
  if (cudaSetDevice(0) != cudaSuccess) {
    cudaGetLastError();
    return 0.0;
  }
  void* buf = nullptr;
  unsigned* sink = nullptr;
  constexpr int blocks = 4096, threads = 256;
  if (cudaMalloc(&buf, n * sizeof(uint4)) != cudaSuccess || cudaMalloc(&sink, blocks * sizeof(unsigned)) != cudaSuccess) {
    cudaGetLastError();
    if (buf) cudaFree(buf);
    return 0.0;
  }
  cudaMemset(buf, 1, n * sizeof(uint4));  // pages backed, not a zero page
  cudaEvent_t t0 = nullptr, t1 = nullptr;
  double best = 0;
  if (cudaEventCreate(&t0) != cudaSuccess || cudaEventCreate(&t1) != cudaSuccess) {
    cudaGetLastError();
    if (t0) cudaEventDestroy(t0);
    cudaFree(sink);
    cudaFree(buf);
    return 0.0;
  }
  for (int rep = 0; rep < 8; ++rep) {
    cudaEventRecord(t0);
    read_words_kernel<<<blocks, threads>>>(static_cast<const uint4*>(buf), n, sink);
    if (cudaGetLastError() != cudaSuccess) {  // a launch that failed measured nothing
      best = 0;
      break;
    }
    cudaEventRecord(t1);
    if (cudaEventSynchronize(t1) != cudaSuccess) break;
    float ms = 0;
    cudaEventElapsedTime(&ms, t0, t1);
    if (ms > 0) best = std::max(best, double(n * sizeof(uint4)) / (ms / 1e3));
  }
  cudaGetLastError();
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  cudaFree(sink);
  cudaFree(buf);
  return best;
}

}  // namespace yard::backends::native
