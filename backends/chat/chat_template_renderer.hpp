// backends/chat/chat_template_renderer.hpp — a model folder's own chat template, rendered.
//
// Owns: reading the template of a model folder (tokenizer_config.json's
// "chat_template" — a string, or a list of {name, template} where "default"
// or the first wins — else chat_template.jinja), its bos/eos token strings,
// compiling it once with the Jinja subset (backends/chat/jinja; anything
// unsupported fails here, at model load, naming the template line), and
// rendering a request's messages and tools into the prompt text the way HF
// transformers and vLLM call templates: messages as OpenAI dicts (an
// assistant's tool_calls with `function.arguments` parsed back to an object,
// tool results with tool_call_id), `tools` (absent when none),
// `add_generation_prompt: true`, bos_token, eos_token. One function for the
// router and the worker, so both hash the same prompt.
// Must not touch: tokenization, the built-in fallback families (native/chat_template).
// Thread-safety: immutable after load(); render() may run concurrently.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backends/chat/jinja/jinja_template.hpp"
#include "common/status.hpp"
#include "messages/types.hpp"

namespace yard::backends::chat {

class chat_template_renderer {
 public:
  // The folder's template, compiled; std::nullopt when the folder has none
  // (the caller falls back to a built-in family). Errors name the file and line.
  static result<std::optional<chat_template_renderer>> load(const std::string& model_dir);
  // From template text (tests, or a --chat-template file).
  static result<chat_template_renderer> from_source(const std::string& source, std::string bos_token = {},
                                                    std::string eos_token = {});

  result<std::string> render(const std::vector<msg::chat_message>& messages, const msg::json_value* tools) const;

  const std::string& source() const { return source_; }

 private:
  chat_template_renderer(jinja::jinja_template t, std::string source, std::string bos, std::string eos)
      : tmpl_(std::move(t)), source_(std::move(source)), bos_(std::move(bos)), eos_(std::move(eos)) {}

  jinja::jinja_template tmpl_;
  std::string source_;
  std::string bos_, eos_;
};

}  // namespace yard::backends::chat
