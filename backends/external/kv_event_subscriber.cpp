// backends/external/kv_event_subscriber.cpp — see kv_event_subscriber.hpp.
#include "backends/external/kv_event_subscriber.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <iterator>
#include <mutex>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/log.hpp"

namespace yard::backends::external {
namespace {

using clock_type = std::chrono::steady_clock;

// The replay socket's end-of-answer marker: -1 as a signed 8-byte big-endian integer.
constexpr std::uint64_t end_seq = ~std::uint64_t{0};
// SGLang's snapshot-enabled publishers append "\0sgl-kv-epoch=<epoch>" to the topic frame.
constexpr std::string_view epoch_marker{"\0sgl-kv-epoch=", 14};

std::uint64_t be64(const void* p) {
  const auto* b = static_cast<const unsigned char*>(p);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | b[i];
  return v;
}

std::string epoch_of(std::string_view topic) {
  auto at = topic.find(epoch_marker);
  if (at == std::string_view::npos) return {};
  auto rest = topic.substr(at + epoch_marker.size());
  return std::string(rest.substr(0, rest.find('\0')));
}

// An endpoint with a wildcard is bound (the engine then connects to us, as vLLM does when its
// own endpoint names a host); any other is connected.
void attach(zmq::socket_t& s, const std::string& endpoint) {
  if (endpoint.find('*') != std::string::npos) s.bind(endpoint);
  else s.connect(endpoint);
}

}  // namespace

struct kv_event_subscriber::impl {
  explicit impl(kv_event_subscriber_options o)
      : opts(std::move(o)), translator(opts.source, opts.block_size), log(component_logger("kv_events")) {}

  kv_event_subscriber_options opts;
  zmq::context_t ctx{1};
  zmq::socket_t sub;
  zmq::socket_t replay;  // DEALER; empty when no replay endpoint

  mutable std::mutex mu;
  kv_event_translator translator;         // guarded by mu; mutated by the thread only
  std::vector<msg::kv_event> pending;     // guarded by mu

  std::shared_ptr<spdlog::logger> log;
  std::atomic<bool> stop{false};
  std::string epoch;                      // thread only
  std::thread thread;

  void open_replay() {
    replay = zmq::socket_t(ctx, zmq::socket_type::dealer);
    replay.set(zmq::sockopt::linger, 0);
    replay.set(zmq::sockopt::sndtimeo, static_cast<int>(opts.replay_timeout_ms));
    replay.connect(opts.replay_endpoint);
  }

