// Disaggregated serving across two network namespaces (label: netns), as on two hosts.
//
// Namespace B ("host B") runs nats-server and a prefill worker; namespace A
// ("host A") runs a decode worker, the router and the HTTP frontend. They are
// joined only by the veth pair of tools/netns.sh (192.0.2.1 <-> 192.0.2.2), so
// NATS messages and the UCX KV pull (tcp) both cross a real virtual network.
// A client in A (curl) asks for a long prompt: the text must be the mock
// engine's exact output and its prompt must have been served from pulled KV.
// Then the prefill worker is killed and another long prompt still completes
// correctly (local fallback). Skips cleanly without root / netns permission.
// Must not touch: anything outside the namespaces it creates (yd<pid>_a/_b).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/cluster_fixture.hpp"
#include "tests/support/netns_support.hpp"

using namespace yard;
namespace ts = yard::test_support;

namespace {

using ts::ns_process;
using ts::repo_root;
using ts::run_capture;
using ts::sh;
using ts::yard_bin;

class disagg_netns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "netns tests need root (ip netns add)";
    script_ = repo_root() + "/tools/netns.sh";
    if (!sh("bash " + script_ + " check >/dev/null 2>&1")) GTEST_SKIP() << "ip netns add / veth not permitted here";
    name_ = "yd" + std::to_string(::getpid() % 100000000);
    ASSERT_TRUE(sh("bash " + script_ + " up " + name_)) << "netns.sh up failed";
    up_ = true;
  }
  void TearDown() override {
    procs_.clear();
    if (up_) sh("bash " + script_ + " down " + name_);
  }
  ns_process& start(char side, std::vector<std::string> cmd) {
    procs_.push_back(std::make_unique<ns_process>(
        std::vector<std::string>{"/bin/bash", script_, "exec", name_, std::string(1, side)}, cmd));
    return *procs_.back();
  }
  // POSTs a completion from namespace A; returns the parsed body (null on failure).
  nlohmann::json complete(const std::string& prompt, int max_tokens) {
    nlohmann::json body = {{"prompt", prompt}, {"max_tokens", max_tokens}};
    auto out = run_capture("bash " + script_ + " exec " + name_ + " a curl -s -m 20 -H 'Content-Type: application/json' " +
                           "-d '" + body.dump() + "' http://192.0.2.1:" + std::to_string(http_port_) + "/v1/completions");
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded()) return nlohmann::json{{"raw_output", out}};  // shows what curl printed in a failure
    return j;
  }
  std::string script_, name_;
  bool up_ = false;
  int http_port_ = 18000 + ::getpid() % 1000;
  std::vector<std::unique_ptr<ns_process>> procs_;
};

}  // namespace

TEST_F(disagg_netns, prefill_on_host_b_decode_on_host_a) {
  const std::string nats_port = std::to_string(17000 + ::getpid() % 1000);
  const std::string nats = "nats://192.0.2.2:" + nats_port;
  const std::string bin = yard_bin();
  start('b', {"nats-server", "-a", "192.0.2.2", "-p", nats_port});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto common = [&](std::vector<std::string> v) {
    v.insert(v.begin(), bin);
    for (const char* a : {"--nats", nats.c_str(), "--log-level", "warn"}) v.push_back(a);
    return v;
  };
  auto& prefill = start('b', common({"worker", "--id", "hostb-prefill", "--role", "prefill", "--heartbeat-ms", "100",
                                     "--lease-ms", "800", "--token-delay-ms", "1"}));
  start('a', common({"worker", "--id", "hosta-decode", "--role", "decode", "--heartbeat-ms", "100", "--lease-ms", "800",
                     "--token-delay-ms", "1", "--remote-prefill-min-tokens", "64", "--remote-prefill-timeout-ms", "1500"}));
  start('a', common({"router"}));
  start('a', common({"frontend", "--http-host", "192.0.2.1", "--http-port", std::to_string(http_port_)}));

  std::string prompt(300, 'x');
  for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<char>('a' + (i * 7) % 26);
  nlohmann::json r;
  // Wait for everything to come up (the first answer may be "no worker available").
  ASSERT_TRUE(ts::eventually([&] {
    r = complete(prompt, 8);
    return r.contains("choices");
  }, 20000)) << r.dump();
  EXPECT_EQ(r["choices"][0]["text"].get<std::string>(), ts::mock_expected_text(prompt, 8));
  // The first request may have raced the decode worker hearing of the prefill pool (heartbeats
  // from host B, under load maybe late): fresh prompts, a few tries, until one prefills remotely.
  auto r2 = ts::until_prefilled_remotely([&](const std::string& p, int n) { return complete(p, n); }, prompt, 288,
                                        "ZYXW");
  EXPECT_GE(r2["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 288)
      << "the prompt's 18 full blocks should have come over UCX from host B: " << r2.dump();

  // Host B's prefill worker dies: the next long prompt still completes correctly.
  prefill.kill();
  std::string p3 = prompt;
  p3[0] = 'Q';
  auto r3 = complete(p3, 8);
  ASSERT_TRUE(r3.contains("choices")) << r3.dump();
  EXPECT_EQ(r3["choices"][0]["text"].get<std::string>(), ts::mock_expected_text(p3, 8));
}
