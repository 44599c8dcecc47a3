#include "backends/native/thread_pool.hpp"

#include <chrono>

#include <immintrin.h>

namespace yard::backends::native {

namespace {

// Spins while `waiting()` holds, up to thread_pool::spin_budget; true = it stopped holding.
template <class Pred>
bool spin_while(const Pred& waiting) {
  const auto until = std::chrono::steady_clock::now() + thread_pool::spin_budget;
  for (unsigned i = 1;; ++i) {
    if (!waiting()) return true;
    _mm_pause();
    if ((i & 255) == 0 && std::chrono::steady_clock::now() >= until) return !waiting();
  }
}

}  // namespace

thread_pool::thread_pool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

thread_pool::~thread_pool() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void thread_pool::run_items() {
  for (int i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < n_;) (*fn_)(i);
}

void thread_pool::worker_loop() {
  std::uint64_t seen = 0;
  for (;;) {
    // A decode step calls parallel_for hundreds of times a few microseconds apart: spin first, sleep after.
    if (!spin_while([&] { return generation_.load(std::memory_order_acquire) == seen && !stop_.load(); })) {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_.load() || generation_.load(std::memory_order_acquire) != seen; });
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    run_items();
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lk(mu_);  // the caller may be asleep on done_cv_
      done_cv_.notify_one();
    }
  }
}

void thread_pool::parallel_for(int n, const std::function<void(int)>& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    for (int i = 0; i < n; ++i) fn(i);
    return;
  }
  fn_ = &fn;
  n_ = n;
  next_.store(0, std::memory_order_relaxed);
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard lk(mu_);  // a worker going to sleep checks the generation under the lock: no lost wake-up
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();  // no system call when every worker is spinning
  run_items();
  if (!spin_while([&] { return pending_.load(std::memory_order_acquire) != 0; })) {
    std::unique_lock lk(mu_);
    done_cv_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
  fn_ = nullptr;
}

}  // namespace yard::backends::native
