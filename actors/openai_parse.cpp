// actors/openai_parse.cpp — OpenAI request bodies -> generate_request + render_options (see openai_api.hpp).
//
// Every top-level field is in one of four classes per endpoint:
//   supported    parsed, range-checked (400 naming the field), honoured;
//   ignorable    OpenAI fields with no effect on the output: user (also the tenant),
//                metadata, store, parallel_tool_calls (several calls are always allowed),
//                modalities ["text"], best_of 1 (n is supported);
//   unsupported  OpenAI (or well-known vLLM) fields Switchyard does not implement:
//                400 "unsupported field 'X'" — never silently dropped;
//   unknown      anything else: ignored, as before (clients send extensions).
// A JSON null counts as absent for every field.
#include <algorithm>
#include <cmath>

#include "actors/openai_api.hpp"
#include "actors/openai_parse_tools.hpp"
#include "backends/sampling_checks.hpp"
#include "messages/codec.hpp"

namespace yard::actors::openai {

using nlohmann::json;

namespace {

using parse_detail::bad;
using parse_detail::find;

error unsupported(const std::string& field, const std::string& why) {
  return bad("unsupported field '" + field + "': " + why);
}

template <class T>
status read_opt(const json& body, const char* name, T& out) {
  const json* v = find(body, name);
  if (!v) return status::success();
  std::string err;
  if (!msg::detail::json_read(*v, out, err, name)) return bad(err);
  return status::success();
}

// Known fields Switchyard does not implement, with the reason given back.
status reject_unsupported(const json& j, endpoint ep) {
  static const std::vector<std::pair<const char*, const char*>> always = {
      {"functions", "the deprecated 'functions' field is not supported; use 'tools'"},
      {"function_call", "the deprecated 'function_call' field is not supported; use 'tool_choice'"},
      {"audio", "audio output is not supported"},
      {"prediction", "predicted outputs are not supported"},
      {"reasoning_effort", "reasoning models are not supported"},
      {"web_search_options", "web search is not supported"},
      {"suffix", "insertion (suffix) is not supported"},
      // Well-known vLLM extensions that would change the output.
      {"min_p", "min_p sampling is not implemented"},
      {"ignore_eos", "ignore_eos is not implemented"},
      {"prompt_logprobs", "prompt logprobs are not implemented"},
      {"use_beam_search", "beam search is not implemented"},
      {"guided_json", "use response_format {\"type\": \"json_schema\"} for structured output"},
      {"guided_regex", "regex-constrained output is not implemented; use response_format json_schema"},
      {"guided_choice", "choice-constrained output is not implemented; use a json_schema with an enum"},
      {"guided_grammar", "grammar-constrained output is not implemented; use response_format json_schema"},
  };
  for (const auto& [name, why] : always) {
    const json* v = find(j, name);
    if (!v) continue;
    if (std::string(name) == "suffix" && v->is_string() && v->get_ref<const std::string&>().empty()) continue;
    return unsupported(name, why);
  }
  if (const json* m = find(j, "modalities")) {
    if (!m->is_array()) return bad("field 'modalities' must be an array");
    for (const auto& x : *m)
      if (x != "text") return unsupported("modalities", "only [\"text\"] is supported");
  }
  if (const json* n = find(j, "n")) {
    std::int64_t v = 0;
    std::string err;
    if (!msg::detail::json_read(*n, v, err, "n")) return bad(err);
    if (v < 1 || v > 128) return bad("field 'n' must be in [1, 128]");
  }
  if (const json* b = find(j, "best_of")) {
    std::int64_t v = 0;
    std::string err;
    if (!msg::detail::json_read(*b, v, err, "best_of")) return bad(err);
    if (v < 1 || v > 20) return bad("field 'best_of' must be in [1, 20]");
    if (v > 1) return unsupported("best_of", "best_of > 1 (server-side ranking of choices) is not implemented; use n");
  }
  if (ep == endpoint::chat && find(j, "echo")) return status::success();  // not an OpenAI chat field: ignored
  return status::success();
}

status parse_messages(const json& j, msg::generate_request& r) {
  const json* it = find(j, "messages");
  if (!it) return bad("missing required field 'messages'");
  if (!it->is_array() || it->empty()) return bad("field 'messages' must be a non-empty array");
  std::vector<msg::chat_message> msgs;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& m = (*it)[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return bad("field '" + at + "' must be an object");
    msg::chat_message cm;
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return bad("field '" + at + ".role' must be a string");
    cm.role = role->get<std::string>();
    if (cm.role == "function")
      return unsupported(at + ".role", "'function' messages (deprecated) are not supported; use role 'tool'");
    if (cm.role != "system" && cm.role != "developer" && cm.role != "user" && cm.role != "assistant" && cm.role != "tool")
      return bad("field '" + at + ".role' must be one of system, developer, user, assistant, tool");
    for (const char* f : {"function_call", "audio"})
      if (auto x = m.find(f); x != m.end() && !x->is_null())
        return unsupported(at + "." + f, std::string(f) == "audio" ? "audio is not supported" : "use 'tool_calls'");
    if (auto s = parse_message_tools(m, at, cm); !s) return s;
    auto content = m.find("content");
    if (content != m.end() && content->is_string()) {
      cm.content = content->get<std::string>();
    } else if (content != m.end() && content->is_array()) {
      for (std::size_t k = 0; k < content->size(); ++k) {
        const auto& part = (*content)[k];
        const std::string pat = at + ".content[" + std::to_string(k) + "]";
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
          return bad("field '" + pat + "' must be an object with a string 'type'");
        const auto& type = part["type"].get_ref<const std::string&>();
        if (type != "text")
          return unsupported(pat, "content parts of type '" + type + "' (images, audio, files) are not supported; only 'text'");
        if (!part.contains("text") || !part["text"].is_string()) return bad("field '" + pat + ".text' must be a string");
        cm.content += part["text"].get<std::string>();
      }
    } else if (content != m.end() && !content->is_null()) {
      return bad("field '" + at + ".content' must be a string or an array of parts");
    }
    msgs.push_back(std::move(cm));
  }
  r.messages = std::move(msgs);
  return status::success();
}

status parse_prompt(const json& j, msg::generate_request& r) {
  const json* it = find(j, "prompt");
  if (!it) return bad("missing required field 'prompt'");
  if (it->is_string()) {
    r.prompt = it->get<std::string>();
  } else if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) {
    std::vector<msg::token_id> toks;
    std::string err;
    if (!msg::detail::json_read(*it, toks, err, "prompt")) return bad(err);
    r.token_ids = std::move(toks);
  } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
    r.prompt = (*it)[0].get<std::string>();
  } else if (it->is_array() && it->size() == 1 && (*it)[0].is_array() && !(*it)[0].empty()) {
    std::vector<msg::token_id> toks;  // a batch of one token-id prompt, as the SDKs may send it
    std::string err;
    if (!msg::detail::json_read((*it)[0], toks, err, "prompt[0]")) return bad(err);
    r.token_ids = std::move(toks);
  } else if (it->is_array() && it->size() > 1) {
    return unsupported("prompt", "several prompts in one request are not implemented; send one request per prompt");
  } else {
    return bad("field 'prompt' must be a string, an array of token ids, or a one-element array of either");
  }
  return status::success();
}

