#include "actors/supervisor.hpp"

#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <map>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "common/log.hpp"
#include "messages/cluster_subjects.hpp"
#include "messages/codec.hpp"
#include "transport/actor_bridge.hpp"

namespace yard::actors {

namespace {

using clock = std::chrono::steady_clock;

struct child {
  child_spec spec;
  caf::actor current;                 // null once stopped or failed
  std::string state = "running";      // running | stopped | failed
  clock::time_point started = clock::now();
  std::deque<clock::time_point> recent;  // restarts inside the window
  std::uint32_t restarts = 0;
  std::string last_exit;
};

struct supervisor_state {
  supervisor_config cfg;
  std::map<std::string, child> children;  // by name
  clock::time_point started = clock::now();
  bool escalated = false;
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "supervisor";
};

using supervisor_actor = caf::stateful_actor<supervisor_state>;

double seconds_since(clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); }

msg::node_tree tree_of(const supervisor_state& st) {
  msg::node_tree t;
  t.node = st.cfg.node_id;
  t.pid = static_cast<std::int32_t>(::getpid());
  t.uptime_s = seconds_since(st.started);
  t.max_restarts = st.cfg.policy.max_restarts;
  t.window_s = st.cfg.policy.window_ms / 1000.0;
  for (const auto& [name, c] : st.children)
    t.actors.push_back({name, c.spec.kind, c.state, c.restarts, c.state == "running" ? seconds_since(c.started) : 0.0,
                        c.last_exit});
  return t;
}

void escalate(supervisor_actor* self, child& c, const std::string& why) {
  auto& st = self->state;
  c.state = "failed";
  c.current = nullptr;
  if (st.escalated) return;
  st.escalated = true;
  st.log->critical("{}: escalating past this process: {}", st.cfg.node_id, why);
  st.cfg.escalate(c.spec.name + ": " + why);
}

// One-for-one: only the child that ended is started again.
void on_down(supervisor_actor* self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto it = std::find_if(st.children.begin(), st.children.end(),
                         [&](const auto& kv) { return kv.second.current && kv.second.current.address() == dm.source; });
  if (it == st.children.end()) return;  // an incarnation we already replaced
  auto& c = it->second;
  c.last_exit = self->system().render(dm.reason);
  c.current = nullptr;
  if (dm.reason == caf::exit_reason::user_shutdown || dm.reason == caf::exit_reason::normal || !dm.reason) {
    c.state = "stopped";
    st.log->info("{} stopped ({})", c.spec.name, c.last_exit);
    return;
  }
  st.log->error("{} ended abnormally: {}", c.spec.name, c.last_exit);
  if (!c.spec.start) return escalate(self, c, "ended (" + c.last_exit + ") and cannot be rebuilt in this process");
  auto now = clock::now();
  auto window = std::chrono::milliseconds(st.cfg.policy.window_ms);
  while (!c.recent.empty() && now - c.recent.front() > window) c.recent.pop_front();
  if (c.recent.size() >= st.cfg.policy.max_restarts)
    return escalate(self, c,
                    "ended (" + c.last_exit + ") after " + std::to_string(c.recent.size()) + " restarts in " +
                        std::to_string(st.cfg.policy.window_ms) + " ms");
  auto fresh = c.spec.start();
  if (!fresh) return escalate(self, c, "restart failed: " + fresh.err().describe());
  c.recent.push_back(now);
  c.restarts++;
  c.current = *fresh;
  c.started = now;
  c.state = "running";
  self->monitor(c.current);
  st.log->warn("{} restarted ({} in the last {} ms)", c.spec.name, c.recent.size(), st.cfg.policy.window_ms);
}

caf::behavior supervisor_behavior(supervisor_actor* self, supervisor_config cfg) {
  self->state.cfg = std::move(cfg);
  self->state.log = component_logger("supervisor");
  self->set_down_handler([=](caf::down_msg& dm) { on_down(self, dm); });
  return {
      [=](supervise_atom, child_spec& spec, caf::actor& first) {
        auto& st = self->state;
        auto name = spec.name;
        auto& c = st.children[name];
        c = child{};
        c.spec = std::move(spec);
        c.current = first;
        self->monitor(first);
      },
      [=](caf::get_atom) { return tree_of(self->state); },
      [=](caf::get_atom, const std::string& kind) {
        std::vector<caf::actor> out;
        for (const auto& [name, c] : self->state.children)
          if (c.spec.kind == kind && c.current) out.push_back(c.current);
        return out;
      },
      [=](tree_atom, transport::nats_message& m) {
        if (m.reply.empty()) return;
        auto fmt = msg::detect_format(m.content_type, m.data);
        auto t = tree_of(self->state);
        // A tree request's body is ignored: any body, even a malformed one, asks for the tree.
        (void)transport::subject_endpoint{self->state.cfg.conn, m.reply}.send(t, fmt);
      },
  };
}

}  // namespace

void exit_process_on_escalation(const std::string& why) {
  auto log = component_logger("supervisor");
  log->critical("restart intensity exceeded ({}): exiting with code 70 for the node agent to restart the process", why);
  log->flush();
  std::_Exit(70);
}

result<caf::actor> spawn_supervisor(caf::actor_system& sys, supervisor_config cfg) {
  auto* conn = cfg.conn;
  auto ns = cfg.ns, id = cfg.node_id;
  auto sup = sys.spawn(supervisor_behavior, std::move(cfg));
  if (!conn) return sup;
  auto keep = std::make_shared<std::vector<transport::subscription>>();
  for (const auto& subject : {subjects::node_tree(ns, id), subjects::node_tree_all(ns)}) {
    auto sub = transport::expose(*conn, subject, sup, tree_atom::value);
    if (!sub) {
      caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
      return sub.err();
    }
    keep->push_back(std::move(*sub));
  }
  sup->attach_functor([keep]() mutable { keep->clear(); });
  return sup;
}

}  // namespace yard::actors
