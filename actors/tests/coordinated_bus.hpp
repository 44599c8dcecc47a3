// actors/tests/coordinated_bus.hpp — what the actor unit tests stand on: a real nats-server
// (transport/tests/test_bus.hpp) and an actor system on CAF's test coordinator, so a test runs
// every message and timeout itself (sched->run(), trigger_timeouts()).
#pragma once

#include <memory>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "transport/tests/test_bus.hpp"

namespace yard::actors::testing {

struct coordinated_bus {
  transport::test_support::test_bus bus;
  transport::nats_connection* conn = nullptr;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;

  // Starts the nats-server and the actor system (call first in SetUp).
  void start_coordinated() {
    bus.start();
    conn = bus.conn.get();
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
  }
};

}  // namespace yard::actors::testing
