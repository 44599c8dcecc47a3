// actors/tests/tenant_table_test.cpp — the API key file (TOML and JSON, the
// errors it reports), key lookup, salts and the token buckets behind 429s.
#include "actors/tenant_table.hpp"

#include <gtest/gtest.h>

namespace yard::actors {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

const std::string kHashOfSecret = tenant_table::key_hash("secret");

TEST(tenant_table, key_hash_is_sha256_hex) {
  EXPECT_EQ(tenant_table::key_hash("secret"), "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b");
}

TEST(tenant_table, toml_and_json_files_read_the_same) {
  auto toml = tenant_table::parse("[keys]\n\"" + kHashOfSecret + "\" = \"acme\"\n[tenants.acme]\nmodels = [\"m\"]\n"
                                  "requests_per_s = 5\ntokens_per_min = 1000\npriority = 3\n",
                                  false, "keys.toml");
  ASSERT_TRUE(toml) << toml.err().describe();
  auto js = tenant_table::parse(R"({"keys": {")" + kHashOfSecret +
                                    R"(": "acme"}, "tenants": {"acme": {"models": ["m"], "requests_per_s": 5,
                                    "tokens_per_min": 1000, "priority": 3}}})",
                                true, "keys.json");
  ASSERT_TRUE(js) << js.err().describe();
  for (auto* t : {(*toml)->authenticate("secret"), (*js)->authenticate("secret")}) {
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->name, "acme");
    EXPECT_EQ(t->models, std::vector<std::string>{"m"});
    EXPECT_EQ(t->requests_per_s, 5);
    EXPECT_EQ(t->tokens_per_min, 1000);
    EXPECT_EQ(t->priority, 3);
    EXPECT_TRUE(t->allows("m"));
    EXPECT_FALSE(t->allows("other"));
  }
  EXPECT_EQ((*toml)->authenticate("wrong"), nullptr);
  EXPECT_EQ((*toml)->authenticate(""), nullptr);
}

TEST(tenant_table, a_tenant_named_only_by_a_key_has_no_limits) {
  auto t = tenant_table::parse("{\"keys\": {\"SHA256:" + kHashOfSecret + "\": \"solo\"}}", true, "k");
  // "SHA256:" in capitals is not the accepted "sha256:" prefix: the entry is refused.
  EXPECT_FALSE(t);
  t = tenant_table::parse("{\"keys\": {\"sha256:" + kHashOfSecret + "\": \"solo\"}}", true, "k");
  ASSERT_TRUE(t) << t.err().describe();
  auto* solo = (*t)->authenticate("secret");
  ASSERT_NE(solo, nullptr);
  EXPECT_TRUE(solo->allows("anything"));
  std::chrono::milliseconds wait{0};
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE((*t)->admit(*solo, clock::now(), wait).ok());
}

// One key under two spellings ("sha256:H" and "H") for two tenants: one of them would never authenticate.
TEST(tenant_table, a_key_listed_twice_is_refused) {
  auto t = tenant_table::parse("{\"keys\": {\"sha256:" + kHashOfSecret + "\": \"acme\", \"" + kHashOfSecret +
                                   "\": \"beta\"}}",
                               true, "k");
  ASSERT_FALSE(t);
  EXPECT_NE(t.err().message.find("listed twice"), std::string::npos) << t.err().message;
}

