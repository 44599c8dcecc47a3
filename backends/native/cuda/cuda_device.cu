// backends/native/cuda/cuda_device.cu — the CUDA device probe (see cuda_device.hpp).
//
// Owns: probe_cuda_device(), pin_host_memory() / unpin_host_memory(). Must not touch: kernels, logging (the plain C++
// side logs). Thread-safety: the CUDA runtime calls used are thread-safe.
#include <cuda_runtime.h>

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
  if (cudaHostRegister(p, n, cudaHostRegisterPortable) != cudaSuccess) {
    cudaGetLastError();  // no device, no driver, or already registered: the memory stays pageable
    return false;
  }
  return true;
}

void unpin_host_memory(void* p) {
  if (p != nullptr && cudaHostUnregister(p) != cudaSuccess) cudaGetLastError();
}

}  // namespace yard::backends::native
