#include "backends/mock/mock_engine.hpp"

#include <algorithm>

namespace yard::backends {

namespace {

constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz ";

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

mock_engine::mock_engine(mock_engine_options opts) : opts_(opts) {
  if (opts_.speedup <= 0) opts_.speedup = 1.0;
}

token_id mock_engine::expected_token(const std::vector<token_id>& prompt, std::uint64_t seed, std::size_t i) {
  std::uint64_t h = splitmix(seed);
  for (auto t : prompt) h = splitmix(h ^ t);
  return static_cast<token_id>(alphabet[splitmix(h + i) % (sizeof(alphabet) - 1)]);
}

result<std::vector<token_id>> mock_engine::tokenize(std::string_view text) const {
  std::vector<token_id> out(text.begin(), text.end());
  for (auto& t : out) t &= 0xff;
  return out;
}

std::string mock_engine::detokenize(const std::vector<token_id>& tokens) const {
  std::string s;
  s.reserve(tokens.size());
  for (auto t : tokens) s.push_back(static_cast<char>(t & 0xff));
  return s;
}

status mock_engine::add_request(engine_request req) {
  if (req.request_id.empty()) return make_error(errc::bad_request, "empty request_id");
  if (seqs_.count(req.request_id)) return make_error(errc::conflict, "duplicate request_id '" + req.request_id + "'");
  if (req.prompt.empty()) return make_error(errc::bad_request, "empty prompt");
  if (req.prompt.size() + req.max_tokens > opts_.max_context)
    return make_error(errc::bad_request, "prompt of " + std::to_string(req.prompt.size()) + " tokens plus max_tokens exceeds the context of " +
                                             std::to_string(opts_.max_context));
  sequence s;
  s.produced = req.resume_tokens.size();
  auto id = req.request_id;
  s.req = std::move(req);
  seqs_.emplace(std::move(id), std::move(s));
  return status::success();
}

void mock_engine::cancel(const std::string& request_id) {
  auto it = seqs_.find(request_id);
  if (it != seqs_.end()) it->second.cancelled = true;
}

step_result mock_engine::step() {
  step_result r;
  r.model_time_ms = opts_.per_token_delay_ms / opts_.speedup;
  for (auto it = seqs_.begin(); it != seqs_.end();) {
    auto& s = it->second;
    sequence_output out;
    out.request_id = it->first;
    auto finish = [&](const char* reason) {
      out.finish_reason = reason;
      out.usage_info.prompt_tokens = static_cast<std::uint32_t>(s.req.prompt.size());
      out.usage_info.completion_tokens = static_cast<std::uint32_t>(s.produced);
    };
    if (s.cancelled) {
      finish("cancelled");
    } else if (s.produced >= s.req.max_tokens) {
      finish("length");
    } else {
      s.prefilled = true;
      auto tok = expected_token(s.req.prompt, s.req.sampling.seed.value_or(0), s.produced);
      ++s.produced;
      out.new_tokens.push_back(tok);
      out.text_delta.push_back(static_cast<char>(tok));
      if (s.req.sampling.logprobs) out.logprobs.push_back(0.0f);
      bool stop_tok = std::find(s.req.stop_token_ids.begin(), s.req.stop_token_ids.end(), tok) != s.req.stop_token_ids.end();
      if (stop_tok) finish("stop");
      else if (s.produced >= s.req.max_tokens) finish("length");
    }
    r.outputs.push_back(std::move(out));
    if (r.outputs.back().finish_reason) it = seqs_.erase(it);
    else ++it;
  }
  return r;
}

msg::load_report mock_engine::load() const {
  msg::load_report l;
  for (const auto& [id, s] : seqs_) {
    if (s.prefilled) ++l.active_requests;
    else {
      ++l.queued_requests;
      l.pending_prefill_tokens += s.req.prompt.size();
    }
    l.active_kv_blocks += static_cast<std::uint32_t>((s.req.prompt.size() + s.produced + opts_.block_size - 1) / opts_.block_size);
  }
  return l;
}

}  // namespace yard::backends
