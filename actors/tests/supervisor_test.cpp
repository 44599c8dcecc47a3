// actors/tests/supervisor_test.cpp — one-for-one supervision without NATS: a child
// that ends abnormally is started again; user_shutdown and normal exits are not
// restarted; the restart intensity escalates once; a child that cannot be rebuilt
// escalates at once; the tree reports states and restart counts.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/supervisor.hpp"

namespace {

using namespace yard;
using namespace yard::actors;

caf::behavior idle_child(caf::event_based_actor* self) {
  return {[](caf::get_atom) { return 1; }, [=](caf::ok_atom) { self->quit(); }};  // ok: end normally
}

struct supervisor_test : ::testing::Test {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor sup;
  std::mutex mu;
  std::vector<std::string> escalated;
  std::atomic<int> starts{0};

  void start(restart_policy p) {
    cfg.set("logger.verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    supervisor_config sc;
    sc.node_id = "unit";
    sc.policy = p;
    sc.escalate = [this](const std::string& why) {
      std::lock_guard<std::mutex> lock(mu);
      escalated.push_back(why);
    };
    auto s = spawn_supervisor(*sys, sc);
    ASSERT_TRUE(s);
    sup = *s;
  }
  void TearDown() override {
    if (sup) caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  }
  caf::actor adopt(const std::string& name, bool restartable) {
    child_spec spec{name, "worker", nullptr};
    if (restartable)
      spec.start = [this]() -> result<caf::actor> {
        starts++;
        return sys->spawn(idle_child);
      };
    auto first = sys->spawn(idle_child);
    caf::anon_send(sup, supervise_atom::value, std::move(spec), first);
    return first;
  }
  msg::node_tree tree() {
    msg::node_tree t;
    caf::scoped_actor self{*sys};
    self->request(sup, std::chrono::seconds(5), caf::get_atom::value)
        .receive([&](msg::node_tree& v) { t = std::move(v); }, [&](caf::error&) {});
    return t;
  }
  const msg::actor_node* child(const msg::node_tree& t, const std::string& name) {
    for (const auto& a : t.actors)
      if (a.name == name) return &a;
    return nullptr;
  }
  template <class P>
  bool eventually(P p) {
    for (int i = 0; i < 500; ++i) {
      if (p()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::size_t escalations() {
    std::lock_guard<std::mutex> lock(mu);
    return escalated.size();
  }
};

TEST_F(supervisor_test, a_killed_child_is_started_again_and_the_tree_counts_it) {
  start({});
  auto first = adopt("worker a", true);
  caf::anon_send_exit(first, caf::exit_reason::kill);
  ASSERT_TRUE(eventually([&] { return starts == 1; }));
  ASSERT_TRUE(eventually([&] {
    auto* c = child(tree(), "worker a");
    return c && c->restarts == 1 && c->state == "running";
  }));
  auto t = tree();
  EXPECT_EQ(t.node, "unit");
  EXPECT_GT(t.pid, 0);
  EXPECT_NE(child(t, "worker a")->last_exit.find("kill"), std::string::npos);
  // The current incarnation is the one handed out by kind.
  caf::scoped_actor self{*sys};
  std::vector<caf::actor> current;
  self->request(sup, std::chrono::seconds(5), caf::get_atom::value, std::string("worker"))
      .receive([&](std::vector<caf::actor>& v) { current = v; }, [&](caf::error&) {});
  ASSERT_EQ(current.size(), 1u);
  EXPECT_NE(current[0], first);
  EXPECT_EQ(escalations(), 0u);
}

TEST_F(supervisor_test, user_shutdown_and_normal_exits_are_not_restarted) {
  start({});
  auto a = adopt("worker a", true);
  auto b = adopt("worker b", true);
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  caf::anon_send(b, caf::ok_atom::value);  // quits with exit_reason::normal
  ASSERT_TRUE(eventually([&] {
    auto t = tree();
    auto *ca = child(t, "worker a"), *cb = child(t, "worker b");
    return ca && cb && ca->state == "stopped" && cb->state == "stopped";
  }));
  EXPECT_EQ(starts, 0);
  EXPECT_EQ(escalations(), 0u);
}

TEST_F(supervisor_test, more_restarts_than_the_intensity_allows_escalate_once) {
  restart_policy p;
  p.max_restarts = 2;
  p.window_ms = 60000;
  start(p);
  adopt("worker a", true);
  for (int i = 0; i < 4; ++i) {
    caf::scoped_actor self{*sys};
    std::vector<caf::actor> current;
    self->request(sup, std::chrono::seconds(5), caf::get_atom::value, std::string("worker"))
        .receive([&](std::vector<caf::actor>& v) { current = v; }, [&](caf::error&) {});
    if (current.empty()) break;  // failed: nothing left to kill
    caf::anon_send_exit(current[0], caf::exit_reason::kill);
    ASSERT_TRUE(eventually([&] { return starts == std::min(i + 1, 2) || escalations() > 0; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(eventually([&] { return escalations() == 1; }));
  EXPECT_EQ(starts, 2);
  EXPECT_NE(escalated[0].find("after 2 restarts"), std::string::npos) << escalated[0];
  EXPECT_EQ(child(tree(), "worker a")->state, "failed");
}

TEST_F(supervisor_test, a_child_that_cannot_be_rebuilt_escalates_at_once) {
  start({});
  auto a = adopt("frontend f", false);
  caf::anon_send_exit(a, caf::exit_reason::kill);
  ASSERT_TRUE(eventually([&] { return escalations() == 1; }));
  EXPECT_NE(escalated[0].find("cannot be rebuilt"), std::string::npos) << escalated[0];
}

}  // namespace
