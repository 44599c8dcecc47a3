// bench/bench_baseline.hpp — what the latency benches share: the percentile
// they report, and the honest bare-NATS baseline they are compared with.
//
// Owns: `pct` (nearest-rank below, on a copy) and bare_nats_rtt, one nats.c
// request/reply to an echo responder on the same server and connection (so
// with the same send-asap option as the path it is compared with).
// Must not touch: the paths being measured.
// Thread-safety: bare_nats_rtt::measure_us from one thread at a time.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "transport/nats_connection.hpp"

namespace yard::bench {

// The p-quantile of v (0 when empty): v sorted, element floor(p * (n - 1)).
inline double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

class bare_nats_rtt {
 public:
  // Subscribes the echo responder on `subject` and flushes; false when it cannot.
  bool start(transport::nats_connection& conn, std::string subject) {
    conn_ = &conn;
    subject_ = std::move(subject);
    auto echo = conn.subscribe(subject_, [c = &conn](transport::nats_message m) { c->publish(m.reply, m.data); });
    if (!echo) return false;
    echo_ = std::move(*echo);
    return conn.flush().ok();
  }
  // One round trip in µs, or -1 when it timed out (5 s).
  double measure_us() {
    auto t0 = std::chrono::steady_clock::now();
    auto r = conn_->request(subject_, "x", 5000);
    auto dt = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    return r ? dt : -1;
  }

 private:
  transport::nats_connection* conn_ = nullptr;
  std::string subject_;
  transport::subscription echo_;
};

}  // namespace yard::bench
