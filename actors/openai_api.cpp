// actors/openai_api.cpp — OpenAI error JSON and /v1/models (parsing: openai_parse.cpp; rendering: openai_render.cpp).
#include "actors/openai_api.hpp"

namespace yard::actors::openai {

using nlohmann::json;

int http_status_for(errc code) {
  switch (code) {
    case errc::bad_request: return 400;
    case errc::unauthorized: return 401;
    case errc::rate_limited: return 429;
    case errc::not_found: return 404;
    case errc::timeout: return 504;
    case errc::conflict: return 409;
    case errc::payload_too_large: return 413;
    case errc::unavailable: return 503;
    case errc::resource_exhausted: return 429;
    default: return 500;
  }
}

namespace {

// The field a 400 message names: "... field 'X' ..." (parse errors, worker
// and engine errors alike) -> "X".
json param_of(const std::string& message) {
  const std::string key = "field '";
  auto at = message.find(key);
  if (at == std::string::npos) return nullptr;
  auto end = message.find('\'', at + key.size());
  if (end == std::string::npos) return nullptr;
  return message.substr(at + key.size(), end - at - key.size());
}

}  // namespace

std::string error_body(errc code, const std::string& message) {
  const char* type = "server_error";
  if (code == errc::bad_request || code == errc::payload_too_large || code == errc::conflict) type = "invalid_request_error";
  else if (code == errc::not_found) type = "not_found_error";
  else if (code == errc::unavailable) type = "service_unavailable";
  std::string code_name(to_string(code));
  // OpenAI's own codes where clients look for them.
  if (code == errc::unauthorized) {
    type = "invalid_request_error";
    code_name = "invalid_api_key";
  } else if (code == errc::rate_limited) {
    type = "rate_limit_error";
    code_name = "rate_limit_exceeded";
  }
  json param = code == errc::bad_request ? param_of(message) : json(nullptr);
  // The codes OpenAI's clients (and LangChain, LiteLLM) branch on: a prompt too long for the model, a model that
  // is not there.
  if (code == errc::bad_request && (message.find("context of") != std::string::npos ||
                                    message.find("leaves no room in the context") != std::string::npos))
    code_name = "context_length_exceeded";
  if (code == errc::not_found && message.rfind("model '", 0) == 0) {
    type = "invalid_request_error";
    code_name = "model_not_found";
    param = "model";
  }
  json e = {{"error", {{"message", message}, {"type", type}, {"param", param}, {"code", code_name}}}};
  return e.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {
json model_object(const std::string& id, std::int64_t created) {
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "switchyard"}};
}
}  // namespace

std::string models_body(const std::vector<std::string>& models, std::int64_t created) {
  json data = json::array();
  for (const auto& m : models) data.push_back(model_object(m, created));
  return json{{"object", "list"}, {"data", data}}.dump();
}

std::string model_body(const std::string& id, std::int64_t created) { return model_object(id, created).dump(); }

}  // namespace yard::actors::openai
