#include "backends/external/openai_upstream_wire.hpp"

#include <nlohmann/json.hpp>

namespace yard::backends::external {

using nlohmann::json;

std::optional<schema_dialect> parse_schema_dialect(std::string_view name) {
  if (name == "response_format") return schema_dialect::response_format;
  if (name == "sglang") return schema_dialect::sglang;
  if (name == "llama.cpp") return schema_dialect::llama_cpp;
  if (name == "none") return schema_dialect::none;
  return std::nullopt;
}

std::string completion_body(const engine_request& r, const std::string& model, std::uint32_t context_tokens,
                            schema_dialect schemas) {
  std::vector<msg::token_id> prompt = r.prompt;
  prompt.insert(prompt.end(), r.resume_tokens.begin(), r.resume_tokens.end());
  const auto resumed = static_cast<std::uint32_t>(r.resume_tokens.size());
  std::optional<std::uint32_t> left;
  if (r.max_tokens > 0) left = r.max_tokens > resumed ? r.max_tokens - resumed : 1;
  else if (context_tokens > prompt.size()) left = context_tokens - static_cast<std::uint32_t>(prompt.size());
  json j = {{"model", model}, {"prompt", prompt}, {"stream", true},
            {"stream_options", {{"include_usage", true}}},
            // vLLM >= 0.10.2 (and Switchyard's frontend) send each chunk's token ids; other servers ignore it.
            {"return_token_ids", true}};
  if (left) j["max_tokens"] = *left;  // else the server's default: vLLM and Switchyard run to the context's end
  const auto& s = r.sampling;
  j["temperature"] = s.temperature;  // servers differ in their default (vLLM 1.0): always say it
  if (s.top_p != 1.0) j["top_p"] = s.top_p;
  if (s.top_k > 0) j["top_k"] = s.top_k;
  if (s.seed) j["seed"] = *s.seed;
  if (s.presence_penalty != 0.0) j["presence_penalty"] = s.presence_penalty;
  if (s.frequency_penalty != 0.0) j["frequency_penalty"] = s.frequency_penalty;
  if (s.repetition_penalty != 1.0) j["repetition_penalty"] = s.repetition_penalty;
  if (s.min_tokens > resumed) j["min_tokens"] = s.min_tokens - resumed;
  if (!s.logit_bias.empty()) {
    json b = json::object();
    for (const auto& e : s.logit_bias) b[std::to_string(e.token)] = e.bias;
    j["logit_bias"] = std::move(b);
  }
  if (s.logprobs) j["logprobs"] = s.top_logprobs;  // completions: the number of alternatives
  if (!r.stop.empty()) j["stop"] = r.stop;
  if (!r.stop_token_ids.empty()) j["stop_token_ids"] = r.stop_token_ids;
  if (r.output_schema) {
    auto schema = json::parse(*r.output_schema, nullptr, false);
    if (schema.is_discarded()) schema = json{{"type", "object"}};  // output_rules wrote it: never malformed
    switch (schemas) {
      case schema_dialect::response_format:
        j["response_format"] = {{"type", "json_schema"},
                                {"json_schema", {{"name", "output"}, {"schema", std::move(schema)}, {"strict", true}}}};
        break;
      case schema_dialect::sglang: j["json_schema"] = *r.output_schema; break;
      case schema_dialect::llama_cpp: j["json_schema"] = std::move(schema); break;
      case schema_dialect::none: break;
    }
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

msg::finish_kind finish_of(std::string_view reason) {
  if (reason == "length") return msg::finish_kind::length;
  if (reason == "abort" || reason == "cancelled") return msg::finish_kind::cancelled;
  return msg::finish_kind::stop;
}

namespace {

// A count or id a server sent: an unsigned JSON number that fits 32 bits, else nothing (get<uint32_t> would wrap).
std::optional<std::uint32_t> u32_of(const json& v) {
  if (!v.is_number_unsigned()) return std::nullopt;
  const auto x = v.get<std::uint64_t>();
  if (x > 0xffffffffULL) return std::nullopt;
  return static_cast<std::uint32_t>(x);
}

// At most `n` bytes of `s`, not ending inside a UTF-8 character.
std::string utf8_prefix(std::string_view s, std::size_t n) {
  if (s.size() <= n) return std::string(s);
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

constexpr std::size_t max_error_text = 2000;

std::vector<msg::token_logprob> logprobs_of(const json& lp, const std::optional<std::vector<msg::token_id>>& ids,
                                            std::uint32_t max_top) {
  std::vector<msg::token_logprob> out;
  if (!lp.is_object()) return out;
  auto toks = lp.find("tokens");
  auto lps = lp.find("token_logprobs");
  if (toks == lp.end() || lps == lp.end() || !toks->is_array() || !lps->is_array()) return out;
  auto tops = lp.find("top_logprobs");
  std::size_t n = std::min(toks->size(), lps->size());
  if (ids) n = std::min(n, ids->size());  // one entry per token sent, whatever else the server listed
  for (std::size_t i = 0; i < n; ++i) {
    msg::token_logprob t;
    if ((*toks)[i].is_string()) t.text = (*toks)[i].get<std::string>();
    if ((*lps)[i].is_number()) t.logprob = (*lps)[i].get<float>();
    if (ids && i < ids->size()) t.token = (*ids)[i];
    if (tops != lp.end() && tops->is_array() && i < tops->size() && (*tops)[i].is_object())
      for (auto it = (*tops)[i].begin(); it != (*tops)[i].end() && t.top.size() < max_top; ++it)
        if (it->is_number()) t.top.push_back(msg::top_logprob{0, it.key(), it->get<float>()});
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

result<upstream_delta> parse_stream_payload(std::string_view payload, std::uint32_t max_top) {
  upstream_delta d;
  if (payload == "[DONE]") {
    d.done = true;
    return d;
  }
  json j = json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(errc::corrupt, "upstream sent a stream event that is not a JSON object");
  if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
    std::string message = e->is_object() && e->contains("message") && (*e)["message"].is_string()
                              ? (*e)["message"].get<std::string>()
                              : e->dump(-1, ' ', false, json::error_handler_t::replace);
    int code = e->is_object() && e->contains("code") && (*e)["code"].is_number_integer() ? (*e)["code"].get<int>() : 500;
    d.server_error = http_error(code, message);
    return d;
  }
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
    msg::usage us;
    if (auto v = u->find("prompt_tokens"); v != u->end()) us.prompt_tokens = u32_of(*v).value_or(0);
    if (auto v = u->find("completion_tokens"); v != u->end()) us.completion_tokens = u32_of(*v).value_or(0);
    if (auto det = u->find("prompt_tokens_details"); det != u->end() && det->is_object() && det->contains("cached_tokens"))
      us.cached_tokens = u32_of((*det)["cached_tokens"]).value_or(0);
    d.usage = us;
  }
  auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array()) {
    if (!d.usage) return make_error(errc::corrupt, "upstream stream event has neither 'choices' nor 'usage'");
    return d;
  }
  if (choices->empty()) return d;
  const json& c = (*choices)[0];
  if (!c.is_object()) return make_error(errc::corrupt, "upstream stream event: choices[0] is not an object");
  if (auto t = c.find("text"); t != c.end() && !t->is_null()) {
    if (!t->is_string()) return make_error(errc::corrupt, "upstream stream event: choices[0].text is not a string");
    d.text = t->get<std::string>();
  }
  if (auto ids = c.find("token_ids"); ids != c.end() && !ids->is_null()) {
    if (!ids->is_array()) return make_error(errc::corrupt, "upstream stream event: choices[0].token_ids is not an array");
    std::vector<msg::token_id> v;
    v.reserve(ids->size());
    for (const auto& x : *ids) {
      auto id = u32_of(x);
      if (!id) return make_error(errc::corrupt, "upstream stream event: token_ids holds a non-id (" + x.dump() + ")");
      v.push_back(*id);
    }
    d.token_ids = std::move(v);
  }
  if (auto lp = c.find("logprobs"); lp != c.end()) d.logprobs = logprobs_of(*lp, d.token_ids, max_top);
  if (auto f = c.find("finish_reason"); f != c.end() && f->is_string()) {
    const auto reason = f->get<std::string>();
    if (reason == "abort")
      d.server_error = error{errc::unavailable, "upstream aborted the request (finish_reason 'abort')"};
    else
      d.finish = finish_of(reason);
  }
  return d;
}

std::vector<std::string> sse_splitter::feed(std::string_view bytes) {
  std::vector<std::string> out;
  if (overflowed_) return out;
  buf_.append(bytes);
  std::size_t start = 0;
  while (true) {
    // An event ends at an empty line: "\n\n" or "\r\n\r\n" (mixed ends normalised per line below). The search
    // goes on from where the last feed stopped (less the two bytes an end may straddle).
    std::size_t end = std::string::npos, skip = 0;
    std::size_t i = std::max(start, scanned_ > 2 ? scanned_ - 2 : 0);
    for (; i + 1 < buf_.size(); ++i) {
      if (buf_[i] != '\n') continue;
      if (buf_[i + 1] == '\n') { end = i; skip = 2; break; }
      if (buf_[i + 1] == '\r' && i + 2 < buf_.size() && buf_[i + 2] == '\n') { end = i; skip = 3; break; }
    }
    if (end == std::string::npos) {
      scanned_ = buf_.size();
      break;
    }
    if (end - start > max_event_) break;  // a whole over-long event arrived at once: refused below
    std::string_view ev(buf_.data() + start, end - start);
    std::string data;
    bool has_data = false;
    while (!ev.empty()) {
      auto nl = ev.find('\n');
      auto line = ev.substr(0, nl);
      ev = nl == std::string_view::npos ? std::string_view{} : ev.substr(nl + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.rfind("data:", 0) != 0) continue;  // comments (":"), event:, id:, retry:
      line.remove_prefix(5);
      if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      if (has_data) data += '\n';
      data.append(line);
      has_data = true;
    }
    if (has_data) out.push_back(std::move(data));
    start = end + skip;
    scanned_ = start;
  }
  buf_.erase(0, start);
  scanned_ = scanned_ >= start ? scanned_ - start : 0;
  if (buf_.size() > max_event_) {
    overflowed_ = true;
    buf_.clear();
    buf_.shrink_to_fit();
    scanned_ = 0;
  }
  return out;
}

error http_error(int status, std::string_view body) {
  std::string text(body);
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    // OpenAI: {"error": {"message": ...}}; FastAPI: {"detail": ...}; some servers: {"message": ...}.
    if (auto e = j.find("error"); e != j.end() && e->is_object() && e->contains("message") && (*e)["message"].is_string())
      text = (*e)["message"].get<std::string>();
    else if (auto m = j.find("message"); m != j.end() && m->is_string())
      text = m->get<std::string>();
    else if (auto dt = j.find("detail"); dt != j.end())
      text = dt->is_string() ? dt->get<std::string>() : dt->dump(-1, ' ', false, json::error_handler_t::replace);
  }
  text = utf8_prefix(text, max_error_text);
  std::string what = "upstream answered HTTP " + std::to_string(status) + (text.empty() ? "" : ": " + text);
  switch (status) {
    case 400:
    case 422: return error{errc::bad_request, what};
    case 401:
    case 403: return error{errc::unavailable, what + " (check --upstream-api-key-file)"};
    case 404: return error{errc::not_found, what};
    case 413: return error{errc::payload_too_large, what};
    case 429: return error{errc::rate_limited, what};
    default: return error{errc::unavailable, what};
  }
}

}  // namespace yard::backends::external
