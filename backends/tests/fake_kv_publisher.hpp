// backends/tests/fake_kv_publisher.hpp — test helper: a KV-event publisher built like vLLM's
// ZmqEventPublisher (PUB [topic, 8-byte seq, payload] + a ROUTER replay socket answering
// [empty, start] with [empty, seq, payload]... [empty, -1, empty]), on free loopback ports.
// The publisher side is an XPUB so a test can wait for the subscription before publishing
// (what a PUB sends before a subscriber joins is dropped); the bytes on the wire are the same.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace yard::test_support {

inline std::string be64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) s[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
  return s;
}

// A vLLM-shaped publisher on free loopback ports.
class fake_engine {
 public:
  explicit fake_engine(bool with_replay) {
    pub_.set(zmq::sockopt::linger, 0);
    pub_.bind("tcp://127.0.0.1:*");
    endpoint = pub_.get(zmq::sockopt::last_endpoint);
    if (!with_replay) return;
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:*");
    replay_endpoint = router_.get(zmq::sockopt::last_endpoint);
    replay_thread_ = std::thread([this] { serve_replay(); });
  }
  ~fake_engine() {
    stop_ = true;
    if (replay_thread_.joinable()) replay_thread_.join();
  }

  // Blocks until a subscriber's subscription reached the publisher (false after 20 s).
  bool wait_subscribed() {
    zmq::pollitem_t items[] = {{pub_.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(20000));
    zmq::message_t m;
    return (items[0].revents & ZMQ_POLLIN) && pub_.recv(m) && m.size() >= 1 && m.data<char>()[0] == 1;
  }

  // Publishes `payload` as the next batch; a `lost` one is only kept for replay.
  std::uint64_t publish(const std::string& payload, bool lost = false, const std::string& topic = "") {
    const std::uint64_t seq = next_seq_++;
    {
      std::lock_guard lk(mu_);
      buffer_.emplace_back(seq, payload);
    }
    if (!lost) send({topic, be64(seq), payload});
    return seq;
  }
  void send(const std::vector<std::string>& frames) {
    std::vector<zmq::const_buffer> bufs;
    for (const auto& f : frames) bufs.emplace_back(f.data(), f.size());
    zmq::send_multipart(pub_, bufs);
  }
  // The replay buffer no longer holds batches before `seq` (vLLM's deque maxlen).
  void forget_before(std::uint64_t seq) {
    std::lock_guard lk(mu_);
    while (!buffer_.empty() && buffer_.front().first < seq) buffer_.pop_front();
  }

  std::string endpoint, replay_endpoint;

 private:
  void serve_replay() {
    while (!stop_) {
      zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 1, std::chrono::milliseconds(20));
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> req;
      if (!zmq::recv_multipart(router_, std::back_inserter(req)) || req.size() != 3 || req[2].size() != 8) continue;
      std::uint64_t start = 0;
      for (std::size_t i = 0; i < 8; ++i) start = (start << 8) | req[2].data<unsigned char>()[i];
      const std::string id = req[0].to_string();
      std::lock_guard lk(mu_);
      for (const auto& [seq, payload] : buffer_) {
        if (seq < start) continue;
        const std::string s = be64(seq);
        std::array<zmq::const_buffer, 4> out{zmq::buffer(id), zmq::const_buffer(nullptr, 0), zmq::buffer(s),
                                             zmq::buffer(payload)};
        zmq::send_multipart(router_, out);
      }
      const std::string end = be64(~std::uint64_t{0});
      std::array<zmq::const_buffer, 4> out{zmq::buffer(id), zmq::const_buffer(nullptr, 0), zmq::buffer(end),
                                           zmq::const_buffer(nullptr, 0)};
      zmq::send_multipart(router_, out);
    }
  }

  zmq::context_t ctx_{1};
  zmq::socket_t pub_{ctx_, zmq::socket_type::xpub};
  zmq::socket_t router_{ctx_, zmq::socket_type::router};
  std::thread replay_thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::deque<std::pair<std::uint64_t, std::string>> buffer_;  // guarded by mu_
  std::uint64_t next_seq_ = 0;
};

}  // namespace yard::test_support
