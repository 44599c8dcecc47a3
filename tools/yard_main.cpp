// tools/yard_main.cpp — `yard`, the single Switchyard executable.
//
// Owns: the subcommand table and dispatch. Everything else lives in modules;
// each subcommand parses its own flags.
#include <malloc.h>

#include <cstdio>
#include <csignal>
#include <cstring>
#include <string>

#include "tools/commands.hpp"

namespace {

using yard::cmd::command;

const command commands[] = {
    {"up", yard::cmd::run_up, "start a local cluster (embedded nats-server, frontend, router, workers)"},
    {"worker", yard::cmd::run_worker, "run one worker against --nats URL"},
    {"router", yard::cmd::run_router, "run one router against --nats URL"},
    {"frontend", yard::cmd::run_frontend, "run the OpenAI-compatible HTTP frontend against --nats URL"},
    {"bench overhead", yard::cmd::run_bench_overhead, "frontend->router->worker round trip vs bare NATS request/reply"},
    {"bench edge", yard::cmd::run_bench_edge, "HTTP edge: idle SSE streams held (RSS each), p50 with them, RPS at 64 clients, vs bare NATS"},
    {"bench indexer", yard::cmd::run_bench_indexer, "KV indexer ingest and match latency vs a naive baseline, Mooncake trace replay"},
    // <cmd-router>
    {"sim", yard::cmd::run_sim, "replay a trace through N simulated workers per router policy (table, CSV, PNG, --sweep)"},
    // <cmd-sim>
    {"mkmodel", yard::cmd::run_mkmodel, "write a random-weight HF-format Llama-family model folder"},
    {"bench engine", yard::cmd::run_bench_engine, "native engine decode/prefill tokens/s vs the memory-bandwidth bound"},
    // <cmd-native>
    {"bench transfer", yard::cmd::run_bench_transfer, "UCX KV transfer vs ucx_perftest"},
    {"bench disagg", yard::cmd::run_bench_disagg, "aggregated vs disaggregated prefill/decode: ITL p99, TTFT p50/p99"},
    // <cmd-ucx>
    {"bench tiers", yard::cmd::run_bench_tiers, "KV tiers: TTFT on vs off, G3 vs sequential disk"},
    {"bench g1", yard::cmd::run_bench_g1, "G1 pool in the kv_block_manager actor vs in the engine's thread: overhead per step"},
    // <cmd-tiers>
    {"agent", yard::cmd::run_agent, "node agent: start and supervise this node's workers from a config file"},
    {"planner", yard::cmd::run_planner, "SLO planner: scale prefill/decode workers to meet TTFT/ITL targets"},
    {"bus-config", yard::cmd::run_bus_config, "print a nats-server config with per-role users and permissions (hardened bus)"},
    {"api-key", yard::cmd::run_api_key, "make an API key for a tenant and print its line for --api-keys"},
    {"tree", yard::cmd::run_tree, "print every process's supervision tree (actors, state, restarts, uptime)"},
    // <cmd-cluster>
};

void usage() {
  std::printf("usage: yard COMMAND [options]   (yard COMMAND --help for its options)\n\ncommands:\n");
  for (const auto& c : commands) std::printf("  %-18s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  // KV blocks (MiBs each) are allocated and freed all the time (offload to G2, G3 reads,
  // transfers). Served by mmap, each one would fault its pages in afresh: on a VM that
  // costs more than copying the block. Chunks up to 64 MiB come from the heap and are
  // reused; the heap gives memory back past 512 MiB free at its top.
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 512 << 20);
  // A peer that closes its socket (HTTP clients, upstream servers, UCX's TCP transport) is an error value on the
  // write, never the end of the process.
  ::signal(SIGPIPE, SIG_IGN);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage();
    return argc < 2 ? 2 : 0;
  }
  // Two-word commands ("bench indexer") first, then one-word ones.
  if (argc >= 3) {
    std::string two = std::string(argv[1]) + " " + argv[2];
    for (const auto& c : commands)
      if (two == c.name) {
        argv[2] = const_cast<char*>(c.name);
        return c.fn(argc - 2, argv + 2);
      }
  }
  for (const auto& c : commands)
    if (!std::strcmp(argv[1], c.name)) return c.fn(argc - 1, argv + 1);
  std::fprintf(stderr, "yard: unknown command '%s'\n\n", argv[1]);
  usage();
  return 2;
}
