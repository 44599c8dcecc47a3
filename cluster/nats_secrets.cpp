// cluster/nats_secrets.cpp — see nats_secrets.hpp.
#include "cluster/nats_secrets.hpp"

#include <cstdlib>
#include <fstream>

#include "cluster/bus_permissions.hpp"

namespace yard::cluster {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

status fill_from_file(std::string& field, const std::string& path) {
  if (!field.empty() || path.empty()) return status::success();
  auto v = read_secret_file(path);
  if (!v) return v.err();
  field = std::move(*v);
  return status::success();
}

void fill_from_env(std::string& field, const char* name) {
  if (field.empty()) field = env(name);
}

}  // namespace

result<std::string> read_secret_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(errc::io_error, "cannot read secret file " + path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.empty()) return make_error(errc::bad_request, "secret file " + path + " is empty");
  return line;
}

status resolve_nats_secrets(transport::nats_options& o, const nats_secret_files& files) {
  if (auto s = fill_from_file(o.password, files.password_file); !s) return s;
  if (auto s = fill_from_file(o.token, files.token_file); !s) return s;
  fill_from_env(o.user, "YARD_NATS_USER");
  if (auto s = fill_from_file(o.password, env("YARD_NATS_PASSWORD_FILE")); !s) return s;
  fill_from_env(o.password, "YARD_NATS_PASSWORD");
  if (auto s = fill_from_file(o.token, env("YARD_NATS_TOKEN_FILE")); !s) return s;
  fill_from_env(o.token, "YARD_NATS_TOKEN");
  fill_from_env(o.creds_file, "YARD_NATS_CREDS");
  fill_from_env(o.tls_ca_file, "YARD_NATS_TLS_CA");
  fill_from_env(o.tls_cert_file, "YARD_NATS_TLS_CERT");
  fill_from_env(o.tls_key_file, "YARD_NATS_TLS_KEY");
  fill_from_env(o.inbox_prefix, "YARD_NATS_INBOX_PREFIX");
  auto tls = env("YARD_NATS_TLS");
  if (tls == "1" || tls == "true" || tls == "yes") o.tls = true;
  if (!o.user.empty() && o.password.empty() && o.creds_file.empty())
    return make_error(errc::bad_request, "NATS user '" + o.user + "' has no password (--nats-password-file or YARD_NATS_PASSWORD)");
  if (o.inbox_prefix.empty() && !o.user.empty()) o.inbox_prefix = inbox_prefix_for(o.user);
  return status::success();
}

url_credentials strip_url_credentials(const std::string& url) {
  url_credentials out;
  out.url = url;
  auto span = transport::find_userinfo(url);
  if (!span) return out;
  std::string info = url.substr(span->begin, span->at - span->begin);
  out.url = url.substr(0, span->begin) + url.substr(span->at + 1);
  auto colon = info.find(':');
  if (colon == std::string::npos) {
    out.token = info;
  } else {
    out.user = info.substr(0, colon);
    out.password = info.substr(colon + 1);
  }
  return out;
}

std::vector<std::string> nats_auth_env(const transport::nats_options& o) {
  std::vector<std::string> out;
  auto put = [&](const char* name, const std::string& v) {
    if (!v.empty()) out.push_back(std::string(name) + "=" + v);
  };
  put("YARD_NATS_USER", o.user);
  put("YARD_NATS_PASSWORD", o.password);
  put("YARD_NATS_TOKEN", o.token);
  put("YARD_NATS_CREDS", o.creds_file);
  put("YARD_NATS_TLS_CA", o.tls_ca_file);
  put("YARD_NATS_TLS_CERT", o.tls_cert_file);
  put("YARD_NATS_TLS_KEY", o.tls_key_file);
  put("YARD_NATS_INBOX_PREFIX", o.inbox_prefix);
  if (o.tls) out.push_back("YARD_NATS_TLS=1");
  return out;
}

}  // namespace yard::cluster
