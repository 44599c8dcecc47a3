#include "tools/commands.hpp"
#include <cstdio>
namespace yard::cmd {
int run_bench_overhead(int, char**) { std::fprintf(stderr, "being written\n"); return 1; }
}