status parse_logit_bias(const json& j, msg::sampling_params& sp) {
  const json* lb = find(j, "logit_bias");
  if (!lb) return status::success();
  if (!lb->is_object()) return bad("field 'logit_bias' must be an object mapping token ids to biases");
  if (lb->size() > 300) return bad("field 'logit_bias' may hold at most 300 entries");
  for (auto it = lb->begin(); it != lb->end(); ++it) {
    const std::string& key = it.key();
    const std::string at = "logit_bias." + key;
    if (key.empty() || key.size() > 10 || !std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return bad("field 'logit_bias' keys must be token ids (decimal strings); got '" + key + "'");
    auto id = std::stoull(key);
    if (id > 0xffffffffULL) return bad("field 'logit_bias' key '" + key + "' is out of range");
    if (!it.value().is_number()) return bad("field 'logit_bias' values must be numbers (at '" + at + "')");
    const double b = it.value().get<double>();  // its range: check_sampling
    sp.logit_bias.push_back(msg::logit_bias_entry{static_cast<msg::token_id>(id), static_cast<float>(b)});
  }
  return status::success();
}

status parse_sampling(const json& j, endpoint ep, msg::generate_request& r, render_options& ro) {
  auto& sp = r.sampling;
  // Types here; the ranges are backends::check_sampling's (the worker applies the same), called by parse_body.
  for (auto [name, field] : {std::pair{"temperature", &sp.temperature}, {"top_p", &sp.top_p},
                             {"presence_penalty", &sp.presence_penalty}, {"frequency_penalty", &sp.frequency_penalty},
                             {"repetition_penalty", &sp.repetition_penalty}})
    if (auto s = read_opt(j, name, *field); !s) return s;
  if (auto s = read_opt(j, "top_k", sp.top_k); !s) return s;
  if (sp.top_k == -1) sp.top_k = 0;
  if (auto s = read_opt(j, "seed", sp.seed); !s) return s;
  if (auto s = parse_logit_bias(j, sp); !s) return s;
  if (auto s = read_opt(j, "min_tokens", sp.min_tokens); !s) return s;
  if (ep == endpoint::completions) {
    if (const json* lp = find(j, "logprobs")) {
      std::int64_t k = 0;
      std::string err;
      if (lp->is_boolean() || !msg::detail::json_read(*lp, k, err, "logprobs"))
        return bad("field 'logprobs' must be an integer in [0, 5] on /v1/completions");
      if (k < 0 || k > 5) return bad("field 'logprobs' must be in [0, 5]");
      sp.logprobs = ro.logprobs = true;
      sp.top_logprobs = ro.top_logprobs = static_cast<std::uint32_t>(k);
    }
    if (find(j, "top_logprobs")) return bad("field 'top_logprobs' is a chat field; /v1/completions takes 'logprobs': N");
  } else {
    bool want = false;
    if (const json* lp = find(j, "logprobs")) {
      if (!lp->is_boolean()) return bad("field 'logprobs' must be a boolean on /v1/chat/completions");
      want = lp->get<bool>();
    }
    std::uint32_t k = 0;
    if (auto s = read_opt(j, "top_logprobs", k); !s) return s;
    if (find(j, "top_logprobs") && !want) return bad("field 'top_logprobs' needs 'logprobs': true");
    sp.logprobs = ro.logprobs = want;
    sp.top_logprobs = ro.top_logprobs = want ? k : 0;
  }
  return status::success();
}

status parse_stops(const json& j, msg::generate_request& r) {
  if (const json* st = find(j, "stop")) {
    if (st->is_string()) {
      r.stop = {st->get<std::string>()};
    } else {
      if (auto s = read_opt(j, "stop", r.stop); !s) return bad("field 'stop' must be a string or an array of strings");
      if (r.stop.size() > 4) return bad("field 'stop' may hold at most 4 strings");
    }
    for (const auto& s : r.stop)
      if (s.empty()) return bad("field 'stop' must not contain an empty string");
  }
  if (auto s = read_opt(j, "stop_token_ids", r.stop_token_ids); !s) return s;
  return status::success();
}

result<parsed_request> parse_body(const std::string& body, endpoint ep, const std::string& request_id,
                                  const request_hint_headers& headers) {
  // The HTTP layer bounds the body (--max-body-bytes, any size); here only the nesting depth is.
  msg::decode_limits lim;
  lim.max_bytes = std::max(lim.max_bytes, body.size());
  auto tree = msg::parse_json_tree(body, lim);
  if (!tree) return bad("request body is not valid JSON: " + tree.err().message);
  const json& j = *tree;
  if (!j.is_object()) return bad("request body must be a JSON object");
  if (auto s = reject_unsupported(j, ep); !s) return s.err();
  parsed_request out;
  auto& r = out.gen;
  auto& ro = out.render;
  r.request_id = request_id;
  r.stream = false;  // OpenAI's default
  if (const json* n = find(j, "n"); n && n->is_number_integer()) ro.n = n->get<std::uint32_t>();  // checked above
  if (auto s = read_opt(j, "model", r.model); !s) return s.err();
  if (auto s = ep == endpoint::chat ? parse_messages(j, r) : parse_prompt(j, r); !s) return s.err();
  // max_tokens absent = until the context ends (resolved by the engine).
  std::optional<std::uint32_t> max_tokens, max_completion;
  if (auto s = read_opt(j, "max_tokens", max_tokens); !s) return s.err();
  if (auto s = read_opt(j, "max_completion_tokens", max_completion); !s) return s.err();
  if (max_tokens && *max_tokens == 0) return bad("field 'max_tokens' must be at least 1");
  if (max_completion && *max_completion == 0) return bad("field 'max_completion_tokens' must be at least 1");
  r.max_tokens = max_completion ? *max_completion : max_tokens.value_or(0);  // max_completion_tokens wins
  if (auto s = read_opt(j, "stream", r.stream); !s) return s.err();
  if (const json* so = find(j, "stream_options")) {
    if (!so->is_object()) return bad("field 'stream_options' must be an object");
    if (!r.stream) return bad("field 'stream_options' is only allowed with 'stream': true");
    if (auto s = read_opt(*so, "include_usage", ro.include_usage); !s)
      return bad("field 'stream_options.include_usage' must be a boolean");
  }
  if (auto s = parse_sampling(j, ep, r, ro); !s) return s.err();
  if (auto s = backends::check_sampling(r.sampling, r.max_tokens, ""); !s) return s.err();
  if (auto s = parse_stops(j, r); !s) return s.err();
  if (ep == endpoint::completions) {
    bool echo = false;
    if (auto s = read_opt(j, "echo", echo); !s) return s.err();
    if (echo && !r.prompt) return unsupported("echo", "echo needs a text prompt (token-id prompts are not detokenized here)");
    if (echo && ro.logprobs) return unsupported("echo", "echo with logprobs (prompt logprobs) is not implemented");
    if (echo) ro.echo = *r.prompt;
  }
  if (auto s = read_opt(j, "return_token_ids", ro.return_token_ids); !s) return s.err();
  // Ignorable fields still get a type check where OpenAI has one.
  std::string user;
  if (auto s = read_opt(j, "user", user); !s) return s.err();
  if (!user.empty()) r.tenant = user;
  if (const json* md = find(j, "metadata"); md && !md->is_object()) return bad("field 'metadata' must be an object");
  bool store = false;
  if (auto s = read_opt(j, "store", store); !s) return s.err();
  std::string salt;
  if (auto s = read_opt(j, "cache_salt", salt); !s) return s.err();
  if (!salt.empty()) r.cache_salt = salt;
  if (auto s = parse_tools_and_format(body, j, ep, r); !s) return s.err();
  if (auto s = parse_agent_hints(j, headers, r, out.priority_given); !s) return s.err();
  return out;
}

}  // namespace

result<parsed_request> parse(const std::string& body, endpoint ep, const std::string& request_id,
                             const request_hint_headers& headers) {
  // Every field is type-checked before it is read; a JSON access that still throws (a check missed) is this
  // request's 400, never the process's end.
  try {
    return parse_body(body, ep, request_id, headers);
  } catch (const std::exception& e) {
    return bad(std::string("request body could not be read: ") + e.what());
  }
}

result<msg::generate_request> parse_request(const std::string& body, endpoint ep, const std::string& request_id) {
  auto p = parse(body, ep, request_id);
  if (!p) return p.err();
  return std::move(p->gen);
}

}  // namespace yard::actors::openai
