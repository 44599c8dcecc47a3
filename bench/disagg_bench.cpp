// bench/disagg_bench.cpp — `yard bench disagg`: aggregated vs disaggregated serving, same worker count.
//
// Owns: one run that serves the same mixed workload twice on one nats-server:
// (a) aggregated — N workers of role "both"; (b) disaggregated — N/2 prefill
// and N/2 decode workers, KV moved over UCX. Workers run the mock engine in
// profile mode (the default timing profile: prefill cost grows with prompt
// length, a step that prefills stalls every decode in the batch) with
// synthetic KV bytes, so the transfer moves real data. The workload: a fixed
// number of closed-loop "chat" streams (short prompt, long output) decode the
// whole time while long prompts (unique, so never cached) arrive open-loop.
// Measured at the client over NATS: inter-token latency of every stream, TTFT
// of the long prompts. Ends with `disagg: agg_itl_p99_ms=.. disagg_itl_p99_ms=..
// agg_ttft_p50_ms=.. disagg_ttft_p50_ms=.. agg_ttft_p99_ms=.. disagg_ttft_p99_ms=..
// itl_p99_ratio=agg/disagg ...`.
// Must not touch: the components' behaviour (it only configures and drives them).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "backends/mock/mock_engine.hpp"
#include "bench/bench_baseline.hpp"
#include "cluster/node_runtime.hpp"
#include "messages/codec.hpp"
#include "messages/subjects.hpp"
#include "tools/commands.hpp"
#include "transport/nats_server_process.hpp"

namespace yard::cmd {

namespace {

using clock = std::chrono::steady_clock;

struct disagg_args {
  int workers = 2;              // per mode (even; half prefill, half decode when disaggregated)
  int chat_streams = 8;         // closed-loop decode streams
  int chat_prompt = 64;         // tokens
  int chat_tokens = 128;        // output tokens per chat request
  int long_prompt = 4096;       // tokens
  int long_tokens = 16;
  int long_interval_ms = 300;   // one long prompt every this many ms
  double seconds = 8;           // measured time per mode
  int kv_block_kib = 128;       // synthetic KV bytes per block
  std::string ucx_tls = "tcp";
};

struct mode_result {
  std::vector<double> itl_ms, ttft_ms;
  std::size_t completed = 0, failed = 0, remote_prefills = 0;
};

// Drives one mode: the client lives on its own NATS connection.
class workload {
 public:
  workload(transport::nats_connection& conn, std::string ns, const disagg_args& a) : conn_(conn), ns_(std::move(ns)), a_(a) {}

