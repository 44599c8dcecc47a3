#include "actors/router_metrics.hpp"

namespace yard::actors {

void router_metrics::render(prom::exposition& out) const {
  const prom::labels r{{"router", router_id}};
  const prom::labels rp{{"router", router_id}, {"policy", policy}};
  decisions.render(out, "yard_router_decisions_total", "Requests routed, by policy, pool and chosen worker.", rp);
  failures.render(out, "yard_router_request_failures_total", "Requests the router answered with an error, by reason.", r,
                  {{"no_worker"}});
  overlap_blocks.render(out, "yard_router_overlap_blocks", "Cached prefix blocks (device tier) on the chosen worker.", rp);
  predicted_ttft_seconds.render(out, "yard_router_predicted_ttft_seconds",
                                "Time to first token the ttft policy predicted for its choice.", rp);
  observed_ttft_seconds.render(out, "yard_router_observed_ttft_seconds",
                               "Time to first token the frontends observed (their latency reports).", r);
  kv_event_lag_seconds.render(out, "yard_router_kv_event_lag_seconds",
                              "KV event batch age on arrival (worker clock to router clock).", r);
  out.counter("yard_router_kv_event_batches_total", "KV event batches received.", r, double(kv_event_batches.load()));
  out.counter("yard_router_kv_events_total", "KV block events received.", r, double(kv_events.load()));
  out.counter("yard_router_kv_resyncs_total", "KV snapshots requested (join, gap, overflow).", r, double(kv_resyncs.load()));
  out.counter("yard_router_kv_snapshots_applied_total", "KV snapshots applied.", r, double(kv_snapshots_applied.load()));
  out.counter("yard_router_kv_new_streams_total", "Workers whose KV stream started over (a restart's batch 0).", r,
              double(kv_new_streams.load()));
  out.gauge("yard_router_kv_events_queued", "KV block events received and not yet applied.", r, double(kv_events_queued.load()));
  out.gauge("yard_router_indexed_blocks", "Distinct block hashes in the KV index.", r, double(indexed_blocks.load()));
  out.gauge("yard_router_workers", "Workers this router holds a live lease for.", r, double(workers.load()));
  out.gauge("yard_router_approximate_workers",
            "Workers routed without an exact KV view (approximate mode or a tokenizer mismatch).", r,
            double(approximate_workers.load()));
  out.counter("yard_router_tokenizer_mismatches_total", "Worker incarnations whose tokenizer differs from the router's.", r,
              double(tokenizer_mismatches.load()));
  out.counter("yard_router_refused_heartbeats_total", "Heartbeats refused (wrong subject, bad body).", r,
              double(refused_heartbeats.load()));
  out.gauge("yard_router_held_requests", "Requests waiting for a worker.", r, double(held_requests.load()));
  out.gauge("yard_router_tracked_requests", "Dispatches the load tracker still counts.", r, double(tracked_requests.load()));
  out.gauge("yard_router_sessions", "session_id conversations held.", r, double(sessions.load()));
  out.counter("yard_router_session_sticky_hits_total", "session_id requests kept on their worker.", r,
              double(sticky_hits.load()));
  out.counter("yard_router_session_sticky_breaks_total", "session_id requests moved (overload, worker gone).", r,
              double(sticky_breaks.load()));
}

}  // namespace yard::actors
