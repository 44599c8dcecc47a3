// cluster/tests/bus_security_test.cpp — permission matrix, secrets and URL
// redaction; the rendered config is accepted by a real nats-server.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "cluster/bus_permissions.hpp"
#include "cluster/nats_secrets.hpp"
#include "transport/nats_connection.hpp"

namespace yard::cluster {
namespace {

bool has(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v)
    if (x == s) return true;
  return false;
}

TEST(bus_permissions, a_client_may_only_ask_and_read_its_own_inbox) {
  auto p = permissions_for(bus_role::client, "default", "alice");
  // It may ask the router, read the supervision trees (`yard tree`), and discover services through the NATS
  // services API.
  EXPECT_EQ(p.publish, (std::vector<std::string>{"yard.default.router.generate", "yard.default.node.tree",
                                                 "yard.default.node.*.tree", "$SRV.>"}));
  EXPECT_EQ(p.subscribe, std::vector<std::string>{"_INBOX_alice.>"});
  EXPECT_FALSE(p.allow_responses);
}

TEST(bus_permissions, a_worker_instance_is_limited_to_its_own_subjects) {
  auto p = permissions_for(bus_role::worker, "ns", "w7", "w7");
  EXPECT_TRUE(has(p.publish, "yard.ns.discovery.heartbeat.w7"));
  EXPECT_FALSE(has(p.publish, "yard.ns.discovery.heartbeat.*"));
  EXPECT_TRUE(has(p.subscribe, "yard.ns.worker.generate.w7"));
  EXPECT_FALSE(has(p.subscribe, "yard.ns.router.generate"));
  EXPECT_TRUE(p.allow_responses);
  auto any = permissions_for(bus_role::worker, "ns", "worker");
  EXPECT_TRUE(has(any.publish, "yard.ns.discovery.heartbeat.*"));
}

TEST(bus_permissions, only_routers_read_generate_and_request_snapshots) {
  for (auto r : {bus_role::client, bus_role::frontend, bus_role::worker, bus_role::agent, bus_role::planner}) {
    auto p = permissions_for(r, "default", "u");
    EXPECT_FALSE(has(p.subscribe, "yard.default.router.generate")) << bus_role_name(r);
    EXPECT_FALSE(has(p.publish, "yard.default.kv.snapshot.*")) << bus_role_name(r);
    EXPECT_FALSE(has(p.publish, "yard.default.router.inflight")) << bus_role_name(r);
  }
  auto router = permissions_for(bus_role::router, "default", "r");
  EXPECT_TRUE(has(router.subscribe, "yard.default.router.generate"));
  EXPECT_TRUE(has(router.publish, "yard.default.kv.snapshot.*"));
}

TEST(bus_permissions, roles_parse_and_inbox_prefixes_are_sanitised) {
  EXPECT_EQ(parse_bus_role("planner"), bus_role::planner);
  EXPECT_FALSE(parse_bus_role("admin").has_value());
  EXPECT_EQ(inbox_prefix_for("a.b*c"), "_INBOX_a_b_c");
}

TEST(bus_permissions, nats_server_accepts_the_rendered_config) {
  auto dir = std::filesystem::temp_directory_path() / ("yard-bus-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / "auth.conf";
  std::vector<bus_user> users;
  for (const char* r : {"client", "frontend", "router", "worker", "agent", "planner", "node"})
    users.push_back({r, std::string("pw-") + r, *parse_bus_role(r), ""});
  users.push_back({"w0", "$YARD_W0_PASSWORD", bus_role::worker, "w0"});
  {
    std::ofstream f(path);
    f << render_authorization(users, "default");
  }
  std::string cmd = "YARD_W0_PASSWORD=x nats-server -t -c " + path.string() + " >/dev/null 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << render_authorization(users, "default");
  std::filesystem::remove_all(dir);
}

TEST(bus_permissions, the_shipped_sample_config_is_what_bus_config_prints) {
  // docs/hardened/nats-server.conf must be accepted by nats-server (variables set).
  const char* src = std::getenv("YARD_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  auto sample = std::filesystem::path(src) / "docs/hardened/nats-server.conf";
  ASSERT_TRUE(std::filesystem::exists(sample));
  std::string env;
  for (const char* u : {"CLIENT", "FRONTEND", "ROUTER", "WORKER", "AGENT", "PLANNER"})
    env += std::string("YARD_") + u + "_PASSWORD=x ";
  EXPECT_EQ(std::system((env + "nats-server -t -c " + sample.string() + " >/dev/null 2>&1").c_str()), 0);
}

TEST(nats_secrets, files_then_environment_and_flags_win) {
  auto dir = std::filesystem::temp_directory_path() / ("yard-sec-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "pw") << "from-file\n";
  }
  setenv("YARD_NATS_USER", "env-user", 1);
  setenv("YARD_NATS_PASSWORD", "from-env", 1);
  transport::nats_options o;
  ASSERT_TRUE(resolve_nats_secrets(o, {(dir / "pw").string(), ""}).ok());
  EXPECT_EQ(o.user, "env-user");
  EXPECT_EQ(o.password, "from-file");
  EXPECT_EQ(o.inbox_prefix, "_INBOX_env-user");
  transport::nats_options flags;
  flags.user = "flag-user";
  flags.password = "from-flag";
  ASSERT_TRUE(resolve_nats_secrets(flags, {(dir / "pw").string(), ""}).ok());
  EXPECT_EQ(flags.password, "from-flag");
  transport::nats_options env_only;
  ASSERT_TRUE(resolve_nats_secrets(env_only, {}).ok());
  EXPECT_EQ(env_only.password, "from-env");
  unsetenv("YARD_NATS_USER");
  unsetenv("YARD_NATS_PASSWORD");
  transport::nats_options bad;
  auto s = resolve_nats_secrets(bad, {(dir / "missing").string(), ""});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.err().message.find("missing"), std::string::npos);
  {
    std::ofstream(dir / "empty") << "";
  }
  EXPECT_FALSE(resolve_nats_secrets(bad, {(dir / "empty").string(), ""}).ok());
  transport::nats_options no_pw;
  no_pw.user = "u";
  EXPECT_FALSE(resolve_nats_secrets(no_pw, {}).ok());  // a user without a password is an error, not anonymous
  std::filesystem::remove_all(dir);
}

TEST(nats_secrets, child_environment_carries_the_auth) {
  transport::nats_options o;
  o.user = "worker";
  o.password = "s3cret";
  o.tls = true;
  o.tls_ca_file = "/ca.pem";
  auto env = nats_auth_env(o);
  EXPECT_TRUE(has(env, "YARD_NATS_USER=worker"));
  EXPECT_TRUE(has(env, "YARD_NATS_PASSWORD=s3cret"));
  EXPECT_TRUE(has(env, "YARD_NATS_TLS=1"));
  EXPECT_TRUE(has(env, "YARD_NATS_TLS_CA=/ca.pem"));
}

TEST(nats_secrets, credentials_leave_urls) {
  auto c = strip_url_credentials("nats://bob:pw@10.0.0.1:4222");
  EXPECT_EQ(c.url, "nats://10.0.0.1:4222");
  EXPECT_EQ(c.user, "bob");
  EXPECT_EQ(c.password, "pw");
  auto t = strip_url_credentials("tls://tok@h:4222");
  EXPECT_EQ(t.url, "tls://h:4222");
  EXPECT_EQ(t.token, "tok");
  EXPECT_EQ(strip_url_credentials("nats://h:4222").url, "nats://h:4222");
}

TEST(nats_connection, urls_are_logged_redacted) {
  EXPECT_EQ(transport::redact_url("nats://bob:pw@h:4222"), "nats://bob:***@h:4222");
  EXPECT_EQ(transport::redact_url("nats://tok@h:4222"), "nats://***@h:4222");
  EXPECT_EQ(transport::redact_url("nats://h:4222"), "nats://h:4222");
  EXPECT_EQ(transport::redact_urls({"nats://a:b@x:1", "nats://y:2"}), "nats://a:***@x:1,nats://y:2");
}

}  // namespace
}  // namespace yard::cluster
