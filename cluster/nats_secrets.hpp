// cluster/nats_secrets.hpp — NATS credentials from files and the environment.
//
// Owns: turning --nats-password-file / --nats-token-file and the YARD_NATS_*
// environment variables into transport::nats_options, and the reverse: the
// environment entries that hand a process's NATS auth to a child (the agent's
// workers) so no secret ever appears in an argv (/proc/<pid>/cmdline).
// Precedence: a flag given on the command line, then a file, then the environment.
// Environment: YARD_NATS_USER, YARD_NATS_PASSWORD, YARD_NATS_PASSWORD_FILE,
// YARD_NATS_TOKEN, YARD_NATS_TOKEN_FILE, YARD_NATS_CREDS, YARD_NATS_TLS (1/true),
// YARD_NATS_TLS_CA, YARD_NATS_TLS_CERT, YARD_NATS_TLS_KEY, YARD_NATS_INBOX_PREFIX.
// Must not touch: connections, logging of secret values (never log them).
// Thread-safety: reads the environment; call on the main thread at start-up.
#pragma once

#include <string>
#include <vector>

#include "common/status.hpp"
#include "transport/nats_connection.hpp"

namespace yard::cluster {

struct nats_secret_files {
  std::string password_file;  // first line is the password (default none)
  std::string token_file;     // first line is the token (default none)
};

// The first line of a secret file (trailing CR/LF removed). errc::io_error naming the
// file when it cannot be read, errc::bad_request when it is empty.
result<std::string> read_secret_file(const std::string& path);

// Fills the auth fields of `o` that are still empty from `files`, then from the
// environment; sets o.inbox_prefix to "_INBOX_<user>" when a user is known and no
// prefix was given (a permissioned bus gives each user its own inbox prefix).
status resolve_nats_secrets(transport::nats_options& o, const nats_secret_files& files);

// A server URL without its userinfo, and what that userinfo said
// ("nats://u:p@h:4222" -> url "nats://h:4222", user "u", password "p";
// "nats://tok@h" -> token "tok").
struct url_credentials {
  std::string url, user, password, token;
};
url_credentials strip_url_credentials(const std::string& url);

// "NAME=value" entries carrying o's auth to a child process.
std::vector<std::string> nats_auth_env(const transport::nats_options& o);

}  // namespace yard::cluster
