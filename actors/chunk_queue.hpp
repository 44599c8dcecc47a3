// actors/chunk_queue.hpp — hands token chunks from the frontend actor to the
// HTTP connection that serves the client.
//
// Owns: a FIFO of token_chunk and a notify callback. The frontend actor
// pushes; the callback (set by the HTTP connection before the stream opens)
// posts a drain to the connection's strand, which takes every queued chunk at
// once. No thread ever waits on it: a stream costs memory only while chunks
// are queued.
// Must not touch: NATS, HTTP.
// Thread-safety: thread-safe (one mutex); the callback runs on the pushing
// thread, outside the lock, and must not block.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>

#include "messages/types.hpp"

namespace yard::actors {

class chunk_queue {
 public:
  using notify_fn = std::function<void()>;

  // Called after a push that made the queue non-empty (default none). With
  // finals_only, called only after a push of a final chunk (one with a finish
  // reason): a whole (non-streamed) response needs no wake-up per token.
  void set_notify(notify_fn f, bool finals_only = false) {
    std::lock_guard<std::mutex> lock(mu_);
    notify_ = std::move(f);
    finals_only_ = finals_only;
  }
  void push(msg::token_chunk c) {
    notify_fn f;
    {
      std::lock_guard<std::mutex> lock(mu_);
      bool wake = finals_only_ ? c.finish_reason.has_value() : q_.empty();
      q_.push_back(std::move(c));
      if (wake) f = notify_;
    }
    if (f) f();
  }
  // The frontend actor took this stream (frontend_port: a sink never claimed
  // when its actor died was lost in that actor's mailbox).
  void claim() { claimed_.store(true, std::memory_order_release); }
  bool claimed() const { return claimed_.load(std::memory_order_acquire); }
  // Every queued chunk, oldest first (empty when none).
  std::vector<msg::token_chunk> take_all() {
    std::vector<msg::token_chunk> out;
    std::lock_guard<std::mutex> lock(mu_);
    out.swap(q_);
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<msg::token_chunk> q_;  // no allocation until the first push
  notify_fn notify_;
  bool finals_only_ = false;
  std::atomic<bool> claimed_{false};
};

using chunk_queue_ptr = std::shared_ptr<chunk_queue>;

}  // namespace yard::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::actors::chunk_queue_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::msg::generate_request)
