#include "cluster/agent/agent_metrics.hpp"

#include <cstdlib>
#include <map>

namespace yard::cluster {

int exit_code_of(const std::string& last_exit) {
  auto num = [&](std::size_t from) { return std::atoi(last_exit.c_str() + from); };
  if (last_exit.rfind("exit ", 0) == 0) return num(5);
  if (last_exit.rfind("signal ", 0) == 0) return 128 + num(7);
  return -1;
}

void render_agent_children(prom::exposition& out, const std::string& node, const std::vector<child_info>& children) {
  // Every (group, state) pair of a group present, so a state that empties shows 0 instead of vanishing.
  std::map<std::string, std::map<std::string, int>> by_group;
  for (const auto& c : children) {
    auto& states = by_group[c.group];
    for (auto s : {child_state::running, child_state::backoff, child_state::stopping, child_state::stopped,
                   child_state::failed})
      states.emplace(to_string(s), 0);
    states[to_string(c.state)]++;
  }
  out.family("yard_agent_children", "gauge", "Worker processes this agent holds, by group (role) and state.");
  for (const auto& [group, states] : by_group)
    for (const auto& [state, n] : states)
      out.sample("yard_agent_children", {{"node", node}, {"group", group}, {"state", state}}, n);
  out.family("yard_agent_child_restarts_total", "counter", "Restarts of one worker process since the agent started.");
  out.family("yard_agent_child_last_exit_code", "gauge",
             "Exit code of the worker process's last exit (128+N for signal N; -1 before any exit).");
  out.family("yard_agent_child_up", "gauge", "1 while the worker process runs.");
  for (const auto& c : children) {
    prom::labels l{{"node", node}, {"child", c.name}, {"group", c.group}};
    out.sample("yard_agent_child_restarts_total", l, c.restarts);
    out.sample("yard_agent_child_last_exit_code", l, exit_code_of(c.last_exit));
    out.sample("yard_agent_child_up", l, c.state == child_state::running ? 1 : 0);
  }
}

}  // namespace yard::cluster
