// cluster/tests/agent_config_test.cpp — `yard agent` config parsing: a good
// file round-trips into the structs; every kind of bad file gives an error
// naming the line and the field.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "cluster/agent/agent_config.hpp"

using yard::cluster::parse_agent_config;

namespace {

const char* good = R"(# a node
[agent]
node = "node-a"
namespace = "prod"
nats = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]

[resources]
cpus = 16
memory_gb = 128.5
devices = ["cuda:0", "cuda:1"]

[restart]
max_restarts = 3
window_s = 30
backoff_initial_ms = 100
backoff_max_ms = 2000
shutdown_timeout_ms = 5000

[[workers]]
role = "prefill"
engine = "native"
model = "llama-8b"
device = "cuda:0"
count = 2
max_count = 4
args = ["--log-level", "debug"]

[[workers]]
role = "decode"
engine = "mock"
model = "llama-8b"
)";

// Parses `text` and returns the error message ("" when it parsed).
std::string error_of(const std::string& text) {
  auto r = parse_agent_config(text, "agent.toml");
  if (r) return "";
  EXPECT_EQ(r.err().code, yard::errc::bad_request);
  return r.err().message;
}

const std::string head = "[agent]\nnode = \"n1\"\nnats = \"nats://127.0.0.1:4222\"\n";  // lines 1-3

}  // namespace

TEST(agent_config, parses_a_full_file) {
  auto r = parse_agent_config(good, "agent.toml");
  ASSERT_TRUE(r.ok()) << r.err().message;
  const auto& c = *r;
  EXPECT_EQ(c.node, "node-a");
  EXPECT_EQ(c.ns, "prod");
  ASSERT_EQ(c.nats.size(), 2u);
  EXPECT_EQ(c.nats[1], "nats://10.0.0.2:4222");
  EXPECT_EQ(c.resources.cpus, 16u);
  EXPECT_DOUBLE_EQ(c.resources.memory_gb, 128.5);
  EXPECT_EQ(c.resources.devices.size(), 2u);
  EXPECT_EQ(c.restart.max_restarts, 3u);
  EXPECT_EQ(c.restart.window_s, 30u);
  EXPECT_EQ(c.restart.backoff_initial_ms, 100u);
  EXPECT_EQ(c.restart.backoff_max_ms, 2000u);
  EXPECT_EQ(c.restart.shutdown_timeout_ms, 5000u);
  ASSERT_EQ(c.workers.size(), 2u);
  EXPECT_EQ(c.workers[0].role, yard::msg::worker_role::prefill);
  EXPECT_EQ(c.workers[0].engine, "native");
  EXPECT_EQ(c.workers[0].device, "cuda:0");
  EXPECT_EQ(c.workers[0].count, 2u);
  EXPECT_EQ(c.workers[0].max_count, 4u);
  EXPECT_EQ(c.workers[0].line, 19);
  ASSERT_EQ(c.workers[0].args.size(), 2u);
  EXPECT_EQ(c.workers[1].role, yard::msg::worker_role::decode);
  EXPECT_EQ(c.workers[1].count, 1u);      // default
  EXPECT_EQ(c.workers[1].min_count, 0u);  // default
  EXPECT_EQ(c.workers[1].max_count, 8u);  // default max(count, 8)
}

TEST(agent_config, defaults_and_single_server_string) {
  auto r = parse_agent_config(head + "[[workers]]\nrole=\"both\"\nengine=\"mock\"\nmodel=\"m\"\n");
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->ns, "default");
  EXPECT_EQ(r->nats.size(), 1u);
  EXPECT_EQ(r->restart.max_restarts, 5u);
  EXPECT_TRUE(r->worker_binary.empty());
}

TEST(agent_config, syntax_error_names_the_line) {
  EXPECT_EQ(error_of(head + "[[workers]]\nrole = \"both\nengine = \"mock\"\n").rfind("agent.toml:5: syntax:", 0), 0u)
      << error_of(head + "[[workers]]\nrole = \"both\nengine = \"mock\"\n");
}

