// bench/g1_bench.cpp — `yard bench g1`: what it costs that a worker's G1 block pool lives in its
// kv_block_manager actor (every block question a message) instead of in the engine's own thread.
//
// Owns: the workload and its report. Must not touch: the pool, the manager, the scheduler (it drives a
// backends::mock_engine, whose executor computes nothing, so the measured time is scheduling and G1 alone:
// the worst case for the actor; a real engine's step adds its compute on top of the same overhead).
// Thread-safety: the calling thread is the engine's; the manager runs on its own thread, as in a worker.
//
// Each rep runs the same workload twice, interleaved: the engine with its own pool (the limit: a direct call),
// then an engine whose pool was handed to a kv_block_manager (as spawn_worker does), draining after each step
// as the worker does (the manager publishes the events on a real embedded nats-server). The workload: --requests
// requests added at once, prompts of --prompt tokens whose first --shared are shared by groups of 8, --output
// tokens each, 16-token blocks, a pool of --blocks blocks (default: about 60% of the working set, so admission
// waits, prefix hits and evictions all happen). Reported: median wall µs per step of each, the overhead per step,
// manager calls per step, µs per call, the step-time ratio, and whether both produced the same tokens.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <caf/all.hpp>

#include "actors/g1_pool_client.hpp"
#include "backends/mock/mock_engine.hpp"
#include "common/log.hpp"
#include "messages/subjects.hpp"
#include "tools/commands.hpp"
#include "transport/nats_server_process.hpp"

namespace yard::cmd {
namespace {

using clock = std::chrono::steady_clock;

struct g1_run {
  double wall_us = 0;
  std::size_t steps = 0;
  std::uint64_t calls = 0;
  std::vector<std::vector<backends::token_id>> tokens;  // per request
};

struct workload {
  int requests = 64, prompt = 512, shared = 256, output = 64;
  std::uint32_t blocks = 0;
};

g1_run run_once(const workload& w, caf::actor_system* sys, transport::nats_connection* conn) {
  backends::mock_engine_options mo;
  mo.per_token_delay_ms = 0.001;
  mo.block_size = 16;
  mo.num_blocks = w.blocks;
  mo.max_context = static_cast<std::uint32_t>(w.prompt + w.output + 16);
  backends::mock_engine eng(mo);
  actors::kv_block_manager_actor manager;
  actors::g1_pool_client* client = nullptr;
  if (sys) {
    eng.hand_over_g1([&](std::unique_ptr<kv::block_pool> pool) -> std::unique_ptr<kv::block_allocator> {
      auto c = std::make_unique<actors::g1_pool_client>(*pool);
      manager = actors::spawn_kv_block_manager(*sys, *conn, {"bench", subjects::kv_events("bench", "g1")}, nullptr,
                                               std::move(pool));
      c->bind(manager);
      client = c.get();
      return c;
    });
  }
  g1_run r;
  r.tokens.resize(static_cast<std::size_t>(w.requests));
  const auto t0 = clock::now();
  for (int i = 0; i < w.requests; ++i) {
    backends::engine_request q;
    q.request_id = std::to_string(i);
    for (int t = 0; t < w.prompt; ++t)
      q.prompt.push_back(static_cast<backends::token_id>(t < w.shared ? 1000 + (i / 8) * 7 + t % 97 : 5000 + i * 131 + t));
    q.max_tokens = static_cast<std::uint32_t>(w.output);
    if (auto s = eng.add_request(q); !s) std::fprintf(stderr, "bench g1: %s\n", s.err().describe().c_str());
  }
  while (eng.has_work() && r.steps < 1000000) {
    for (auto& o : eng.step().outputs) {
      auto& v = r.tokens[std::stoul(o.request_id)];
      v.insert(v.end(), o.new_tokens.begin(), o.new_tokens.end());
    }
    eng.drain_kv_events();  // after each step, as a worker does
    ++r.steps;
  }
  r.wall_us = std::chrono::duration<double, std::micro>(clock::now() - t0).count();
  if (client) r.calls = client->calls();
  if (manager) caf::anon_send_exit(manager, caf::exit_reason::user_shutdown);
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int run_bench_g1(int argc, char** argv) {
  CLI::App app{"yard bench g1: a worker's G1 pool in its kv_block_manager actor vs in the engine's thread"};
  workload w;
  int reps = 5;
  app.add_option("--requests", w.requests, "requests added at once")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--prompt", w.prompt, "prompt tokens each")->capture_default_str()->check(CLI::Range(1, 65536));
  app.add_option("--shared", w.shared, "leading prompt tokens shared by groups of 8 requests")
      ->capture_default_str()
      ->check(CLI::Range(0, 65536));
  app.add_option("--output", w.output, "output tokens each")->capture_default_str()->check(CLI::Range(1, 65536));
  app.add_option("--blocks", w.blocks, "G1 pool blocks (0 = about 60% of the working set)")->check(CLI::Range(0, 1 << 24));
  app.add_option("--reps", reps, "interleaved repetitions (medians)")->capture_default_str()->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);
  configure_logging({"warn", false});
  w.shared = std::min(w.shared, w.prompt);
  const std::uint32_t per_request = static_cast<std::uint32_t>((w.prompt + w.output + 15) / 16 + 1);
  if (w.blocks == 0) w.blocks = std::max<std::uint32_t>(per_request * 2, per_request * w.requests * 6 / 10);
  if (w.blocks < per_request + 1) {
    std::fprintf(stderr, "bench g1: --blocks %u cannot hold one request (%u blocks)\n", w.blocks, per_request);
    return 2;
  }

  auto server = transport::nats_server_process::start({});
  if (!server) {
    std::fprintf(stderr, "bench g1: %s\n", server.err().describe().c_str());
    return 1;
  }
  transport::nats_options no;
  no.servers = {(*server)->url()};
  auto conn = transport::nats_connection::connect(no);
  if (!conn) {
    std::fprintf(stderr, "bench g1: %s\n", conn.err().describe().c_str());
    return 1;
  }
  caf::actor_system_config cfg;
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};

