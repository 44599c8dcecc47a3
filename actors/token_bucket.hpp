// actors/token_bucket.hpp — a token bucket for rate limits (requests/s, tokens/min).
//
// Owns: one bucket's level and refill. `capacity` units refill over `period`;
// take(n) admits while the level is positive and may drive it negative (a
// request's token cost is known only when it ends: debit() charges it then),
// so a tenant that overspends waits until the debt is refilled.
// Must not touch: clocks (callers pass `now`), locking (callers serialize).
// Thread-safety: not thread-safe.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>

namespace yard::actors {

class token_bucket {
 public:
  using clock = std::chrono::steady_clock;

  token_bucket() = default;
  // `capacity` units per `period`; the bucket starts full (a burst of `capacity`).
  token_bucket(double capacity, std::chrono::milliseconds period, clock::time_point now)
      : capacity_(capacity), rate_per_ms_(capacity / std::max<double>(1.0, static_cast<double>(period.count()))),
        level_(capacity), last_(now) {}

  bool limited() const { return capacity_ > 0; }

  // Takes `n` units when the level is positive (a request is let in even when it
  // costs more than is left; the debt delays the next one). False: refused.
  bool take(double n, clock::time_point now) {
    if (!limited()) return true;
    refill(now);
    if (level_ < std::min(n, capacity_)) return false;
    level_ -= n;
    return true;
  }
  // Charges units spent after admission (tokens generated): the level may go negative.
  void debit(double n, clock::time_point now) {
    if (!limited()) return;
    refill(now);
    level_ -= n;
  }
  // Time until take(n) would succeed (0 when it would now).
  std::chrono::milliseconds wait_for(double n, clock::time_point now) {
    if (!limited()) return std::chrono::milliseconds{0};
    refill(now);
    double need = std::min(n, capacity_) - level_;
    if (need <= 0) return std::chrono::milliseconds{0};
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(need / rate_per_ms_)));
  }
  double level(clock::time_point now) {
    refill(now);
    return level_;
  }

 private:
  void refill(clock::time_point now) {
    if (now <= last_) return;
    double ms = std::chrono::duration<double, std::milli>(now - last_).count();
    level_ = std::min(capacity_, level_ + ms * rate_per_ms_);
    last_ = now;
  }

  double capacity_ = 0;  // 0: unlimited
  double rate_per_ms_ = 0;
  double level_ = 0;
  clock::time_point last_{};
};

}  // namespace yard::actors
