// actors/chunk_queue.hpp — hands token chunks from the frontend actor to the
// HTTP thread that serves the client.
//
// Owns: a bounded-by-use FIFO of token_chunk with a close flag. The frontend
// actor pushes; one HTTP thread pops with a timeout.
// Must not touch: NATS, HTTP.
// Thread-safety: thread-safe (one mutex).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include <caf/allowed_unsafe_message_type.hpp>

#include "messages/types.hpp"

namespace yard::actors {

class chunk_queue {
 public:
  void push(msg::token_chunk c) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      q_.push_back(std::move(c));
    }
    cv_.notify_one();
  }
  // Waits up to `timeout` for a chunk; nullopt on timeout.
  std::optional<msg::token_chunk> pop(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !q_.empty(); })) return std::nullopt;
    auto c = std::move(q_.front());
    q_.pop_front();
    return c;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<msg::token_chunk> q_;
};

using chunk_queue_ptr = std::shared_ptr<chunk_queue>;

}  // namespace yard::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::actors::chunk_queue_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::msg::generate_request)
