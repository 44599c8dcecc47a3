// backends/native/cuda/cuda_executor.cpp — CUDA executor factory, sampling, and the
// no-CUDA fallbacks (see cuda_executor.hpp).
//
// Owns: cuda_executor (plan -> cuda_model::forward -> host sampling) and
// cuda_available() with its one-time log line. Must not touch: kernels
// (cuda_model.cu), scheduling. Thread-safety: the executor is single-threaded;
// cuda_available() is safe from any thread.
#include "backends/native/cuda/cuda_executor.hpp"

#include <chrono>
#include <random>

#include "backends/native/cuda/cuda_device.hpp"
#include "backends/native/model.hpp"
#include "backends/native/plan_glue.hpp"
#include "common/log.hpp"

#ifdef YARD_HAVE_CUDA
#include "backends/native/cuda/cuda_model.hpp"
#endif

namespace yard::backends::native {

bool cuda_available() {
  static const bool ok = [] {
    auto p = probe_cuda_device();
    auto log = component_logger("cuda");
    if (p.available)
      log->info("CUDA device 0: {} (sm_{}{}, {:.1f} GiB), {} device(s)", p.name, p.compute_major, p.compute_minor,
                static_cast<double>(p.total_memory) / (1ull << 30), p.device_count);
    else
      log->info("CUDA not available: {}", p.reason);
    return p.available;
  }();
  return ok;
}

#ifndef YARD_HAVE_CUDA

bool cuda_built() { return false; }

cuda_probe probe_cuda_device() {
  cuda_probe p;
  p.reason = "built without CUDA (nvcc/CUDA toolkit not found at configure time)";
  return p;
}

bool pin_host_memory(void*, std::size_t) { return false; }
void unpin_host_memory(void*) {}
double device_read_bandwidth(std::size_t) { return 0.0; }

result<std::unique_ptr<executor>> make_cuda_executor(std::shared_ptr<const model_weights>, kv_cache_shape) {
  return make_error(errc::unsupported, "device 'cuda' requested but this build has no CUDA support "
                                       "(reconfigure with nvcc and the CUDA toolkit installed)");
}

#else

bool cuda_built() { return true; }

namespace {

class cuda_executor final : public executor {
 public:
  cuda_executor(std::unique_ptr<cuda_model> m, int vocab) : model_(std::move(m)), vocab_(vocab) {}

  // KV bytes for disaggregation and tiers: staged through host memory.
  std::size_t kv_block_bytes() const override { return model_->block_bytes(); }
  bool read_block(kv::block_id b, kv::block_hash, std::span<std::byte> out) const override {
    if (out.size() < model_->block_bytes()) return false;
    if (auto err = model_->read_block(b, out.data()); !err.empty()) {
      component_logger("cuda")->error("KV read: {}", err);
      return false;
    }
    return true;
  }
  status write_block(kv::block_id b, kv::block_hash, std::span<const std::byte> in) override {
    if (in.size() != model_->block_bytes()) return make_error(errc::bad_request, "KV block of the wrong size");
    if (auto err = model_->write_block(b, in.data()); !err.empty()) return make_error(errc::internal, err);
    return status::success();
  }

  execution_result execute(const batch_plan& plan) override {
    auto t0 = std::chrono::steady_clock::now();
    execution_result r;
    r.sampled.assign(plan.seqs.size(), 0);
    r.logprobs.assign(plan.seqs.size(), 0.0f);
    if (auto err = model_->forward(batch_items(plan), logits_); !err.empty()) {
      // No token is sampled: the engine ends the step's requests unavailable and drains (engine_shell).
      r.fault = "CUDA forward failed: " + err;
      return r;
    }
    sample_plan(plan, logits_.data(), vocab_, r);
    r.model_time_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }

 private:
  std::unique_ptr<cuda_model> model_;
  int vocab_;
  std::vector<float> logits_;
};

}  // namespace

result<std::unique_ptr<executor>> make_cuda_executor(std::shared_ptr<const model_weights> w, kv_cache_shape shape) {
  if (!w) return make_error(errc::bad_request, "make_cuda_executor: no weights");
  if (!cuda_available()) {
    return make_error(errc::unavailable, "device 'cuda' requested but no CUDA device is usable: " + probe_cuda_device().reason);
  }
  std::string err;
  auto m = cuda_model::create(*w, shape, rope_inv_freq(w->config), err);
  if (!m) {
    component_logger("cuda")->error("CUDA model setup failed: {}", err);
    return make_error(errc::unavailable, "CUDA model setup failed: " + err);
  }
  component_logger("cuda")->info("CUDA executor: {:.1f} MiB weights, {:.1f} MiB KV cache on device", m->weight_bytes() / 1048576.0,
                                 m->kv_bytes() / 1048576.0);
  const int vocab = w->config.vocab_size;
  // The model keeps raw pointers only during create(); the host weights may be released afterwards.
  return std::unique_ptr<executor>(new cuda_executor(std::move(m), vocab));
}

#endif

}  // namespace yard::backends::native
