// backends/prompt_tokenizer.hpp — text and chat messages to token ids.
//
// Owns: the tokenizer interface apart from the engine: what a router needs to
// hash a prompt's blocks and what a worker needs to turn a request into
// tokens. Every engine is one (engine.hpp derives from it); a router loads
// only a tokenizer (byte_tokenizer for the mock, native_prompt_tokenizer for a
// model folder: tokenizer.json and the chat template, never the weights).
// Must not touch: models, KV, scheduling.
// Thread-safety: implementations are immutable after loading; every method is const.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backends/chat/plain_chat.hpp"
#include "common/status.hpp"
#include "messages/types.hpp"

namespace yard::backends {

using msg::token_id;

class prompt_tokenizer {
 public:
  virtual ~prompt_tokenizer() = default;

  // Name for logs and /v1/models ("mock", "native:<model>").
  virtual std::string name() const = 0;

  virtual result<std::vector<token_id>> tokenize(std::string_view text) const = 0;

  // Renders chat messages (and the tools offered, an OpenAI tools array, when
  // not null) with the model's chat template and tokenizes them. The default
  // is the plain format of backends/chat/plain_chat.hpp ending with the
  // assistant's turn; tokenizers with a real template override it.
  virtual result<std::vector<token_id>> apply_chat_template(const std::vector<msg::chat_message>& messages,
                                                            const msg::json_value* tools = nullptr) const {
    return tokenize(chat::render_plain_chat(messages, tools));
  }
};

// A generate request's prompt tokens: its token_ids as sent, else its chat
// messages through the template, else its text prompt. The router and the
// worker both call this, so they agree on what a request's prompt is.
// The tools reach the template unless tool_choice is "none".
inline result<std::vector<token_id>> request_tokens(const prompt_tokenizer& t, const msg::generate_request& r) {
  if (r.token_ids && !r.token_ids->empty()) return *r.token_ids;
  const bool offer_tools = r.tools && !r.tools->v.empty() && !(r.tool_choice && r.tool_choice->v == "none");
  if (r.messages && !r.messages->empty()) return t.apply_chat_template(*r.messages, offer_tools ? &*r.tools : nullptr);
  if (r.prompt && !r.prompt->empty()) return t.tokenize(*r.prompt);
  return make_error(errc::bad_request, "one of 'prompt', 'token_ids' or 'messages' is required and must not be empty");
}

// The mock engine's tokenizer: one token per byte.
class byte_tokenizer final : public prompt_tokenizer {
 public:
  std::string name() const override { return "mock"; }
  result<std::vector<token_id>> tokenize(std::string_view text) const override {
    std::vector<token_id> out;
    out.reserve(text.size());
    for (unsigned char c : text) out.push_back(c);
    return out;
  }
};

}  // namespace yard::backends
