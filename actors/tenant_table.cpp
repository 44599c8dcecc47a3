// actors/tenant_table.cpp — key file parsing (TOML through toml++'s JSON
// formatter, then one validation over nlohmann::json), lookups and limits.
#include "actors/tenant_table.hpp"

#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace yard::actors {

using nlohmann::json;

bool tenant::allows(const std::string& model) const {
  return models.empty() || std::find(models.begin(), models.end(), model) != models.end();
}

namespace {

bool is_hex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A non-negative number field, or an error naming it.
status read_number(const json& t, const std::string& where, const char* field, double& out) {
  auto it = t.find(field);
  if (it == t.end()) return status::success();
  if (!it->is_number() || it->get<double>() < 0)
    return make_error(errc::bad_request, where + "." + field + ": expected a number >= 0");
  out = it->get<double>();
  return status::success();
}

result<tenant> read_tenant(const std::string& name, const json& t, const std::string& source) {
  std::string where = source + ": tenants." + name;
  if (!tenant_table::valid_name(name)) return make_error(errc::bad_request, where + ": a tenant name is letters, digits, '_', '-', '.'");
  if (!t.is_object()) return make_error(errc::bad_request, where + ": expected a table");
  static const std::set<std::string> known = {"models", "requests_per_s", "tokens_per_min", "priority"};
  for (auto it = t.begin(); it != t.end(); ++it)
    if (!known.count(it.key()))
      return make_error(errc::bad_request, where + "." + it.key() + ": unknown field (models, requests_per_s, tokens_per_min, priority)");
  tenant out;
  out.name = name;
  if (auto m = t.find("models"); m != t.end()) {
    if (!m->is_array()) return make_error(errc::bad_request, where + ".models: expected a list of model names");
    for (const auto& x : *m) {
      if (!x.is_string()) return make_error(errc::bad_request, where + ".models: expected a list of model names");
      out.models.push_back(x.get<std::string>());
    }
  }
  if (auto s = read_number(t, where, "requests_per_s", out.requests_per_s); !s) return s.err();
  if (auto s = read_number(t, where, "tokens_per_min", out.tokens_per_min); !s) return s.err();
  if (auto p = t.find("priority"); p != t.end()) {
    if (!p->is_number_integer()) return make_error(errc::bad_request, where + ".priority: expected an integer");
    out.priority = p->get<std::int32_t>();
  }
  return out;
}

}  // namespace

result<std::shared_ptr<tenant_table>> tenant_table::parse(std::string_view text, bool is_json, const std::string& source) {
  json doc;
  if (is_json) {
    doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) return make_error(errc::bad_request, source + ": not valid JSON");
  } else {
    toml::parse_result parsed = toml::parse(text, source);
    if (!parsed) {
      const auto& e = parsed.error();
      return make_error(errc::bad_request, fmt::format("{}:{}: {}", source, e.source().begin.line, e.description()));
    }
    std::ostringstream os;
    os << toml::json_formatter{parsed.table()};
    doc = json::parse(os.str(), nullptr, false);
    if (doc.is_discarded()) return make_error(errc::internal, source + ": TOML could not be converted");
  }
  if (!doc.is_object()) return make_error(errc::bad_request, source + ": expected a table with 'keys' and 'tenants'");
  for (auto it = doc.begin(); it != doc.end(); ++it)
    if (it.key() != "keys" && it.key() != "tenants")
      return make_error(errc::bad_request, source + ": " + it.key() + ": unknown table (keys, tenants)");
  auto table = std::make_shared<tenant_table>();
  if (auto ts = doc.find("tenants"); ts != doc.end()) {
    if (!ts->is_object()) return make_error(errc::bad_request, source + ": tenants: expected a table of tenants");
    for (auto it = ts->begin(); it != ts->end(); ++it) {
      auto t = read_tenant(it.key(), it.value(), source);
      if (!t) return t.err();
      table->tenants_.emplace(it.key(), std::move(*t));
    }
  }
  auto ks = doc.find("keys");
  if (ks == doc.end() || !ks->is_object() || ks->empty())
    return make_error(errc::bad_request, source + ": keys: expected at least one \"<sha256 hex of the key>\" = \"<tenant>\"");
  for (auto it = ks->begin(); it != ks->end(); ++it) {
    std::string hash = it.key();
    if (hash.rfind("sha256:", 0) == 0) hash = hash.substr(7);
    if (!is_hex64(hash))
      return make_error(errc::bad_request, source + ": keys: '" + it.key() +
                                               "' is not a SHA-256 hex digest (store hashes, not keys: `yard api-key`)");
    if (!it->is_string()) return make_error(errc::bad_request, source + ": keys." + it.key() + ": expected a tenant name");
    auto name = it->get<std::string>();
    if (!valid_name(name))
      return make_error(errc::bad_request, source + ": keys." + it.key() + ": a tenant name is letters, digits, '_', '-', '.'");
    // A tenant named only by its keys has no limits and every model.
    if (!table->tenants_.count(name)) table->tenants_.emplace(name, tenant{name, {}, 0, 0, 0});
    // "sha256:H" and "H" (or case variants) are one key: listed twice it would silently serve one tenant only.
    auto [at, fresh] = table->key_to_tenant_.emplace(lower(hash), name);
    if (!fresh)
      return make_error(errc::bad_request, source + ": keys: the key hash " + lower(hash) + " is listed twice (tenants '" +
                                               at->second + "' and '" + name + "')");
  }
  return table;
}

