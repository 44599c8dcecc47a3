// actors/openai_render.cpp — token chunks -> OpenAI responses (see openai_api.hpp).
#include "actors/openai_api.hpp"

#include <algorithm>

namespace yard::actors::openai {

using nlohmann::json;

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json usage_json(const msg::usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

// delta.tool_calls[]: a call's first piece carries id, type and name.
json tool_call_deltas(const std::vector<msg::tool_call_delta>& ds) {
  json out = json::array();
  for (const auto& d : ds) {
    json e = {{"index", d.index}};
    json f = json::object();
    if (d.id) {
      e["id"] = *d.id;
      e["type"] = "function";
    }
    if (d.name) f["name"] = *d.name;
    f["arguments"] = d.arguments;
    e["function"] = std::move(f);
    out.push_back(std::move(e));
  }
  return out;
}

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

}  // namespace

response_renderer::response_renderer(endpoint ep, std::string id, std::string model, std::int64_t created, render_options o)
    : ep_(ep), id_(std::move(id)), model_(std::move(model)), created_(created), o_(std::move(o)) {
  choices_.resize(std::max<std::uint32_t>(1, o_.n));
  if (o_.echo)
    for (auto& c : choices_) c.text_offset = o_.echo->size();
}

// Chat: {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}.
// Completions: {tokens, token_logprobs, top_logprobs: [{text: logprob}], text_offset}.
json response_renderer::logprobs_json(const std::vector<msg::token_logprob>& lps, std::size_t& text_offset) const {
  if (ep_ == endpoint::chat) {
    json content = json::array();
    for (const auto& t : lps) {
      json top = json::array();
      for (std::size_t i = 0; i < t.top.size() && i < o_.top_logprobs; ++i)
        top.push_back({{"token", t.top[i].text}, {"logprob", t.top[i].logprob}, {"bytes", bytes_of(t.top[i].text)}});
      content.push_back({{"token", t.text}, {"logprob", t.logprob}, {"bytes", bytes_of(t.text)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json tokens = json::array(), token_lps = json::array(), tops = json::array(), offsets = json::array();
  for (const auto& t : lps) {
    tokens.push_back(t.text);
    token_lps.push_back(t.logprob);
    json top = json::object();
    if (o_.top_logprobs == 0) top[t.text] = t.logprob;  // logprobs 0: the sampled token alone
    for (std::size_t i = 0; i < t.top.size() && i < o_.top_logprobs; ++i)
      if (!top.contains(t.top[i].text)) top[t.top[i].text] = t.top[i].logprob;
    tops.push_back(top);
    offsets.push_back(text_offset);
    text_offset += t.text.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json response_renderer::envelope(json choices) const {
  return {{"id", id_}, {"object", ep_ == endpoint::chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created_}, {"model", model_}, {"choices", std::move(choices)}};
}

bool response_renderer::all_done() const {
  return std::all_of(choices_.begin(), choices_.end(), [](const choice_state& c) { return c.done; });
}

// The prompt counts once (every choice shares it); completions add up.
msg::usage response_renderer::usage() const {
  msg::usage u = choices_.front().usage;
  u.completion_tokens = 0;
  for (const auto& c : choices_) u.completion_tokens += c.usage.completion_tokens;
  return u;
}

std::string response_renderer::sse(const msg::token_chunk& c, std::uint32_t index) {
  auto& ch = choices_.at(index);
  std::string text = c.text;
  if (ch.first && o_.echo) text = *o_.echo + text;
  json choice = {{"index", index}, {"finish_reason", c.finish_reason ? json(std::string(msg::wire_name(*c.finish_reason))) : json(nullptr)}};
  json lp = o_.logprobs && !c.token_logprobs.empty() ? logprobs_json(c.token_logprobs, ch.text_offset) : json(nullptr);
  if (ep_ == endpoint::chat) {
    json delta = json::object();
    if (ch.first) delta["role"] = "assistant";
    if (!text.empty()) delta["content"] = text;
    if (!c.tool_calls.empty()) delta["tool_calls"] = tool_call_deltas(c.tool_calls);
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = lp;
  if (o_.return_token_ids) choice["token_ids"] = c.token_ids;
  ch.first = false;
  if (c.finish_reason) {
    ch.done = true;
    if (c.usage_info) ch.usage = *c.usage_info;
  }
  json ev = envelope(json::array({choice}));
  if (o_.include_usage) ev["usage"] = nullptr;
  std::string out = "data: " + dump(ev) + "\n\n";
  if (c.finish_reason && o_.include_usage && all_done()) {
    json u = envelope(json::array());
    u["usage"] = usage_json(usage());
    out += "data: " + dump(u) + "\n\n";
  }
  return out;
}

void response_renderer::add(const msg::token_chunk& c, std::uint32_t index) {
  auto& ch = choices_.at(index);
  if (ch.first && o_.echo) ch.text = *o_.echo;
  ch.first = false;
  ch.text += c.text;
  for (const auto& d : c.tool_calls) {
    if (ch.calls.size() <= d.index) ch.calls.resize(d.index + 1);
    auto& call = ch.calls[d.index];
    if (d.id) call.id = *d.id;
    if (d.name) call.function.name = *d.name;
    call.function.arguments += d.arguments;
  }
  if (o_.logprobs) ch.lps.insert(ch.lps.end(), c.token_logprobs.begin(), c.token_logprobs.end());
  if (o_.return_token_ids) ch.ids.insert(ch.ids.end(), c.token_ids.begin(), c.token_ids.end());
  if (c.finish_reason) {
    ch.finish = std::string(msg::wire_name(*c.finish_reason));
    ch.done = true;
  }
  if (c.usage_info) ch.usage = *c.usage_info;
}

std::string response_renderer::full_response() const {
  json choices = json::array();
  for (std::uint32_t i = 0; i < choices_.size(); ++i) {
    const auto& ch = choices_[i];
    std::size_t offset = o_.echo ? o_.echo->size() : 0;
    json lp = o_.logprobs ? logprobs_json(ch.lps, offset) : json(nullptr);
    if (ep_ == endpoint::chat) {
      // OpenAI: content is null when the turn is only tool calls.
      json message = {{"role", "assistant"},
                      {"content", ch.text.empty() && !ch.calls.empty() ? json(nullptr) : json(ch.text)}};
      if (!ch.calls.empty()) {
        json calls = json::array();
        for (const auto& c : ch.calls)
          calls.push_back({{"id", c.id},
                           {"type", "function"},
                           {"function", {{"name", c.function.name}, {"arguments", c.function.arguments}}}});
        message["tool_calls"] = std::move(calls);
      }
      choices.push_back({{"index", i}, {"message", std::move(message)}, {"logprobs", lp}, {"finish_reason", ch.finish}});
    } else {
      choices.push_back({{"index", i}, {"text", ch.text}, {"logprobs", lp}, {"finish_reason", ch.finish}});
    }
    if (o_.return_token_ids) choices.back()["token_ids"] = ch.ids;
  }
  json out = {{"id", id_},
              {"object", ep_ == endpoint::chat ? "chat.completion" : "text_completion"},
              {"created", created_},
              {"model", model_},
              {"choices", std::move(choices)}};
  out["usage"] = usage_json(usage());
  return dump(out);
}

std::string sse_event(endpoint ep, const std::string& id, const std::string& model, std::int64_t created,
                      const msg::token_chunk& c, bool include_usage) {
  json choice = {{"index", 0}, {"finish_reason", c.finish_reason ? json(std::string(msg::wire_name(*c.finish_reason))) : json(nullptr)}};
  json out;
  if (ep == endpoint::chat) {
    json delta = json::object();
    if (c.seq == 0) delta["role"] = "assistant";
    if (!c.text.empty()) delta["content"] = c.text;
    choice["delta"] = delta;
    out = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model}, {"choices", {choice}}};
  } else {
    choice["text"] = c.text;
    out = {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model}, {"choices", {choice}}};
  }
  if (include_usage && c.usage_info) out["usage"] = usage_json(*c.usage_info);
  return "data: " + dump(out) + "\n\n";
}

std::string full_response(endpoint ep, const std::string& id, const std::string& model, std::int64_t created,
                          const std::string& text, msg::finish_kind finish_reason, const msg::usage& u) {
  response_renderer r(ep, id, model, created, {});
  msg::token_chunk c;
  c.text = text;
  c.finish_reason = finish_reason;
  c.usage_info = u;
  r.add(c);
  return r.full_response();
}

}  // namespace yard::actors::openai