  mode_result run() {
    inbox_ = conn_.new_inbox();
    auto sub = conn_.subscribe(inbox_ + ".*", [this](transport::nats_message m) { on_chunk(m); });
    if (!sub) return {};
    conn_.flush();
    start_ = clock::now();
    measure_from_ = start_ + std::chrono::milliseconds(500);  // warm-up: streams reach steady state
    for (int i = 0; i < a_.chat_streams; ++i) send(false);
    auto end = measure_from_ + std::chrono::milliseconds(static_cast<int>(a_.seconds * 1000));
    auto next_long = measure_from_;
    while (clock::now() < end) {
      if (clock::now() >= next_long) {
        send(true);
        next_long += std::chrono::milliseconds(a_.long_interval_ms);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    stopping_ = true;
    // Let the requests in flight finish (their tokens still count when sent in the window).
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lk(mu_);
        if (live_.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::lock_guard lk(mu_);
    res_.failed += live_.size();
    return res_;
  }

 private:
  struct live_request {
    bool is_long = false;
    clock::time_point sent, last;
    bool got_first = false;
  };

  void send(bool is_long) {
    msg::generate_request r;
    std::uint64_t id;
    {
      std::lock_guard lk(mu_);
      id = next_id_++;
      live_[id] = live_request{is_long, clock::now(), clock::now(), false};
    }
    r.request_id = ns_ + "-" + std::to_string(id);
    int n = is_long ? a_.long_prompt : a_.chat_prompt;
    std::vector<msg::token_id> toks(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) toks[static_cast<std::size_t>(i)] = static_cast<msg::token_id>(97 + (id * 7919 + static_cast<std::uint64_t>(i) * 31) % 26);
    r.token_ids = std::move(toks);
    r.max_tokens = static_cast<std::uint32_t>(is_long ? a_.long_tokens : a_.chat_tokens);
    conn_.publish(subjects::router_generate(ns_), msg::encode(r), inbox_ + "." + std::to_string(id));
  }

  void on_chunk(const transport::nats_message& m) {
    auto c = msg::decode<msg::token_chunk>(m.data, msg::wire_format::msgpack);
    if (!c) return;
    auto id = std::stoull(m.subject.substr(inbox_.size() + 1));
    auto now = clock::now();
    bool resend = false;
    {
      std::lock_guard lk(mu_);
      auto it = live_.find(id);
      if (it == live_.end()) return;
      auto& r = it->second;
      bool measured = now >= measure_from_;
      if (!c->token_ids.empty()) {
        if (!r.got_first) {
          r.got_first = true;
          if (r.is_long && measured) res_.ttft_ms.push_back(std::chrono::duration<double, std::milli>(now - r.sent).count());
        } else if (measured) {
          // One chunk per step: the gap is the inter-token latency of this stream.
          res_.itl_ms.push_back(std::chrono::duration<double, std::milli>(now - r.last).count() /
                                static_cast<double>(c->token_ids.size()));
        }
        r.last = now;
      }
      if (c->finish_reason || c->error) {
        if (c->error || *c->finish_reason == msg::finish_kind::error) res_.failed++;
        else res_.completed++;
        resend = !r.is_long && !stopping_;
        live_.erase(it);
      }
    }
    if (resend) send(false);
  }

  transport::nats_connection& conn_;
  std::string ns_;
  disagg_args a_;
  std::string inbox_;
  std::mutex mu_;
  std::map<std::uint64_t, live_request> live_;
  std::uint64_t next_id_ = 0;
  std::atomic<bool> stopping_{false};
  clock::time_point start_, measure_from_;
  mode_result res_;
};

std::unique_ptr<backends::engine> bench_engine(const disagg_args& a) {
  auto o = backends::mock_options_from_profile(backends::default_profile());
  o.kv_block_bytes = static_cast<std::uint32_t>(a.kv_block_kib) * 1024u;
  return std::make_unique<backends::mock_engine>(o);
}

result<mode_result> run_mode(const std::string& url, const std::string& ns, bool disaggregated, const disagg_args& a) {
  transport::nats_options no;
  no.servers = {url};
  auto rt = cluster::node_runtime::create(no);
  if (!rt) return rt.err();
  auto& node = **rt;
  for (int i = 0; i < a.workers; ++i) {
    actors::worker_config wc;
    wc.ns = ns;
    wc.model = "mock";
    wc.heartbeat_ms = 100;
    bool prefill = disaggregated && i >= a.workers / 2;
    wc.role = !disaggregated ? msg::worker_role::both : prefill ? msg::worker_role::prefill : msg::worker_role::decode;
    wc.id = ns + "-" + std::string(msg::wire_name(wc.role)) + "-" + std::to_string(i);
    wc.remote_prefill_min_tokens = static_cast<std::uint32_t>(std::min(a.long_prompt, 512));
    wc.transfer.staging_mb = 512;
    wc.transfer.ucx_transports = a.ucx_tls;
    if (auto w = node.add_worker(bench_engine(a), wc); !w) return w.err();
  }
  actors::router_config rc;
  rc.ns = ns;
  if (auto r = node.add_router(rc); !r) return r.err();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // heartbeats: router and decode workers see the pools
  auto client = transport::nats_connection::connect(no);
  if (!client) return client.err();
  workload w(**client, ns, a);
  auto res = w.run();
  node.shutdown();
  return res;
}

}  // namespace

int run_bench_disagg(int argc, char** argv) {
  CLI::App app{"yard bench disagg: aggregated vs disaggregated prefill/decode, same workers, same workload"};
  disagg_args a;
  app.add_option("--workers", a.workers, "workers per mode (even)")->capture_default_str();
  app.add_option("--chat-streams", a.chat_streams, "closed-loop decode streams")->capture_default_str();
  app.add_option("--chat-prompt", a.chat_prompt, "chat prompt tokens")->capture_default_str();
  app.add_option("--chat-tokens", a.chat_tokens, "chat output tokens")->capture_default_str();
  app.add_option("--long-prompt", a.long_prompt, "long prompt tokens")->capture_default_str();
  app.add_option("--long-tokens", a.long_tokens, "long request output tokens")->capture_default_str();
  app.add_option("--long-interval-ms", a.long_interval_ms, "a long prompt arrives every this many ms")->capture_default_str();
  app.add_option("--seconds", a.seconds, "measured seconds per mode")->capture_default_str();
  app.add_option("--kv-block-kib", a.kv_block_kib, "synthetic KV bytes per block (KiB)")->capture_default_str();
  app.add_option("--ucx-tls", a.ucx_tls, "UCX transports for the KV transfer")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (a.workers < 2 || a.workers % 2 != 0) {
    std::fprintf(stderr, "bench disagg: --workers must be even and >= 2\n");
    return 2;
  }
  configure_logging({"error", false});
  auto server = transport::nats_server_process::start({});
  if (!server) {
    std::fprintf(stderr, "bench disagg: %s\n", server.err().describe().c_str());
    return 1;
  }
  auto url = (*server)->url();
  std::printf("bench disagg: %d workers per mode, %d chat streams (%d+%d tokens), a %d-token prompt every %d ms, "
              "%.1f s per mode, %d KiB KV blocks over UCX %s\n",
              a.workers, a.chat_streams, a.chat_prompt, a.chat_tokens, a.long_prompt, a.long_interval_ms, a.seconds,
              a.kv_block_kib, a.ucx_tls.c_str());
  auto agg = run_mode(url, "agg", false, a);
  if (!agg) {
    std::fprintf(stderr, "bench disagg: aggregated: %s\n", agg.err().describe().c_str());
    return 1;
  }
  auto dis = run_mode(url, "dis", true, a);
  if (!dis) {
    std::fprintf(stderr, "bench disagg: disaggregated: %s\n", dis.err().describe().c_str());
    return 1;
  }
  auto row = [](const char* name, const mode_result& r) {
    std::printf("  %-14s itl p50 %7.2f ms  p99 %7.2f ms | long ttft p50 %7.1f ms  p99 %7.1f ms | %zu done, %zu failed\n",
                name, bench::pct(r.itl_ms, 0.5), bench::pct(r.itl_ms, 0.99), bench::pct(r.ttft_ms, 0.5), bench::pct(r.ttft_ms, 0.99), r.completed,
                r.failed);
  };
  row("aggregated", *agg);
  row("disaggregated", *dis);
  double ai = bench::pct(agg->itl_ms, 0.99), di = bench::pct(dis->itl_ms, 0.99);
  std::printf("disagg: agg_itl_p99_ms=%.2f disagg_itl_p99_ms=%.2f agg_ttft_p50_ms=%.1f disagg_ttft_p50_ms=%.1f "
              "agg_ttft_p99_ms=%.1f disagg_ttft_p99_ms=%.1f itl_p99_ratio=%.2f agg_itl_p50_ms=%.2f disagg_itl_p50_ms=%.2f "
              "failed=%zu\n",
              ai, di, bench::pct(agg->ttft_ms, 0.5), bench::pct(dis->ttft_ms, 0.5), bench::pct(agg->ttft_ms, 0.99), bench::pct(dis->ttft_ms, 0.99),
              di > 0 ? ai / di : 0.0, bench::pct(agg->itl_ms, 0.5), bench::pct(dis->itl_ms, 0.5), agg->failed + dis->failed);
  return agg->failed + dis->failed == 0 ? 0 : 1;
}

}  // namespace yard::cmd
