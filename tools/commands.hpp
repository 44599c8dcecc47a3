// tools/commands.hpp — the `yard` subcommands, one declaration each.
//
// Each subcommand is `int run_X(int argc, char** argv)` with argv[0] being the
// subcommand name (so CLI11 parses the rest); it returns the process exit code.
// The implementation lives in the module that owns the feature.
#pragma once

namespace yard::cmd {

using command_fn = int (*)(int argc, char** argv);

struct command {
  const char* name;      // "up", "bench indexer", ...
  command_fn fn;
  const char* summary;   // one line for `yard --help`
};

// foundation (cluster/, actors/)
int run_up(int argc, char** argv);
int run_worker(int argc, char** argv);
int run_router(int argc, char** argv);
int run_frontend(int argc, char** argv);
int run_bench_overhead(int argc, char** argv);
int run_bench_edge(int argc, char** argv);
int run_bench_indexer(int argc, char** argv);
// <decl-router>
int run_sim(int argc, char** argv);
// <decl-sim>
int run_mkmodel(int argc, char** argv);
int run_bench_engine(int argc, char** argv);
// <decl-native>
int run_bench_transfer(int argc, char** argv);
int run_bench_disagg(int argc, char** argv);
// <decl-ucx>
int run_bench_tiers(int argc, char** argv);
int run_bench_g1(int argc, char** argv);
// <decl-tiers>
int run_agent(int argc, char** argv);
int run_planner(int argc, char** argv);
int run_bus_config(int argc, char** argv);
int run_api_key(int argc, char** argv);
int run_tree(int argc, char** argv);
// <decl-cluster>

}  // namespace yard::cmd
