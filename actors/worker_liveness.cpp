// actors/worker_liveness.cpp — see worker_liveness.hpp.
#include "actors/worker_liveness.hpp"

#include "messages/subjects.hpp"

namespace yard::actors {

namespace {
bool power_of_two(std::uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }
}  // namespace

std::optional<worker_liveness::taken> worker_liveness::on_heartbeat(worker_registry& reg,
                                                                   const transport::nats_message& m) {
  auto hb = msg::decode_auto<msg::heartbeat>(m.data, m.content_type, limits_);
  if (!hb) {
    log_->warn("bad heartbeat on {}: {}", m.subject, hb.err().describe());
    return std::nullopt;
  }
  if (hb->component != msg::component_kind::worker) return std::nullopt;
  auto obs = reg.observe(*hb, subjects::last_token(m.subject), std::chrono::steady_clock::now());
  if (obs.what == worker_registry::change::refused) {
    ++refused_total_;
    if (refusals_.size() > 4096) refusals_.clear();  // bounded: forged ids must not grow it
    auto n = ++refusals_[hb->instance_id];
    if (power_of_two(n)) log_->warn("heartbeat refused ({} so far for this id): {}", n, obs.why);
  }
  return taken{std::move(*hb), std::move(obs)};
}

void worker_liveness::on_status_reply(worker_registry& reg, const transport::nats_message& m) {
  if (m.no_responders) return;  // nobody listens on that worker's subject: stays unanswered
  auto hb = msg::decode_auto<msg::heartbeat>(m.data, m.content_type, limits_);
  if (!hb) {
    log_->warn("bad status answer on {}: {}", m.subject, hb.err().describe());
    return;
  }
  auto id = subjects::last_token(m.subject);
  if (hb->instance_id != id) {
    log_->warn("status answer for '{}' names '{}': ignored", id, hb->instance_id);
    return;
  }
  reg.mark_answered(id, hb->incarnation);
}

void worker_liveness::probe(worker_registry& reg, std::chrono::steady_clock::time_point now,
                            std::chrono::milliseconds every) {
  for (const auto& id : reg.due_for_probe(now, every))
    conn_->publish(subjects::worker_status(ns_, id), "{}", probe_inbox_ + "." + id, "application/json");
}

void request_roster(transport::nats_connection& conn, const std::string& ns) {
  conn.publish(subjects::roster(ns), "{}", {}, "application/json");
}

}  // namespace yard::actors
