// actors/http_routes.cpp — which handler a request goes to on one connection (see http_connection.hpp):
// the route table (/health, /metrics, /v1/models[/{id}], /v1/completions, /v1/chat/completions), API keys on
// /v1/, HEAD as GET without a body, CORS (preflights and Access-Control-Allow-Origin for listed origins), 405
// with Allow for a known path's other methods, 404 for the rest. Reading and writing stay in
// http_connection.cpp, generate requests in http_generate.cpp.
#include "actors/http_connection.hpp"
#include "actors/http_wire.hpp"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace yard::actors {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

using http_wire::unix_now;

namespace {
// `origin` is one of `allowed` (exactly, as browsers send it: scheme://host[:port]), or "*" is.
bool cors_allows(const std::vector<std::string>& allowed, const std::string& origin) {
  for (const auto& a : allowed)
    if (a == "*" || a == origin) return true;
  return false;
}
}  // namespace

void http_connection::route() {
  auto& req = parser_->get();
  keep_alive_ = req.keep_alive() && !ctx_->draining;
  http10_ = req.version() < 11;
  std::string target(req.target());
  if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
  auto method = req.method();
  std::string method_name(req.method_string());
  // HEAD is GET without the body (RFC 9110 9.3.2): same status and headers, Content-Length included.
  head_only_ = method == bhttp::verb::head;
  if (head_only_) method = bhttp::verb::get;
  std::string api_key;
  if (ctx_->opts.tenants) {
    // OpenAI SDKs send "Authorization: Bearer KEY"; Azure-style clients "api-key: KEY".
    auto auth = req[bhttp::field::authorization];
    beast::string_view key;
    if (auth.size() > 7 && beast::iequals(auth.substr(0, 7), "Bearer ")) key = auth.substr(7);
    else if (auto k = req["api-key"]; !k.empty()) key = k;
    else key = req["x-api-key"];
    while (!key.empty() && (key.front() == ' ' || key.front() == '\t')) key.remove_prefix(1);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.remove_suffix(1);
    api_key.assign(key.data(), key.size());
  }
  auto header = [&](const char* name) {
    auto v = req[name];
    return std::string(v.data(), v.size());
  };
  hints_ = {header("x-priority"), header("x-latency-class"), header("x-session-id"), header("x-expected-output-tokens")};
  const std::string origin = header("origin");
  const bool cors = !origin.empty() && cors_allows(ctx_->opts.cors_origins, origin);
  if (cors) extra_headers_ += "Access-Control-Allow-Origin: " + origin + "\r\nVary: Origin\r\n";
  if (method == bhttp::verb::options && cors) {  // a browser's preflight: no key is sent with it
    std::string asked = header("access-control-request-headers");
    extra_headers_ += "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\nAccess-Control-Allow-Headers: " +
                      (asked.empty() ? std::string("Authorization, Content-Type") : asked) +
                      "\r\nAccess-Control-Max-Age: 600\r\n";
    body_.clear();
    parser_.reset();
    return respond(204, "text/plain", "");
  }
  body_ = std::move(req.body());
  parser_.reset();  // an open stream keeps no parser
  auto& view = *ctx_->view;
  if (method == bhttp::verb::get && target == "/health") {
    auto n = view.live_workers();
    nlohmann::json body = {{"status", n > 0 ? "ok" : "unavailable"}, {"workers", n}, {"models", view.models()}};
    return respond(n > 0 ? 200 : 503, "application/json", body.dump());
  }
  if (method == bhttp::verb::get && target == "/metrics") {
    auto body = ctx_->metrics->render();
    render_worker_metrics(body, view.workers());
    return respond(200, "text/plain; version=0.0.4", body);
  }
  if (target.rfind("/v1/", 0) == 0 && !authenticate(api_key)) return;
  if (method == bhttp::verb::get && target == "/v1/models") {
    auto models = view.models();
    if (tenant_) std::erase_if(models, [&](const std::string& m) { return !tenant_->allows(m); });
    tenant_ = nullptr;
    return respond(200, "application/json", openai::models_body(models, unix_now()));
  }
  if (method == bhttp::verb::get && target.rfind("/v1/models/", 0) == 0) {  // the SDKs' models.retrieve
    const std::string id = target.substr(std::string_view("/v1/models/").size());
    auto models = view.models();
    const bool allowed = !tenant_ || tenant_->allows(id);
    tenant_ = nullptr;
    if (!allowed || std::find(models.begin(), models.end(), id) == models.end())
      return respond_error(errc::not_found, "model '" + id + "' does not exist");
    return respond(200, "application/json", openai::model_body(id, unix_now()));
  }
  if (method == bhttp::verb::post && target == "/v1/completions") return serve_generate(openai::endpoint::completions);
  if (method == bhttp::verb::post && target == "/v1/chat/completions") return serve_generate(openai::endpoint::chat);
  // A known path asked with another method is a 405 naming the one it takes.
  const char* allow = nullptr;
  if (target == "/health" || target == "/metrics" || target == "/v1/models") allow = "GET, HEAD";
  else if (target == "/v1/completions" || target == "/v1/chat/completions") allow = "POST";
  if (allow) {
    extra_headers_ += fmt::format("Allow: {}\r\n", allow);
    ctx_->metrics->count_error(405);
    account_tenant(405, nullptr);
    return respond(405, "application/json",
                   openai::error_body(errc::bad_request, method_name + " is not allowed on " + target + " (allowed: " + allow + ")"));
  }
  respond_error(errc::not_found, "no route for " + method_name + " " + target);
}

}  // namespace yard::actors
