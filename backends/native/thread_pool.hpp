// backends/native/thread_pool.hpp — a tiny fork-join pool for parallel_for.
//
// Owns: its worker threads. parallel_for(n, fn) runs fn(i) for i in [0, n)
// across the workers and the calling thread, and returns when all are done.
// Workers spin for spin_budget between calls before they sleep.
// Must not touch: anything the callback does not own.
// Thread-safety: parallel_for must be called from one thread at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace yard::backends::native {

class thread_pool {
 public:
  explicit thread_pool(int n_threads);  // total threads including the caller; <= 0 = hardware_concurrency
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  void parallel_for(int n, const std::function<void(int)>& fn);

  // How long an idle worker (and a caller waiting for the last item) spins before it sleeps on a
  // condition variable: a decode step's calls come microseconds apart, and a futex wake-up per call
  // cost more than the matrix work of a small model; an idle engine sleeps after this.
  static constexpr std::chrono::microseconds spin_budget{200};

 private:
  void worker_loop();
  void run_items();
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* fn_ = nullptr;
  int n_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> pending_{0};                // workers not done with the current generation
  std::atomic<std::uint64_t> generation_{0};   // bumped by each parallel_for
  std::atomic<bool> stop_{false};
};

}  // namespace yard::backends::native
