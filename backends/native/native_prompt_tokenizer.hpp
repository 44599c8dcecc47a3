// backends/native/native_prompt_tokenizer.hpp — a model folder's tokenizer without its weights.
//
// Owns: tokenizer.json (byte-level BPE or SentencePiece-style, see
// tokenizer.hpp), the folder's chat template compiled once
// (backends/chat/chat_template_renderer: a template this build cannot render
// fails open(), naming the line), the chat family detected from it (the
// fallback format when the folder has no template, the end-of-turn tokens,
// the default tool-call format), and whether prompts start with BOS. A router loads this, never the model;
// the native engine holds one too, so both tokenize and render chats with the
// same code.
// Must not touch: weights, executors, KV.
// Thread-safety: immutable after open(); every method is const.
#pragma once

#include <string>

#include <optional>

#include "backends/chat/chat_template_renderer.hpp"
#include "backends/native/chat_template.hpp"
#include "backends/native/tokenizer.hpp"
#include "backends/prompt_tokenizer.hpp"

namespace yard::backends {

class native_prompt_tokenizer final : public prompt_tokenizer {
 public:
  // Reads DIR/tokenizer.json and the chat template (tokenizer_config.json or
  // chat_template.jinja). Errors name the file.
  static result<native_prompt_tokenizer> open(const std::string& model_dir, bool add_bos = true);

  std::string name() const override { return "native:" + model_name_; }
  result<std::vector<token_id>> tokenize(std::string_view text) const override;
  result<std::vector<token_id>> apply_chat_template(const std::vector<msg::chat_message>& messages,
                                                    const msg::json_value* tools = nullptr) const override;

  const native::tokenizer& vocab() const { return tok_; }
  native::chat_family family() const { return family_; }
  const std::string& model_name() const { return model_name_; }

 private:
  native::tokenizer tok_;
  native::chat_family family_ = native::chat_family::plain;
  // The folder's own chat template (Jinja), when it has one; else family_'s built-in format.
  std::optional<chat::chat_template_renderer> template_;
  bool add_bos_ = true;
  std::string model_name_;
};

}  // namespace yard::backends