  std::vector<double> local_us, actor_us, calls_per_step, us_per_call_overhead;
  bool identical = true;
  std::size_t steps = 0;
  for (int rep = 0; rep < reps; ++rep) {
    auto a = run_once(w, nullptr, nullptr);
    auto b = run_once(w, &sys, conn->get());
    identical = identical && a.tokens == b.tokens && a.steps == b.steps;
    steps = a.steps;
    const double la = a.wall_us / double(a.steps), lb = b.wall_us / double(b.steps);
    local_us.push_back(la);
    actor_us.push_back(lb);
    calls_per_step.push_back(double(b.calls) / double(b.steps));
    us_per_call_overhead.push_back(b.calls ? (b.wall_us - a.wall_us) / double(b.calls) : 0);
    std::printf("rep %d: %zu steps, local %.1f us/step, actor %.1f us/step, %.2f calls/step\n", rep, a.steps, la, lb,
                double(b.calls) / double(b.steps));
  }
  const double l = median(local_us), m = median(actor_us);
  std::printf("workload: %d requests x (%d prompt, %d shared, %d output) tokens, %u G1 blocks of 16, %zu steps\n",
              w.requests, w.prompt, w.shared, w.output, w.blocks, steps);
  std::printf("g1: local_us_per_step=%.1f actor_us_per_step=%.1f overhead_us_per_step=%.1f calls_per_step=%.2f "
              "us_per_call=%.1f step_ratio=%.2f outputs=%s\n",
              l, m, m - l, median(calls_per_step), median(us_per_call_overhead), m / l,
              identical ? "identical" : "DIFFERENT");
  return identical ? 0 : 1;
}

}  // namespace yard::cmd
