// `yard agent` joins a password- and TLS-protected bus (certificates made here
// with the openssl CLI): its worker children connect with their own user, get
// their secrets through the environment, and no secret appears in any argv.
#include <dirent.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "cluster/bus_permissions.hpp"
#include "messages/codec.hpp"
#include "messages/cluster_subjects.hpp"
#include "messages/subjects.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
namespace ts = yard::test_support;
namespace fs = std::filesystem;

namespace {

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every process whose parent is `root`, recursively.
std::set<pid_t> descendants(pid_t root) {
  std::set<pid_t> out{root};
  for (bool grew = true; grew;) {
    grew = false;
    DIR* d = opendir("/proc");
    if (!d) break;
    while (auto* e = readdir(d)) {
      pid_t pid = std::atoi(e->d_name);
      if (pid <= 0 || out.count(pid)) continue;
      auto stat = slurp("/proc/" + std::to_string(pid) + "/stat");
      auto close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(stat.substr(close + 2));
      char state;
      pid_t ppid = 0;
      rest >> state >> ppid;
      if (out.count(ppid)) {
        out.insert(pid);
        grew = true;
      }
    }
    closedir(d);
  }
  return out;
}

TEST(agent_secure_bus, joins_a_password_and_tls_bus_with_no_secret_in_any_argv) {
  auto dir = fs::temp_directory_path() / ("yard-agent-tls-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto p = [&](const char* f) { return (dir / f).string(); };
  if (!sh("command -v openssl")) GTEST_SKIP() << "openssl CLI not installed";
  ASSERT_TRUE(sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + p("ca.key") + " -out " + p("ca.pem") +
                 " -days 1 -subj /CN=yard-test-ca"));
  ASSERT_TRUE(sh("openssl req -newkey rsa:2048 -nodes -keyout " + p("server.key") + " -out " + p("server.csr") +
                 " -subj /CN=127.0.0.1"));
  {
    std::ofstream(p("san.ext")) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  }
  ASSERT_TRUE(sh("openssl x509 -req -in " + p("server.csr") + " -CA " + p("ca.pem") + " -CAkey " + p("ca.key") +
                 " -CAcreateserial -out " + p("server.pem") + " -days 1 -extfile " + p("san.ext")));

  const std::string agent_pw = "agent-secret-" + *cluster::random_password();
  const std::string worker_pw = "worker-secret-" + *cluster::random_password();
  const std::string observer_pw = *cluster::random_password();
  std::vector<cluster::bus_user> users = {{"agent", agent_pw, cluster::bus_role::agent, "n1"},
                                          {"worker", worker_pw, cluster::bus_role::worker, ""},
                                          {"observer", observer_pw, cluster::bus_role::planner, ""}};
  transport::nats_server_options so;
  so.config_extra = "tls {\n  cert_file: \"" + p("server.pem") + "\"\n  key_file: \"" + p("server.key") + "\"\n}\n" +
                    cluster::render_authorization(users, "default");
  auto server = transport::nats_server_process::start(so);
  ASSERT_TRUE(server.ok()) << server.err().describe();

  {
    std::ofstream(p("agent.pw")) << agent_pw << "\n";
    std::ofstream(p("worker.pw")) << worker_pw << "\n";
    std::ofstream cfg(p("agent.toml"));
    cfg << "[agent]\nnode = \"n1\"\nnats = \"" << (*server)->url() << "\"\n\n"
        << "[auth]\nuser = \"agent\"\npassword_file = \"" << p("agent.pw") << "\"\ntls = true\ntls_ca = \"" << p("ca.pem")
        << "\"\nworker_user = \"worker\"\nworker_password_file = \"" << p("worker.pw") << "\"\n\n"
        << "[[workers]]\nrole = \"both\"\nengine = \"mock\"\nmodel = \"mock\"\ncount = 1\n"
        << "args = [\"--heartbeat-ms\", \"100\", \"--log-level\", \"warn\"]\n";
  }

  transport::nats_options obs;
  obs.servers = {(*server)->url()};
  obs.user = "observer";
  obs.password = observer_pw;
  obs.inbox_prefix = cluster::inbox_prefix_for("observer");
  obs.tls = true;
  obs.tls_ca_file = p("ca.pem");
  auto observer = transport::nats_connection::connect(obs);
  ASSERT_TRUE(observer.ok()) << observer.err().describe();
  auto wrong = obs;
  wrong.password = "wrong";
  wrong.connect_timeout_ms = 1000;
  EXPECT_FALSE(transport::nats_connection::connect(wrong).ok()) << "a wrong password must be refused";

  std::atomic<int> worker_beats{0}, agent_status{0};
  auto hb = (*observer)->subscribe(subjects::heartbeat_all("default"), [&](transport::nats_message m) {
    auto h = msg::decode_auto<msg::heartbeat>(m.data, m.content_type);
    if (h && h->component == msg::component_kind::worker) worker_beats++;
  });
  auto st = (*observer)->subscribe(subjects::agent_status("default"), [&](transport::nats_message) { agent_status++; });
  ASSERT_TRUE(hb.ok() && st.ok());
  (*observer)->flush();

  ts::yard_process agent({"agent", "--config", p("agent.toml"), "--log-level", "warn"});
  EXPECT_TRUE(ts::eventually([&] { return agent_status.load() > 0; }, 15000)) << "the agent never joined the bus";
  EXPECT_TRUE(ts::eventually([&] { return worker_beats.load() > 2; }, 20000)) << "its worker never joined the bus";

  auto procs = descendants(agent.pid());
  EXPECT_GE(procs.size(), 2u) << "the agent and its worker";
  for (pid_t pid : procs) {
    auto cmdline = slurp("/proc/" + std::to_string(pid) + "/cmdline");
    for (auto& c : cmdline)
      if (c == '\0') c = ' ';
    EXPECT_EQ(cmdline.find(agent_pw), std::string::npos) << "pid " << pid << ": " << cmdline;
    EXPECT_EQ(cmdline.find(worker_pw), std::string::npos) << "pid " << pid << ": " << cmdline;
    EXPECT_EQ(cmdline.find("secret"), std::string::npos) << "pid " << pid << ": " << cmdline;
  }
  agent.signal(SIGTERM);
  EXPECT_EQ(agent.wait_exit(20000), 0);
  fs::remove_all(dir);
}

}  // namespace
