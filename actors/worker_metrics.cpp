#include "actors/worker_metrics.hpp"

namespace yard::actors {

void worker_metrics::set_load(const msg::load_report& load, bool draining) {
  std::lock_guard<std::mutex> lock(mu_);
  load_ = load;
  draining_ = draining;
}

void render_worker_load(prom::exposition& out, const prom::labels& l, const msg::load_report& w, bool draining,
                        std::optional<std::uint64_t> block_bytes) {
  out.gauge("yard_worker_draining", "1 while the worker drains (takes no new work).", l, draining ? 1 : 0);
  out.gauge("yard_worker_active_requests", "Sequences being decoded.", l, w.active_requests);
  out.gauge("yard_worker_queued_requests", "Requests waiting for admission.", l, w.queued_requests);
  out.gauge("yard_worker_pending_prefill_tokens", "Prompt tokens not yet prefilled.", l, double(w.pending_prefill_tokens));
  out.gauge("yard_worker_kv_blocks_active", "G1 KV blocks referenced by live sequences.", l, w.active_kv_blocks);
  out.gauge("yard_worker_kv_blocks_capacity", "G1 KV pool capacity in blocks.", l, w.total_kv_blocks);
  out.gauge("yard_worker_kv_blocks_g2", "KV blocks held in the host tier (G2).", l, double(w.tiers.g2_kv_blocks));
  out.gauge("yard_worker_kv_blocks_g3", "KV blocks held in the disk tier (G3).", l, double(w.tiers.g3_kv_blocks));
  const char* tiers_help = "KV blocks held now, by tier (g1: referenced by live sequences; g2 host; g3 disk).";
  for (auto [tier, n] : {std::pair<const char*, double>{"g1", w.active_kv_blocks}, {"g2", double(w.tiers.g2_kv_blocks)},
                         {"g3", double(w.tiers.g3_kv_blocks)}}) {
    auto lt = l;
    lt.emplace_back("tier", tier);
    out.gauge("yard_worker_kv_blocks", tiers_help, lt, n);
  }
  out.counter("yard_worker_kv_offloaded_blocks_total", "KV blocks copied down from G1 on eviction.", l,
              double(w.tiers.kv_offloaded_blocks));
  out.counter("yard_worker_kv_onboarded_blocks_total", "KV blocks brought back into G1 from G2/G3.", l,
              double(w.tiers.kv_onboarded_blocks));
  if (block_bytes) {
    out.counter("yard_worker_kv_offloaded_bytes_total", "Bytes of KV blocks copied down from G1 (0: an engine without block bytes).", l,
                double(w.tiers.kv_offloaded_blocks) * double(*block_bytes));
    out.counter("yard_worker_kv_onboarded_bytes_total", "Bytes of KV blocks brought back into G1 (0: an engine without block bytes).", l,
                double(w.tiers.kv_onboarded_blocks) * double(*block_bytes));
  }
  out.counter("yard_worker_g3_dropped_writes_total", "G3 writes refused because the disk fell behind.", l,
              double(w.tiers.g3_dropped_writes));
  out.gauge("yard_worker_g3_disabled", "1 when G3 failed (disk full, I/O error) and runs degraded.", l,
            w.tiers.g3_disabled ? 1 : 0);
}

void worker_metrics::render(prom::exposition& out) const {
  const prom::labels l{{"worker", worker_id}, {"role", role}, {"model", model}};
  {
    std::lock_guard<std::mutex> lock(mu_);
    render_worker_load(out, l, load_, draining_, kv_block_bytes.load());
  }
  step_seconds.render(out, "yard_worker_step_duration_seconds", "Engine step time (compute, or the emulated model time).", l);
  batch_size.render(out, "yard_worker_batch_size", "Sequences that produced output in one engine step.", l);
  out.counter("yard_worker_steps_total", "Engine steps run.", l, double(steps.load()));
  out.counter("yard_worker_requests_admitted_total", "Requests this worker admitted.", l, double(admitted.load()));
  out.counter("yard_worker_requests_rejected_total", "Requests refused at admission (bad request, draining, duplicate).", l,
              double(rejected.load()));
  out.counter("yard_worker_migrations_received_total", "Requests taken over from another worker (resume tokens).", l,
              double(migrations_received.load()));
  out.counter("yard_worker_output_tokens_total", "Tokens generated.", l, double(output_tokens.load()));
  out.counter("yard_worker_remote_prefills_total", "Prompts sent to a prefill worker (decode side).", l,
              double(remote_prefills.load()));
  out.counter("yard_worker_remote_prefills_served_total", "Remote prefills computed here (prefill side).", l,
              double(remote_prefills_served.load()));
  local_fallbacks.render(out, "yard_worker_local_prefill_fallbacks_total",
                         "Remote prefills abandoned and prefilled here, by cause.", l,
                         {{fallback_timeout}, {fallback_remote_error}, {fallback_pull_failed}});
  out.counter("yard_worker_kv_transfer_bytes_total", "KV bytes pulled from prefill workers over UCX.", l,
              double(kv_transfer_bytes.load()));
  out.counter("yard_worker_kv_transfer_blocks_total", "KV blocks pulled from prefill workers over UCX.", l,
              double(kv_transfer_blocks.load()));
  out.counter("yard_worker_kv_transfer_failures_total", "KV pulls that failed or did not verify.", l,
              double(kv_transfer_failures.load()));
  kv_transfer_seconds.render(out, "yard_worker_kv_transfer_duration_seconds", "One KV pull, start to verified.", l);
}

}  // namespace yard::actors