TEST(tenant_table, bad_files_are_refused_with_the_place_named) {
  struct bad_case {
    std::string text;
    bool json;
    std::string says;
  };
  const std::vector<bad_case> cases = {
      {"[keys]\n\"secret\" = \"acme\"\n", false, "not a SHA-256"},  // a plain key instead of its hash
      {"[keys]\n", false, "at least one"},
      {"[keys]\n\"" + kHashOfSecret + "\" = \"acme\"\n[tenants.acme]\nrps = 5\n", false, "tenants.acme.rps: unknown field"},
      {"[keys]\n\"" + kHashOfSecret + "\" = \"acme\"\n[tenants.acme]\nrequests_per_s = -1\n", false, "requests_per_s"},
      {"[keys]\n\"" + kHashOfSecret + "\" = \"acme\"\n[tenants.acme]\npriority = 1.5\n", false, "priority"},
      {"[keys]\n\"" + kHashOfSecret + "\" = \"a b\"\n", false, "tenant name"},
      {"[keys]\n\"" + kHashOfSecret + "\" = 7\n", false, "expected a tenant name"},
      {"[keys\n", false, "keys.toml:1"},
      {"{\"keys\": ", true, "not valid JSON"},
      {"{\"keys\": {}, \"extra\": 1}", true, "extra: unknown table"},
  };
  for (const auto& c : cases) {
    auto t = tenant_table::parse(c.text, c.json, "keys.toml");
    ASSERT_FALSE(t) << c.text;
    EXPECT_NE(t.err().message.find(c.says), std::string::npos) << c.text << " -> " << t.err().message;
  }
  auto missing = tenant_table::load("/nonexistent/keys.toml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err().code, errc::io_error);
}

TEST(tenant_table, salts_bind_the_tenant_and_cannot_be_forged) {
  tenant acme{"acme"}, ac{"ac"};
  auto s1 = tenant_table::salt_for(acme, std::nullopt);
  auto s2 = tenant_table::salt_for(acme, std::string("x"));
  EXPECT_NE(s1, s2);
  // Tenant "ac" with client salt "me|" must not land on acme's salt, nor anything like it.
  EXPECT_NE(tenant_table::salt_for(ac, std::string("me|")), s1);
  EXPECT_NE(tenant_table::salt_for(ac, s1), s1);
}

TEST(tenant_table, request_rate_limit_refuses_with_the_wait) {
  auto t = tenant_table::parse("[keys]\n\"" + kHashOfSecret + "\" = \"a\"\n[tenants.a]\nrequests_per_s = 2\n", false, "k");
  ASSERT_TRUE(t);
  auto* a = (*t)->authenticate("secret");
  auto now = clock::now();
  std::chrono::milliseconds wait{0};
  EXPECT_TRUE((*t)->admit(*a, now, wait).ok());
  EXPECT_TRUE((*t)->admit(*a, now, wait).ok());
  auto third = (*t)->admit(*a, now, wait);
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.err().code, errc::rate_limited);
  EXPECT_NEAR(static_cast<double>(wait.count()), 500, 1);
  EXPECT_TRUE((*t)->admit(*a, now + 501ms, wait).ok()) << "one request refilled after half a second";
}

TEST(tenant_table, token_budget_is_charged_after_the_request) {
  auto t = tenant_table::parse("[keys]\n\"" + kHashOfSecret + "\" = \"a\"\n[tenants.a]\ntokens_per_min = 600\n", false, "k");
  ASSERT_TRUE(t);
  auto* a = (*t)->authenticate("secret");
  auto now = clock::now();
  std::chrono::milliseconds wait{0};
  EXPECT_TRUE((*t)->admit(*a, now, wait).ok());
  (*t)->charge_tokens(*a, 900, now);  // overspent by 300
  auto r = (*t)->admit(*a, now, wait);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::rate_limited);
  EXPECT_NEAR(static_cast<double>(wait.count()), 30100, 1) << "300 tokens of debt plus one, at 10 tokens/s";
  EXPECT_TRUE((*t)->admit(*a, now + wait, wait).ok());
}

TEST(token_bucket, unlimited_and_refill) {
  token_bucket none;
  auto now = clock::now();
  EXPECT_TRUE(none.take(1e9, now));
  token_bucket b(10, 1000ms, now);
  EXPECT_TRUE(b.take(10, now));
  EXPECT_FALSE(b.take(1, now));
  EXPECT_NEAR(static_cast<double>(b.wait_for(1, now).count()), 100, 1);
  EXPECT_TRUE(b.take(1, now + 101ms));
  EXPECT_DOUBLE_EQ(b.level(now + 10s), 10) << "never above capacity";
}

}  // namespace
}  // namespace yard::actors
