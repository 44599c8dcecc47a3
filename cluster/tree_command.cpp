// cluster/tree_command.cpp — `yard tree`: every process's supervision tree.
//
// Owns: one request on yard.<ns>.node.tree (or one node's subject with
// --node), gathering every answer until --timeout-ms, and printing them as an
// indented tree (or one JSON document per node with --json).
// Must not touch: the trees themselves (actors/supervisor answers them).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cluster/process_options.hpp"
#include "messages/cluster.hpp"
#include "messages/cluster_subjects.hpp"
#include "messages/codec.hpp"
#include "tools/commands.hpp"

namespace yard::cmd {

namespace {

void print_tree(const msg::node_tree& t) {
  std::printf("%s (pid %d, up %.0f s; restarts: at most %u in %.0f s, then the process exits)\n", t.node.c_str(), t.pid,
              t.uptime_s, t.max_restarts, t.window_s);
  for (std::size_t i = 0; i < t.actors.size(); ++i) {
    const auto& a = t.actors[i];
    std::printf("  %s %-24s %-8s restarts=%u uptime=%.0fs%s%s\n", i + 1 == t.actors.size() ? "└─" : "├─", a.name.c_str(),
                a.state.c_str(), a.restarts, a.uptime_s, a.last_exit.empty() ? "" : " last_exit=", a.last_exit.c_str());
  }
}

}  // namespace

int run_tree(int argc, char** argv) {
  CLI::App app{"yard tree: print the supervision tree of every process on the bus"};
  cluster::process_options proc;
  std::string node;
  int timeout_ms = 1000;
  bool json = false;
  proc.log.level = "warn";  // the output is the tree; --log-level still overrides
  cluster::add_process_flags(app, proc, true);
  app.add_option("--node", node, "ask only this node id")->check(cluster::subject_token_check());
  app.add_option("--timeout-ms", timeout_ms, "how long to gather answers")->capture_default_str();
  app.add_flag("--json", json, "print each node's tree as one JSON line");
  CLI11_PARSE(app, argc, argv);
  cluster::finish_process_options(proc, "yard-tree");
  auto conn = transport::nats_connection::connect(proc.nats);
  if (!conn) {
    std::fprintf(stderr, "yard tree: %s\n", conn.err().describe().c_str());
    return 1;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<msg::node_tree> trees;
  int bad = 0;
  auto inbox = (*conn)->new_inbox();
  auto sub = (*conn)->subscribe(inbox, [&](transport::nats_message m) {
    std::lock_guard<std::mutex> lock(mu);
    if (m.no_responders) return;
    auto t = msg::decode_auto<msg::node_tree>(m.data, m.content_type);
    if (t) trees.push_back(std::move(*t));
    else bad++;
    cv.notify_all();
  });
  if (!sub) {
    std::fprintf(stderr, "yard tree: %s\n", sub.err().describe().c_str());
    return 1;
  }
  (*conn)->flush();
  auto subject = node.empty() ? subjects::node_tree_all(proc.ns) : subjects::node_tree(proc.ns, node);
  if (auto s = (*conn)->publish(subject, "{}", inbox, "application/json"); !s) {
    std::fprintf(stderr, "yard tree: %s\n", s.err().describe().c_str());
    return 1;
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !node.empty() && !trees.empty(); });
  std::sort(trees.begin(), trees.end(), [](const auto& a, const auto& b) { return a.node < b.node; });
  for (auto& t : trees) {
    if (json) std::printf("%s\n", msg::encode(t, msg::wire_format::json).c_str());
    else print_tree(t);
  }
  if (bad) std::fprintf(stderr, "yard tree: %d malformed answers ignored\n", bad);
  if (trees.empty()) {
    std::fprintf(stderr, "yard tree: no node answered on %s within %d ms\n", subject.c_str(), timeout_ms);
    return 1;
  }
  return 0;
}

}  // namespace yard::cmd