  void run() {
    const auto interval = std::chrono::milliseconds(std::max<std::uint32_t>(1, opts.poll_interval_ms));
    while (!stop.load()) {
      try {
        zmq::pollitem_t items[] = {{sub.handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, 1, interval);
        if (!(items[0].revents & ZMQ_POLLIN)) continue;
        while (!stop.load()) {
          std::vector<zmq::message_t> frames;
          if (!zmq::recv_multipart(sub, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
          on_frames(frames);
        }
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        log->error("{} KV events: subscriber stopped: {}", to_string(opts.source), e.what());
        return;
      }
    }
  }

  void on_frames(std::vector<zmq::message_t>& frames) {
    if (frames.size() != 3 || frames[1].size() != 8) {
      std::lock_guard lk(mu);
      translator.on_bad_frame();
      log->warn("{} KV events: message of {} frames skipped (want topic, 8-byte seq, payload)",
                to_string(opts.source), frames.size());
      return;
    }
    if (auto e = epoch_of(frames[0].to_string_view()); !e.empty()) {
      if (!epoch.empty() && e != epoch) {
        std::lock_guard lk(mu);
        translator.on_restart(pending);
      }
      epoch = e;
    }
    const std::uint64_t seq = be64(frames[1].data());
    std::optional<std::uint64_t> from;
    {
      std::lock_guard lk(mu);
      from = translator.replay_from(seq);
    }
    std::vector<replayed_batch> replayed;
    if (from && replay) replayed = fetch_replay(*from, seq);
    std::lock_guard lk(mu);
    translator.on_batch(seq, frames[2].to_string_view(), replayed, pending);
  }

  // Batches [from, until) from the replay socket, as far as it answers before the timeout.
  std::vector<replayed_batch> fetch_replay(std::uint64_t from, std::uint64_t until) {
    std::vector<replayed_batch> got;
    unsigned char start[8];
    for (int i = 7, v = 0; i >= 0; --i, ++v) start[i] = static_cast<unsigned char>(from >> (8 * v));
    try {
      std::array<zmq::const_buffer, 2> req{zmq::const_buffer(nullptr, 0), zmq::const_buffer(start, sizeof start)};
      if (!zmq::send_multipart(replay, req)) {
        log->warn("{} KV events: replay request from seq {} not sent (no replay peer)", to_string(opts.source), from);
        return got;
      }
      const auto deadline = clock_type::now() + std::chrono::milliseconds(opts.replay_timeout_ms);
      const auto slice = std::chrono::milliseconds(std::max<std::uint32_t>(1, opts.poll_interval_ms));
      while (!stop.load()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        if (left.count() <= 0) break;
        zmq::pollitem_t items[] = {{replay.handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, 1, std::min(left, slice));
        if (!(items[0].revents & ZMQ_POLLIN)) continue;
        std::vector<zmq::message_t> frames;
        if (!zmq::recv_multipart(replay, std::back_inserter(frames), zmq::recv_flags::dontwait)) continue;
        // [empty delimiter, seq, payload]; tolerate a missing delimiter.
        std::size_t at = frames.size() == 3 && frames[0].size() == 0 ? 1 : 0;
        if (frames.size() - at != 2 || frames[at].size() != 8) {
          std::lock_guard lk(mu);
          translator.on_bad_frame();
          continue;
        }
        const std::uint64_t seq = be64(frames[at].data());
        if (seq == end_seq) return got;  // the answer is complete
        if (seq >= from && seq < until) got.push_back({seq, std::string(frames[at + 1].to_string_view())});
      }
      log->warn("{} KV events: replay from seq {} timed out after {} batches", to_string(opts.source), from,
                got.size());
      open_replay();  // a fresh DEALER, so a late answer cannot be mistaken for the next one
    } catch (const zmq::error_t& e) {
      log->warn("{} KV events: replay from seq {} failed: {}", to_string(opts.source), from, e.what());
    }
    return got;
  }
};

result<kv_event_source> parse_kv_event_source(std::string_view name) {
  if (name == "vllm") return kv_event_source::vllm;
  if (name == "sglang") return kv_event_source::sglang;
  return make_error(errc::bad_request, "KV event source must be vllm or sglang (got '" + std::string(name) + "')");
}

result<std::unique_ptr<kv_event_subscriber>> kv_event_subscriber::start(kv_event_subscriber_options o) {
  if (o.endpoint.empty()) return make_error(errc::bad_request, "KV event endpoint is empty");
  if (o.block_size == 0) return make_error(errc::bad_request, "KV event block_size must be positive");
  auto p = std::make_unique<impl>(std::move(o));
  const std::string* which = &p->opts.endpoint;
  try {
    p->sub = zmq::socket_t(p->ctx, zmq::socket_type::sub);
    p->sub.set(zmq::sockopt::linger, 0);
    p->sub.set(zmq::sockopt::rcvhwm, 100000);  // vLLM's PUB high-water mark: hold a burst while replaying
    p->sub.set(zmq::sockopt::subscribe, p->opts.topic);
    attach(p->sub, p->opts.endpoint);
    if (!p->opts.replay_endpoint.empty()) {
      which = &p->opts.replay_endpoint;
      p->open_replay();
    }
  } catch (const zmq::error_t& e) {
    return make_error(errc::bad_request, "cannot open KV event endpoint '" + *which + "': " + e.what());
  }
  p->log->info("{} KV events: subscribed to {} (topic '{}', replay {})", to_string(p->opts.source), p->opts.endpoint,
               p->opts.topic, p->opts.replay_endpoint.empty() ? std::string("off") : p->opts.replay_endpoint);
  impl* raw = p.get();
  p->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<kv_event_subscriber>(new kv_event_subscriber(std::move(p)));
}

kv_event_subscriber::kv_event_subscriber(std::unique_ptr<impl> p) : p_(std::move(p)) {}

kv_event_subscriber::~kv_event_subscriber() {
  p_->stop.store(true);
  if (p_->thread.joinable()) p_->thread.join();
}

std::vector<msg::kv_event> kv_event_subscriber::drain() {
  std::lock_guard lk(p_->mu);
  std::vector<msg::kv_event> out;
  out.swap(p_->pending);
  return out;
}

std::vector<msg::kv_event> kv_event_subscriber::snapshot() const {
  std::lock_guard lk(p_->mu);
  return p_->translator.snapshot();
}

kv_event_subscriber_stats kv_event_subscriber::stats() const {
  std::lock_guard lk(p_->mu);
  return p_->translator.stats();
}

}  // namespace yard::backends::external
