// cluster/disagg_flags.cpp — see disagg_flags.hpp.
#include "cluster/disagg_flags.hpp"

namespace yard::cluster {

void add_disagg_flags(CLI::App& app, actors::worker_config& wc) {
  auto* g = app.add_option_group("disaggregation", "prefill/decode workers (--role prefill|decode)");
  g->add_option("--remote-prefill-min-tokens", wc.remote_prefill_min_tokens,
                "decode: prefill remotely only when the uncached prompt has at least this many tokens")
      ->capture_default_str();
  g->add_option("--prefill-queue-limit", wc.prefill_queue_limit,
                "decode: prefill remotely only while a prefill worker has fewer requests than this")
      ->capture_default_str();
  g->add_option("--remote-prefill-timeout-ms", wc.remote_prefill_timeout_ms,
                "decode: no prefill reply by then -> prefill locally")
      ->capture_default_str();
  g->add_option("--kv-staging-mb", wc.transfer.staging_mb, "registered KV staging memory for transfers (MiB)")
      ->capture_default_str();
  g->add_option("--ucx-tls", wc.transfer.ucx_transports, "UCX transports for KV transfer (UCX_TLS list)")
      ->capture_default_str();
  g->add_option("--kv-lease-ms", wc.transfer.lease_ms, "prefill: staged blocks are freed after this long unreleased")
      ->capture_default_str();
  g->add_option("--kv-pull-timeout-ms", wc.transfer.pull_timeout_ms, "decode: limit of one KV pull")
      ->capture_default_str();
  g->add_flag("--no-kv-checksums{false}", wc.transfer.checksums, "skip per-block xxh3 checksums of transferred KV");
  g->add_option_function<std::string>(
       "--fault",
       [&wc](const std::string& name) {
         auto f = actors::make_prefill_faults(name);
         if (!f) throw CLI::ValidationError("--fault", f.err().message);
         wc.faults = std::move(*f);
       },
       "testing only: drop-release | corrupt-block | exit-after-reply")
      ->check(CLI::IsMember({"", "drop-release", "corrupt-block", "exit-after-reply"}));
}

}  // namespace yard::cluster
