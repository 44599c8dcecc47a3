#include "cluster/process_options.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include <filesystem>
#include <new>
#include <stdexcept>

#include "backends/external/openai_upstream_engine.hpp"
#include "messages/subject_token.hpp"
#include "backends/mock/mock_engine.hpp"
#include "backends/native/native_engine.hpp"
#include "backends/native/native_prompt_tokenizer.hpp"
#include "common/log.hpp"
#include "backends/timing_model.hpp"

namespace yard::cluster {

CLI::Validator subject_token_check() {
  return CLI::Validator(
      [](std::string& v) {
        return subjects::valid_token(v) ? std::string()
                                        : "'" + v + "' must be 1 to 128 characters of [A-Za-z0-9_-] (a NATS subject token)";
      },
      "TOKEN");
}

void add_process_flags(CLI::App& app, process_options& o, bool nats_required) {
  auto* nats = app.add_option("--nats", o.nats_urls, "NATS server URL(s), comma-separated (nats://host:4222)")
                   ->check(CLI::Validator([](std::string& v) { return v.empty() ? std::string("must not be empty") : std::string(); },
                                          "URL"));
  if (nats_required) nats->required();
  app.add_option("--namespace", o.ns, "subject namespace: subjects are yard.<namespace>.*")
      ->check(subject_token_check())
      ->capture_default_str();
  app.add_option("--nats-user", o.nats.user, "NATS user name");
  app.add_option("--nats-password", o.nats.password,
                 "NATS password (visible in /proc/<pid>/cmdline: prefer --nats-password-file or YARD_NATS_PASSWORD)");
  app.add_option("--nats-password-file", o.secrets.password_file, "file whose first line is the NATS password")
      ->check(CLI::ExistingFile);
  app.add_option("--nats-token", o.nats.token, "NATS auth token (visible in argv: prefer --nats-token-file or YARD_NATS_TOKEN)");
  app.add_option("--nats-token-file", o.secrets.token_file, "file whose first line is the NATS token")->check(CLI::ExistingFile);
  app.add_option("--nats-inbox-prefix", o.nats.inbox_prefix, "reply inbox prefix (default _INBOX_<user> with a user, else _INBOX)");
  app.add_option("--nats-creds", o.nats.creds_file, "NATS credentials file")->check(CLI::ExistingFile);
  app.add_flag("--nats-tls", o.nats.tls, "require TLS to NATS");
  app.add_option("--nats-tls-ca", o.nats.tls_ca_file, "CA certificate (PEM)")->check(CLI::ExistingFile);
  app.add_option("--nats-tls-cert", o.nats.tls_cert_file, "client certificate (PEM)")->check(CLI::ExistingFile);
  app.add_option("--nats-tls-key", o.nats.tls_key_file, "client key (PEM)")->check(CLI::ExistingFile);
  app.add_option("--log-level", o.log.level, "trace|debug|info|warn|error|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_flag("--log-json", o.log.json, "log one JSON object per line");
}

void finish_process_options(process_options& o, const std::string& client_name) {
  if (!o.nats_urls.empty()) o.nats.servers = transport::split_servers(o.nats_urls);
  o.nats.name = client_name;
  configure_logging(o.log);
  bool secret_in_argv = !o.nats.password.empty() || !o.nats.token.empty();
  if (auto s = resolve_nats_secrets(o.nats, o.secrets); !s) {
    std::fprintf(stderr, "yard: %s\n", s.err().message.c_str());
    std::exit(2);
  }
  if (secret_in_argv)
    component_logger("process")->warn("a NATS secret was given on the command line, where any local user can read it "
                                      "(/proc/<pid>/cmdline): use --nats-password-file/--nats-token-file or YARD_NATS_*");
}

void add_engine_flags(CLI::App& app, engine_options& o) {
  app.add_option("--engine", o.engine, "mock | native | openai (a worker in front of an OpenAI-compatible server, --upstream)")
      ->check(CLI::IsMember({"mock", "native", "openai"}))
      ->capture_default_str();
  app.add_option("--model", o.model,
                 "model name (mock), Hugging Face model folder (native), or the tokenizer's folder (openai; 'mock' = bytes)");
  auto& u = o.upstream;
  app.add_option("--upstream", u.url, "openai engine: the server's base URL, http(s)://host:port (vLLM, SGLang, llama-server, "
                                      "trtllm-serve, a Switchyard frontend)");
  app.add_option("--upstream-model", u.model, "openai engine: the server's model name (default: the first it lists)");
  app.add_option("--upstream-api-key-file", u.api_key_file, "openai engine: file whose first line is the server's API key "
                                                            "(else $YARD_UPSTREAM_API_KEY)")
      ->check(CLI::ExistingFile);
  app.add_option("--upstream-health-path", u.health_path, "openai engine: health endpoint ('' = GET /v1/models)")
      ->capture_default_str();
  app.add_option("--upstream-metrics-path", u.metrics_path, "openai engine: Prometheus metrics for load ('' = none)")
      ->capture_default_str();
  app.add_option("--upstream-max-inflight", u.max_inflight, "openai engine: streams open to the server at once")
      ->check(CLI::Range(1u, 65536u))
      ->capture_default_str();
  app.add_option("--upstream-poll-ms", u.poll_ms, "openai engine: health and metrics period")
      ->check(CLI::Range(50, 600000))
      ->capture_default_str();
  app.add_option("--upstream-health-timeout-ms", u.health_timeout_ms,
                 "openai engine: a health (or metrics) answer slower than this is a failed check")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--kv-events-endpoint", u.kv_events_endpoint,
                 "openai engine: the server's ZeroMQ KV-event publisher, tcp://host:port (vLLM/SGLang; default none: "
                 "the router routes this worker approximately)");
  app.add_option("--kv-events-replay-endpoint", u.kv_events_replay_endpoint,
                 "openai engine: the publisher's replay socket, to recover missed batches");
  app.add_option("--kv-events-source", u.kv_events_source, "openai engine: KV-event layout: vllm | sglang")
      ->check(CLI::IsMember({"vllm", "sglang"}))
      ->capture_default_str();
  app.add_option("--upstream-structured-output", u.structured_output,
                 "openai engine: how response_format goes to the server as a JSON schema: response_format (vLLM, "
                 "OpenAI-compatible) | sglang | llama.cpp | none (refused)")
      ->check(CLI::IsMember({"response_format", "sglang", "llama.cpp", "none"}))
      ->capture_default_str();
  app.add_option("--kv-events-topic", u.kv_events_topic, "openai engine: KV-event topic prefix (default all)");
  app.add_option("--token-delay-ms", o.token_delay_ms, "mock engine: model time per decode step")->capture_default_str();
  app.add_option("--speedup", o.speedup, "mock engine: run model time this many times faster")->capture_default_str();
  app.add_option("--profile", o.profile, "mock engine: timing profile JSON (profiles/default.json); implies profile timing")
      ->check(CLI::ExistingFile);
  app.add_option("--device", o.device,
                 "native engine: cpu | cuda | cuda:N (default $YARD_DEVICE, else cpu); a clear error when no GPU is usable");
  app.add_option("--quantize", o.quantize,
                 "native engine: none | int8 (linear weights quantised per output row at load; CPU only)")
      ->check(CLI::Validator(
          [](std::string& v) {
            auto q = backends::native::parse_weight_quant(v);
            return q ? std::string() : q.err().message;
          },
          "none|int8", "quantize"))
      ->capture_default_str();
  app.add_option("--block-size", o.block_size, "mock and openai engines: KV block size in tokens (openai: the server's)")
      ->capture_default_str();
  app.add_option("--num-blocks", o.num_blocks, "mock engine: KV pool capacity in blocks")
      ->check(CLI::Range(1u, 1u << 28))
      ->capture_default_str();
  app.add_option("--max-context", o.max_context,
                 "mock and openai engines: longest prompt + output in tokens; a request without max_tokens runs to it "
                 "(0 = mock: the profile's max_model_len, or 4096 in fixed-delay mode; openai: the server's max_model_len)")
      ->capture_default_str();
  app.add_option("--kv-host-blocks", o.tiers.host_blocks, "KV tier G2: host-memory blocks (0 = no G2)")->capture_default_str();
  app.add_option("--kv-disk-dir", o.tiers.disk_dir,
                 "KV tier G3: block directory of this worker (recovered at start; default none)");
  app.add_option("--kv-disk-blocks", o.tiers.disk_blocks, "KV tier G3: capacity in blocks")->capture_default_str();
  app.add_option("--kv-disk-max-pending", o.tiers.disk_max_pending_writes,
                 "KV tier G3: writes queued at most; beyond that offloads skip G3 (back-pressure)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))
      ->capture_default_str();
  app.add_option("--kv-write-through-hits", o.tiers.write_through_hits,
                 "KV tier G3: also write a G1 block to disk once its prefix is hit this often (0 = only on eviction)")
      ->capture_default_str();
  app.add_option("--kv-disk-key-file", o.tiers.disk_key_file, "KV tier G3: 32-byte key file, AES-256-GCM at rest")
      ->check(CLI::ExistingFile);
  app.add_option("--kv-g2-gbps", o.tiers.g2_gbps, "KV tiers: modelled G2->G1 bandwidth, GB/s (onboard decision)")
      ->capture_default_str();
  app.add_option("--kv-g3-gbps", o.tiers.g3_gbps, "KV tiers: modelled G3->G1 bandwidth, GB/s (onboard decision)")
      ->capture_default_str();
}

std::string served_model_name(const engine_options& o) {
  if (o.engine == "mock") return o.model.empty() ? "mock" : o.model;
  if (o.engine == "openai") {
    if (!o.upstream.model.empty()) return o.upstream.model;
    if (o.model.empty() || o.model == "mock") return "mock";
  }
  auto p = std::filesystem::path(o.model);
  if (p.has_filename()) return p.filename().string();
  return p.parent_path().filename().string();
}

result<std::string> resolve_device(const std::string& requested) {
  std::string d = requested;
  std::string from = "--device";
  if (d.empty()) {
    const char* env = std::getenv("YARD_DEVICE");
    d = env ? env : "";
    from = "YARD_DEVICE";
  }
  if (d.empty() || d == "cpu") return std::string("cpu");
  if (d == "cuda") return std::string("cuda");
  auto bad = [&](const std::string& why) {
    return make_error(errc::bad_request, from + " '" + d + "': " + why);
  };
  if (d.rfind("cuda:", 0) != 0) return bad("expected cpu, cuda or cuda:N");
  auto n = d.substr(5);
  if (n.empty() || n.size() > 3 || n.find_first_not_of("0123456789") != std::string::npos)
    return bad("expected cpu, cuda or cuda:N with N a device number");
  if (const char* vis = std::getenv("CUDA_VISIBLE_DEVICES"); vis && *vis) {
    std::string list = vis;
    auto ids = transport::split_servers(list);  // the same comma-separated list splitting
    if (std::find(ids.begin(), ids.end(), n) == ids.end())
      return bad("device " + n + " is not in CUDA_VISIBLE_DEVICES=" + list);
  }
  // Before any CUDA call in this process: device N becomes the only (index 0) device.
  ::setenv("CUDA_VISIBLE_DEVICES", n.c_str(), 1);
  return std::string("cuda");
}

namespace {

// --engine openai: the tokenizer (folder or bytes) and the server's address, key and KV events.
result<std::unique_ptr<backends::engine>> make_upstream_engine(const engine_options& o) {
  const auto& u = o.upstream;
  if (u.url.empty()) return make_error(errc::bad_request, "--engine openai needs --upstream URL (the server's base URL)");
  if (!o.device.empty() && o.device != "cpu")
    component_logger("engine")->warn("--device {} is for the native engine: the upstream server chooses its own", o.device);
  backends::external::openai_upstream_options uo;
  uo.upstream = u.url;
  uo.model = u.model;
  uo.health_path = u.health_path;
  uo.metrics_path = u.metrics_path;
  uo.max_inflight = u.max_inflight;
  uo.poll_ms = u.poll_ms;
  uo.health_timeout_ms = u.health_timeout_ms;
  uo.block_size = o.block_size;
  uo.max_context = o.max_context;
  uo.kv_events_endpoint = u.kv_events_endpoint;
  uo.kv_events_replay_endpoint = u.kv_events_replay_endpoint;
  uo.kv_events_topic = u.kv_events_topic;
  uo.kv_events_source = u.kv_events_source;
  uo.structured_output = u.structured_output;
  if (!u.api_key_file.empty()) {
    auto key = read_secret_file(u.api_key_file);  // the first line, as for the NATS secret files
    if (!key) return make_error(key.err().code, "--upstream-api-key-file: " + key.err().message);
    uo.api_key = std::move(*key);
  } else if (const char* k = std::getenv("YARD_UPSTREAM_API_KEY")) {
    uo.api_key = k;
  }
  if (o.model.empty() || o.model == "mock") {
    uo.tokenizer = std::make_shared<backends::byte_tokenizer>();
    uo.detokenize = [](const std::vector<msg::token_id>& ids) {
      std::string s;
      for (auto t : ids) s.push_back(static_cast<char>(t & 0xff));
      return s;
    };
  } else {
    auto t = backends::native_prompt_tokenizer::open(o.model);
    if (!t) return t.err();
    auto tok = std::make_shared<backends::native_prompt_tokenizer>(std::move(*t));
    uo.tokenizer = tok;
    uo.detokenize = [tok](const std::vector<msg::token_id>& ids) {
      return tok->vocab().decode(std::vector<backends::native::tok_id>(ids.begin(), ids.end()), true);
    };
  }
  return backends::external::make_openai_upstream_engine(std::move(uo));
}

}  // namespace

result<std::unique_ptr<backends::engine>> make_engine(const engine_options& o) {
  if (o.engine == "mock") {
    if (!o.device.empty() && o.device != "cpu")
      component_logger("engine")->warn("--device {} is for the native engine: the mock engine ignores it", o.device);
    if (!o.quantize.empty() && o.quantize != "none")
      component_logger("engine")->warn("--quantize {} is for the native engine: the mock engine ignores it", o.quantize);
    backends::mock_engine_options mo;
    if (!o.profile.empty() || o.token_delay_ms <= 0) {
      auto prof = o.profile.empty() ? result<backends::engine_profile>(backends::default_profile())
                                    : backends::load_profile(o.profile);
      if (!prof) return prof.err();
      mo = backends::mock_options_from_profile(*prof, o.speedup);
    } else {
      mo.per_token_delay_ms = o.token_delay_ms;
      mo.speedup = o.speedup;
      mo.block_size = o.block_size;
      mo.num_blocks = o.num_blocks;
    }
    if (o.max_context > 0) mo.max_context = o.max_context;
    mo.tiers = o.tiers;
    auto e = backends::mock_engine::create(mo);
    if (!e) return e.err();
    return std::unique_ptr<backends::engine>(std::move(*e));
  }
  if (o.engine == "native") {
    if (o.model.empty()) return make_error(errc::bad_request, "--engine native needs --model DIR (a Hugging Face model folder)");
    backends::native_engine_options no;
    no.tiers = o.tiers;
    auto dev = resolve_device(o.device);
    if (!dev) return dev.err();
    no.device = *dev;
    auto q = backends::native::parse_weight_quant(o.quantize);
    if (!q) return q.err();
    no.quantize = *q;
    try {
      return backends::make_native_engine(o.model, no);
    } catch (const std::bad_alloc&) {  // sizes that pass every check and still do not fit this machine
      return make_error(errc::unavailable, "loading " + o.model + ": out of memory (the weights, the KV pool or a "
                                           "buffer sized from config.json do not fit)");
    } catch (const std::length_error& e) {
      return make_error(errc::corrupt, "loading " + o.model + ": a size from its files is out of range (" + e.what() + ")");
    }
  }
  if (o.engine == "openai") return make_upstream_engine(o);
  return make_error(errc::unsupported, "engine '" + o.engine + "' is not available in this build");
}

result<std::shared_ptr<const backends::prompt_tokenizer>> make_prompt_tokenizer(const engine_options& o) {
  const bool bytes = o.engine == "mock" || (o.engine == "openai" && (o.model.empty() || o.model == "mock"));
  if (bytes) return std::shared_ptr<const backends::prompt_tokenizer>(std::make_shared<backends::byte_tokenizer>());
  if (o.engine == "native" || o.engine == "openai") {
    if (o.model.empty()) return make_error(errc::bad_request, "--engine native needs --model DIR (a Hugging Face model folder)");
    auto t = backends::native_prompt_tokenizer::open(o.model);
    if (!t) return t.err();
    return std::shared_ptr<const backends::prompt_tokenizer>(std::make_shared<backends::native_prompt_tokenizer>(std::move(*t)));
  }
  return make_error(errc::unsupported, "engine '" + o.engine + "' is not available in this build");
}

namespace {

// Written by the signal handler, read by wait_for_stop_signal(). A handler
// (not sigwait on a blocked mask) because libraries start threads before
// main — OpenBLAS does — and a signal delivered to one of those would
// otherwise take its default action and kill the process mid-drain.
int stop_pipe[2] = {-1, -1};

void on_stop_signal(int sig) {
  unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] auto n = ::write(stop_pipe[1], &b, 1);
}

}  // namespace

void block_stop_signals() {
  if (stop_pipe[0] < 0 && ::pipe2(stop_pipe, O_CLOEXEC) != 0) return;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A child inherits a blocked mask through fork+exec: make sure ours is open.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

int wait_for_stop_signal() {
  unsigned char b = 0;
  while (true) {
    auto n = ::read(stop_pipe[0], &b, 1);
    if (n == 1) return b;
    if (n < 0 && errno == EINTR) continue;
    return 0;
  }
}

}  // namespace yard::cluster
