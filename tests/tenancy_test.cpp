// tests/tenancy_test.cpp — API keys and tenants through the HTTP front door:
// 401s in OpenAI's shape, per-tenant models, prefix-cache isolation between
// tenants (seen in usage.prompt_tokens_details.cached_tokens), request and
// token rate limits (429 + Retry-After), per-tenant metrics, and HTTPS with a
// certificate the test makes with the openssl tool.
#include <httplib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "actors/tenant_table.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
using nlohmann::json;
namespace ts = yard::test_support;
namespace fs = std::filesystem;

namespace {

const std::string kAcme = "sk-acme-0123456789";
const std::string kBeta = "sk-beta-0123456789";
const std::string kSlow = "sk-slow-0123456789";
const std::string kThin = "sk-thin-0123456789";
const std::string kOther = "sk-other-model-01";

std::string key_file_toml() {
  using actors::tenant_table;
  return "[keys]\n\"" + tenant_table::key_hash(kAcme) + "\" = \"acme\"\n\"" + tenant_table::key_hash(kBeta) +
         "\" = \"beta\"\n\"sha256:" + tenant_table::key_hash(kSlow) + "\" = \"slow\"\n\"" + tenant_table::key_hash(kThin) +
         "\" = \"thin\"\n\"" + tenant_table::key_hash(kOther) + "\" = \"other\"\n" +
         "[tenants.acme]\nmodels = [\"mock\"]\npriority = 2\n"
         "[tenants.slow]\nrequests_per_s = 2\n"
         "[tenants.thin]\ntokens_per_min = 60\n"
         "[tenants.other]\nmodels = [\"some-other-model\"]\n";
}

class tenancy : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("yard-tenancy-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "keys.toml") << key_file_toml();
    auto t = actors::tenant_table::load((dir_ / "keys.toml").string());
    ASSERT_TRUE(t) << t.err().describe();
    nats_ = ts::start_nats();
    ASSERT_NE(nats_, nullptr);
    node_ = ts::start_cluster(nats_->url(), {.workers = 1, .with_frontend = false});
    ASSERT_NE(node_, nullptr);
    actors::http_options http;
    http.host = "127.0.0.1";
    http.port = 0;
    http.tenants = *t;
    if (tls_) {
      make_certificate();
      http.tls_cert_file = (dir_ / "cert.pem").string();
      http.tls_key_file = (dir_ / "key.pem").string();
    }
    ASSERT_TRUE(node_->add_frontend({}, http).ok());
    ASSERT_TRUE(ts::eventually([&] { return node_->live_workers() == 1; }));
  }
  void TearDown() override {
    node_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void make_certificate() {
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -addext "
                      "subjectAltName=IP:127.0.0.1 -keyout '" + (dir_ / "key.pem").string() + "' -out '" +
                      (dir_ / "cert.pem").string() + "' >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a certificate";
  }

  httplib::Result post(const std::string& key, const json& body, const char* header = "Authorization") {
    httplib::Client cli("127.0.0.1", node_->http_port());
    cli.set_read_timeout(30, 0);
    httplib::Headers h;
    if (!key.empty()) h.emplace(header, std::string(header) == "Authorization" ? "Bearer " + key : key);
    return cli.Post("/v1/completions", h, body.dump(), "application/json");
  }

  static json parse(const httplib::Result& r) { return r ? json::parse(r->body, nullptr, false) : json(); }

  fs::path dir_;
  bool tls_ = false;
  std::unique_ptr<transport::nats_server_process> nats_;
  std::unique_ptr<cluster::node_runtime> node_;
};

TEST_F(tenancy, a_missing_or_wrong_key_is_a_401_in_openai_shape) {
  json body = {{"prompt", "hi"}, {"max_tokens", 2}};
  for (const std::string& key : {std::string(), std::string("sk-wrong")}) {
    auto r = post(key, body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << r->body;
    auto j = parse(r);
    ASSERT_TRUE(j.contains("error")) << r->body;
    EXPECT_EQ(j["error"]["code"], "invalid_api_key");
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer");
  }
  httplib::Client cli("127.0.0.1", node_->http_port());
  auto models = cli.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 401);
  auto health = cli.Get("/health");  // load balancers probe without a key
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(tenancy, a_known_key_is_served_by_bearer_or_api_key_header) {
  json body = {{"prompt", "hi"}, {"max_tokens", 3}};
  auto r = post(kAcme, body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(parse(r)["choices"][0]["text"], ts::mock_expected_text("hi", 3));
  auto r2 = post(kBeta, body, "api-key");
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200) << r2->body;
}

TEST_F(tenancy, a_tenant_sees_and_uses_only_its_models) {
  httplib::Client cli("127.0.0.1", node_->http_port());
  auto m = cli.Get("/v1/models", {{"Authorization", "Bearer " + kOther}});
  ASSERT_TRUE(m);
  ASSERT_EQ(m->status, 200);
  EXPECT_TRUE(parse(m)["data"].empty()) << m->body;  // it may use only "some-other-model", which nobody serves
  auto mine = cli.Get("/v1/models", {{"Authorization", "Bearer " + kAcme}});
  ASSERT_TRUE(mine);
  EXPECT_EQ(parse(mine)["data"][0]["id"], "mock");
  auto r = post(kOther, {{"model", "mock"}, {"prompt", "hi"}, {"max_tokens", 2}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404) << r->body;
}

TEST_F(tenancy, no_tenant_hits_another_tenants_prefix_blocks) {
  std::string prompt(640, 'q');  // 40 full blocks of 16
  auto cached = [&](const std::string& key, const json& extra) {
    json body = {{"prompt", prompt}, {"max_tokens", 1}};
    if (extra.contains("prompt")) body["prompt"] = extra["prompt"];
    body.update(extra);
    auto r = post(key, body);
    if (!r || r->status != 200) {
      ADD_FAILURE() << (r ? r->body : "no response");
      return -1;
    }
    return parse(r)["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>();
  };
  EXPECT_EQ(cached(kAcme, json::object()), 0);
  EXPECT_GE(cached(kAcme, json::object()), 624) << "a tenant reuses its own prefix";
  EXPECT_EQ(cached(kBeta, json::object()), 0) << "another tenant must not hit acme's blocks";
  // Naming acme's server-side salt as a client salt does not get there either.
  EXPECT_EQ(cached(kBeta, {{"cache_salt", actors::tenant_table::salt_for({"acme"}, std::nullopt)}}), 0);
  EXPECT_EQ(cached(kBeta, {{"cache_salt", "x"}}), 0);
  EXPECT_GE(cached(kBeta, {{"cache_salt", "x"}}), 624) << "a client salt still partitions within a tenant";
  // The OpenAI `user` field does not choose the tenant.
  EXPECT_EQ(cached(kAcme, {{"prompt", std::string(640, 'u')}}), 0);
  EXPECT_EQ(cached(kBeta, {{"prompt", std::string(640, 'u')}, {"user", "acme"}}), 0);
}

TEST_F(tenancy, over_the_request_rate_is_a_429_with_retry_after) {
  json body = {{"prompt", "r"}, {"max_tokens", 1}};
  int ok = 0, limited = 0;
  std::string retry_after, code;
  for (int i = 0; i < 12 && limited == 0; ++i) {
    auto r = post(kSlow, body);
    ASSERT_TRUE(r);
    if (r->status == 200) ok++;
    if (r->status == 429) {
      limited++;
      retry_after = r->get_header_value("Retry-After");
      code = parse(r)["error"]["code"];
    }
  }
  EXPECT_GE(ok, 2) << "the burst of one second's worth passes";
  EXPECT_GE(limited, 1);
  EXPECT_GE(std::atoi(retry_after.c_str()), 1) << "Retry-After: '" << retry_after << "'";
  EXPECT_EQ(code, "rate_limit_exceeded");
  // Other tenants are not limited by it.
  auto other = post(kAcme, body);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 200);
  // Per-tenant labels on the metrics.
  httplib::Client cli("127.0.0.1", node_->http_port());
  auto m = cli.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("yard_tenant_requests_total{tenant=\"slow\",status=\"429\"}"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find("yard_tenant_requests_total{tenant=\"slow\",status=\"200\"}"), std::string::npos);
  EXPECT_NE(m->body.find("yard_tenant_tokens_total{tenant=\"acme\",kind=\"completion\"} 1"), std::string::npos);
}

TEST_F(tenancy, a_spent_token_budget_is_a_429_until_it_refills) {
  // 60 tokens a minute: a 40-token prompt plus 30 output tokens overspends it.
  auto r = post(kThin, {{"prompt", std::string(40, 't')}, {"max_tokens", 30}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  auto r2 = post(kThin, {{"prompt", "t"}, {"max_tokens", 1}});
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 429) << r2->body;
  EXPECT_GE(std::atoi(r2->get_header_value("Retry-After").c_str()), 1);
  EXPECT_NE(parse(r2)["error"]["message"].get<std::string>().find("token limit"), std::string::npos);
}

class tenancy_https : public tenancy {
 protected:
  void SetUp() override {
    tls_ = true;
    tenancy::SetUp();
  }
};

TEST_F(tenancy_https, serves_completions_over_tls_with_the_tests_certificate) {
  httplib::SSLClient cli("127.0.0.1", node_->http_port());
  cli.set_ca_cert_path((dir_ / "cert.pem").string());
  cli.enable_server_certificate_verification(true);
  cli.set_read_timeout(30, 0);
  httplib::Headers h{{"Authorization", "Bearer " + kAcme}};
  auto r = cli.Post("/v1/completions", h, json{{"prompt", "tls"}, {"max_tokens", 4}}.dump(), "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(parse(r)["choices"][0]["text"], ts::mock_expected_text("tls", 4));
  // Streamed, on the same keep-alive TLS connection.
  auto s = cli.Post("/v1/completions", h, json{{"prompt", "tls"}, {"max_tokens", 4}, {"stream", true}}.dump(), "application/json");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 200);
  EXPECT_NE(s->body.find("data: [DONE]"), std::string::npos) << s->body;
  // A plain-HTTP client gets no answer from the TLS port (the handshake fails), and the server lives on.
  httplib::Client plain("127.0.0.1", node_->http_port());
  plain.set_read_timeout(2, 0);
  auto p = plain.Get("/health");
  EXPECT_TRUE(!p || p->status != 200);
  auto again = cli.Get("/health");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

}  // namespace