TEST(agent_config, missing_agent_table) {
  EXPECT_EQ(error_of("[[workers]]\nrole=\"both\"\nengine=\"mock\"\nmodel=\"m\"\n"),
            "agent.toml:1: agent: missing required table [agent]");
}

TEST(agent_config, missing_node) {
  EXPECT_EQ(error_of("[agent]\nnats = \"nats://a:1\"\n"), "agent.toml:1: agent.node: missing required field");
}

TEST(agent_config, bad_node_name) {
  EXPECT_EQ(error_of("[agent]\nnode = \"a b\"\nnats = \"nats://a:1\"\n"),
            "agent.toml:2: agent.node: must match [A-Za-z0-9_-]+ (got \"a b\")");
}

TEST(agent_config, missing_nats) {
  EXPECT_EQ(error_of("[agent]\nnode = \"n\"\n"),
            "agent.toml:1: agent.nats: missing required field (list of NATS server URLs)");
}

TEST(agent_config, bad_nats_url_and_type) {
  EXPECT_EQ(error_of("[agent]\nnode = \"n\"\nnats = [\"http://x\"]\n"),
            "agent.toml:3: agent.nats[0]: must start with nats:// or tls:// (got \"http://x\")");
  EXPECT_EQ(error_of("[agent]\nnode = \"n\"\nnats = [\"nats://x:1\", 5]\n"),
            "agent.toml:3: agent.nats[1]: must be a string");
  EXPECT_EQ(error_of("[agent]\nnode = \"n\"\nnats = []\n"), "agent.toml:3: agent.nats: must name at least one server");
}

TEST(agent_config, unknown_keys_are_errors) {
  EXPECT_EQ(error_of(head + "nodes = 3\n"),
            "agent.toml:4: agent.nodes: unknown key (allowed: node, namespace, nats, worker_binary, metrics_port)");
  EXPECT_EQ(error_of(head + "[workers_typo]\nx=1\n").rfind("agent.toml:4: workers_typo: unknown key", 0), 0u);
  std::string e = error_of(head + "[[workers]]\nrole=\"both\"\nengine=\"mock\"\nmodel=\"m\"\ncuont=2\n");
  EXPECT_EQ(e.rfind("agent.toml:8: workers[0].cuont: unknown key", 0), 0u) << e;
}

TEST(agent_config, no_workers) {
  EXPECT_EQ(error_of(head), "agent.toml:1: workers: missing: add at least one [[workers]] entry");
  EXPECT_EQ(error_of(head + "workers = 3\n").rfind("agent.toml:", 0), 0u);
}

TEST(agent_config, worker_fields) {
  const std::string w = head + "[[workers]]\n";  // entry starts on line 4
  EXPECT_EQ(error_of(w + "engine=\"mock\"\nmodel=\"m\"\n"), "agent.toml:4: workers[0].role: missing required field");
  EXPECT_EQ(error_of(w + "role=\"prefil\"\nengine=\"mock\"\nmodel=\"m\"\n"),
            "agent.toml:5: workers[0].role: must be one of both|prefill|decode (got \"prefil\")");
  EXPECT_EQ(error_of(w + "role=\"both\"\nengine=\"gpu\"\nmodel=\"m\"\n"),
            "agent.toml:6: workers[0].engine: must be one of mock|native|openai (got \"gpu\")");
  EXPECT_EQ(error_of(w + "role=\"both\"\nengine=\"mock\"\n"), "agent.toml:4: workers[0].model: missing required field");
  EXPECT_EQ(error_of(w + "role=\"both\"\nengine=\"mock\"\nmodel=\"\"\n"),
            "agent.toml:7: workers[0].model: must not be empty");
  EXPECT_EQ(error_of(w + "role=\"both\"\nengine=\"mock\"\nmodel=\"m\"\ncount=\"2\"\n"),
            "agent.toml:8: workers[0].count: must be an integer");
  EXPECT_EQ(error_of(w + "role=\"both\"\nengine=\"mock\"\nmodel=\"m\"\ncount=-1\n"),
            "agent.toml:8: workers[0].count: must be in [0, 1024] (got -1)");
  EXPECT_EQ(error_of(w + "role=\"both\"\nengine=\"mock\"\nmodel=\"m\"\ncount=3\nmax_count=2\n"),
            "agent.toml:8: workers[0].count: must lie in [min_count, max_count] = [0, 2]");
  EXPECT_EQ(error_of(w + "role=\"both\"\nengine=\"mock\"\nmodel=\"m\"\nargs=\"--x\"\n"),
            "agent.toml:8: workers[0].args: must be an array of strings");
  EXPECT_EQ(error_of(w + "role=7\nengine=\"mock\"\nmodel=\"m\"\n"), "agent.toml:5: workers[0].role: must be a string");
}