// Tenant names appear in metric labels and logs: keep them plain.
bool tenant_table::valid_name(const std::string& name) {
  return !name.empty() && name.size() <= 128 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

result<std::shared_ptr<tenant_table>> tenant_table::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(errc::io_error, path + ": cannot read the API key file");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto first = text.find_first_not_of(" \t\r\n");
  bool is_json = (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) ||
                 (first != std::string::npos && text[first] == '{');
  return parse(text, is_json, path);
}

std::string tenant_table::key_hash(std::string_view key) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(key.data(), key.size(), md, &len, EVP_sha256(), nullptr);
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

const tenant* tenant_table::authenticate(std::string_view key) const {
  if (key.empty()) return nullptr;
  auto it = key_to_tenant_.find(key_hash(key));
  if (it == key_to_tenant_.end()) return nullptr;
  auto t = tenants_.find(it->second);
  return t == tenants_.end() ? nullptr : &t->second;
}

status tenant_table::admit(const tenant& t, clock::time_point now, std::chrono::milliseconds& retry_after) {
  if (t.requests_per_s <= 0 && t.tokens_per_min <= 0) return status::success();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(t.name);
  if (it == buckets_.end())
    it = buckets_
             .emplace(t.name, buckets{token_bucket(t.requests_per_s, std::chrono::seconds(1), now),
                                      token_bucket(t.tokens_per_min, std::chrono::minutes(1), now)})
             .first;
  auto& b = it->second;
  // Tokens: admitted while the minute's budget is not overspent (the cost is charged at the end).
  if (b.tokens.limited() && b.tokens.level(now) <= 0) {
    retry_after = b.tokens.wait_for(1, now);
    return make_error(errc::rate_limited, fmt::format("tenant '{}' is over its token limit ({} tokens/min)", t.name, t.tokens_per_min));
  }
  if (!b.requests.take(1, now)) {
    retry_after = b.requests.wait_for(1, now);
    return make_error(errc::rate_limited, fmt::format("tenant '{}' is over its request limit ({} requests/s)", t.name, t.requests_per_s));
  }
  return status::success();
}

void tenant_table::charge_tokens(const tenant& t, std::uint64_t tokens, clock::time_point now) {
  if (t.tokens_per_min <= 0 || tokens == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(t.name);
  if (it != buckets_.end()) it->second.tokens.debit(static_cast<double>(tokens), now);
}

std::string tenant_table::salt_for(const tenant& t, const std::optional<std::string>& client_salt) {
  return fmt::format("tenant:{}:{}|{}", t.name.size(), t.name, client_salt.value_or(""));
}

std::vector<std::string> tenant_table::tenant_names() const {
  std::vector<std::string> out;
  for (const auto& [n, t] : tenants_) out.push_back(n);
  return out;
}

}  // namespace yard::actors