TEST(agent_config, an_openai_group_names_its_upstream_server) {
  const std::string w = head + "[[workers]]\nrole=\"both\"\n";  // entry starts on line 4
  EXPECT_EQ(error_of(w + "engine=\"openai\"\nmodel=\"/models/llama\"\n"),
            "agent.toml:4: workers[0].upstream: missing required field");
  EXPECT_EQ(error_of(w + "engine=\"mock\"\nmodel=\"m\"\nupstream=\"http://127.0.0.1:8000\"\n"),
            "agent.toml:8: workers[0].upstream: is only for engine \"openai\"");
  auto r = parse_agent_config(w + "engine=\"openai\"\nmodel=\"/models/llama\"\nupstream=\"http://127.0.0.1:8000\"\n",
                              "agent.toml");
  ASSERT_TRUE(r.ok()) << r.err().describe();
  EXPECT_EQ(r->workers[0].upstream, "http://127.0.0.1:8000");
}

TEST(agent_config, device_must_be_a_listed_resource) {
  std::string text = head + "[resources]\ndevices = [\"cuda:0\"]\n[[workers]]\nrole=\"both\"\nengine=\"native\"\nmodel=\"m\"\ndevice=\"cuda:3\"\n";
  EXPECT_EQ(error_of(text), "agent.toml:10: workers[0].device: \"cuda:3\" is not listed in resources.devices");
}

TEST(agent_config, duplicate_role_entry) {
  std::string e = head + "[[workers]]\nrole=\"both\"\nengine=\"mock\"\nmodel=\"m\"\n" +
                  "[[workers]]\nrole=\"both\"\nengine=\"mock\"\nmodel=\"m\"\n";
  EXPECT_EQ(error_of(e),
            "agent.toml:9: workers[1].role: a [[workers]] entry for role \"both\" already exists at line 4 "
            "(one entry per role; use count)");
}

TEST(agent_config, restart_fields) {
  const std::string w = "[[workers]]\nrole=\"both\"\nengine=\"mock\"\nmodel=\"m\"\n";
  EXPECT_EQ(error_of(head + "[restart]\nwindow_s = 0\n" + w), "agent.toml:5: restart.window_s: must be in [1, 604800] (got 0)");
  EXPECT_EQ(error_of(head + "[restart]\nbackoff_initial_ms = 500\nbackoff_max_ms = 100\n" + w),
            "agent.toml:6: restart.backoff_max_ms: must be >= restart.backoff_initial_ms");
  EXPECT_EQ(error_of("restart = 3\n" + head + w), "agent.toml:1: restart: must be a table ([restart])");
  EXPECT_EQ(error_of(head + "[resources]\nmemory_gb = \"lots\"\n" + w), "agent.toml:5: resources.memory_gb: must be a number");
}

TEST(agent_config, load_reports_unreadable_file) {
  auto r = yard::cluster::load_agent_config("/nonexistent/agent.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, yard::errc::io_error);
  EXPECT_NE(r.err().message.find("/nonexistent/agent.toml"), std::string::npos);
}

TEST(agent_config, load_names_the_file) {
  std::string path = testing::TempDir() + "agent_config_test.toml";
  {
    std::ofstream out(path);
    out << head << "[[workers]]\nrole=\"x\"\nengine=\"mock\"\nmodel=\"m\"\n";
  }
  auto r = yard::cluster::load_agent_config(path);
  std::remove(path.c_str());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message, path + ":5: workers[0].role: must be one of both|prefill|decode (got \"x\")");
}
